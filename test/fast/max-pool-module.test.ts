/**
 * The max-pool gradient's WebAssembly module (src/backends/wasm/max-pool-grad-module.ts): its text
 * (`maxPool2x2GradWat`) must be its bytes (`moduleBytes`). No wat2wasm is among the dependencies,
 * so the bytes are built from one instruction list that also prints the text; this assembles that
 * text again with an opcode table of its own, written from the WebAssembly spec, and compares.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maxPool2x2GradWat, moduleBytes } from '../../src/backends/wasm/max-pool-grad-module.ts';

const leb = (value: number, signed: boolean): number[] => {
  const out: number[] = [];
  let v = BigInt(value);
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    const done = signed ? (v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0) : v === 0n;
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
};
const u = (value: number) => leb(value, false);
const vector = (items: number[][]) => [...u(items.length), ...items.flat()];
const text = (value: string) => vector([...Buffer.from(value)].map((byte) => [byte]));
const section = (id: number, body: number[]) => [id, ...u(body.length), ...body];
const types: Record<string, number> = { i32: 0x7f, v128: 0x7b };

/** Opcodes without immediates; SIMD ones as [0xfd, opcode]. */
const plain: Record<string, number[]> = {
  end: [0x0b],
  'i32.eqz': [0x45],
  'i32.lt_u': [0x49],
  'i32.ge_u': [0x4f],
  'i32.add': [0x6a],
  'i32.sub': [0x6b],
  'i32.shl': [0x74],
  'f32x4.gt': [0xfd, 0x44],
  'v128.and': [0xfd, 0x4e],
  'v128.andnot': [0xfd, 0x4f],
  'v128.bitselect': [0xfd, 0x52],
};
const blocks: Record<string, number> = { block: 0x02, loop: 0x03, if: 0x04 };
/** Memory instructions: opcode and natural alignment in bytes. */
const memory: Record<string, [number, number]> = {
  'v128.load': [0x00, 16],
  'v128.store': [0x0b, 16],
  'v128.load32_zero': [0x5c, 4],
  'v128.load64_zero': [0x5d, 8],
  'v128.store32_lane': [0x5a, 4],
  'v128.store64_lane': [0x5b, 8],
};

function f32Bytes(value: string): number[] {
  const number = value === '-inf' ? -Infinity : value === 'inf' ? Infinity : Number(value);
  return [...new Uint8Array(Float32Array.of(number).buffer)];
}

/** Assembles the flat-instruction text form this module uses (one func, one imported memory). */
function assemble(wat: string): Uint8Array {
  const lines = wat
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  assert.equal(lines.shift(), '(module');
  assert.equal(lines.shift(), '(import "env" "memory" (memory 0))');
  const exported = /^\(func \(export "(\w+)"\)$/.exec(lines.shift() ?? '')?.[1];
  assert.ok(exported, 'one exported function');
  assert.deepEqual(lines.splice(-2), [')', ')']);
  const locals = new Map<string, number>();
  const params: number[] = [];
  const declared: { count: number; code: number }[] = [];
  while (lines[0]?.startsWith('(')) {
    for (const [, kind, name, type] of (lines.shift() as string).matchAll(/\((param|local) \$(\w+) (\w+)\)/g)) {
      locals.set(name as string, locals.size);
      const code = types[type as string];
      assert.ok(code !== undefined, `type ${type}`);
      if (kind === 'param') params.push(code);
      else {
        const run = declared.at(-1);
        if (run?.code === code) run.count++;
        else declared.push({ count: 1, code });
      }
    }
  }
  const body: number[] = [...vector(declared.map(({ count, code }) => [...u(count), code]))];
  for (const line of lines) {
    const [mnemonic = '', ...args] = line.split(/\s+/);
    if (plain[mnemonic]) body.push(...plain[mnemonic]);
    else if (blocks[mnemonic] !== undefined) body.push(blocks[mnemonic], 0x40);
    else if (mnemonic === 'br' || mnemonic === 'br_if')
      body.push(mnemonic === 'br' ? 0x0c : 0x0d, ...u(Number(args[0])));
    else if (mnemonic === 'local.get' || mnemonic === 'local.set') {
      const index = locals.get((args[0] ?? '').replace(/^\$/, ''));
      assert.ok(index !== undefined, `unknown local in "${line}"`);
      body.push(mnemonic === 'local.get' ? 0x20 : 0x21, ...u(index));
    } else if (mnemonic === 'i32.const') body.push(0x41, ...leb(Number(args[0]), true));
    else if (mnemonic === 'v128.const') {
      assert.equal(args[0], 'f32x4');
      body.push(0xfd, ...u(0x0c), ...args.slice(1).flatMap(f32Bytes));
    } else if (memory[mnemonic]) {
      const [opcode, natural] = memory[mnemonic];
      const align = Number(/^align=(\d+)$/.exec(args[0] ?? '')?.[1] ?? natural);
      const offset = 0;
      const lane = args.at(-1)?.startsWith('align=') ? [] : args.slice(-1).map(Number);
      body.push(0xfd, ...u(opcode), ...u(Math.log2(align)), ...u(offset), ...lane);
    } else assert.fail(`not in this assembler's subset: "${line}"`);
  }
  body.push(0x0b); // the function's end
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vector([[0x60, ...vector(params.map((code) => [code])), ...vector([])]])),
    ...section(2, vector([[...text('env'), ...text('memory'), 0x02, 0x00, 0x00]])),
    ...section(3, vector([[0x00]])),
    ...section(7, vector([[...text(exported), 0x00, 0x00]])),
    ...section(10, vector([[...u(body.length), ...body]])),
  ]);
}

describe('the max-pool gradient module', () => {
  it('its text, assembled, is its bytes', () => {
    assert.deepEqual(assemble(maxPool2x2GradWat), moduleBytes());
  });

  it('its text is the whole function: every instruction, no macro left', () => {
    assert.doesNotMatch(maxPool2x2GradWat, /WINDOW|;;/);
    // Three window passes (4, 2 and 1 channels), each with 4 loads of x, 1 of dy and 4 stores of dx.
    assert.equal(maxPool2x2GradWat.match(/v128\.load align=4\n/g)?.length, 5);
    assert.equal(maxPool2x2GradWat.match(/v128\.store(32_lane|64_lane)? align=4( 0)?\n/g)?.length, 12);
  });

  it('an assembler that differs from the builder by one opcode would notice', () => {
    assert.notDeepEqual(assemble(maxPool2x2GradWat.replace('v128.andnot', 'v128.and')), moduleBytes());
  });
});

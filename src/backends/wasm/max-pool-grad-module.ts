/**
 * The 2x2, stride-2 max-pool gradient as a tiny WebAssembly module (SIMD128) that works in place on
 * the tfjs wasm backend's own linear memory: it imports the backend's WebAssembly.Memory, so x, dy
 * and dx are read and written where the backend keeps them, with no copies.
 *
 * There is no assembler here (no wat2wasm among the dependencies), so the module is built below
 * from one list of instructions, each made with both its bytes and its text: `moduleBytes` and
 * `maxPool2x2GradWat` (the module as WebAssembly text, for reading) come from the same list and
 * can't disagree.
 * Semantics are the JavaScript pass's (kernels/MaxPoolGrad.ts): each window's dy goes to its FIRST
 * maximum in row-major order (strictly greater replaces), NaN and −∞ never win, a window with no
 * winner gets nothing, every other dx in the window is +0.
 */

import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapModule } from './heap-module.ts';

// ---- byte encoding ----------------------------------------------------------------------------

/** Unsigned LEB128 (sizes, indices, alignment and offset immediates). */
function u32(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 (i32.const). */
function s32(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...u32(bytes.length), ...bytes];
}

/** A vector: its length, then its items. */
function vec(items: readonly number[][]): number[] {
  return [...u32(items.length), ...items.flat()];
}

/** A section: its id, its size in bytes, then its contents. */
function section(id: number, contents: readonly number[]): number[] {
  return [id, ...u32(contents.length), ...contents];
}

// Value types and block types.
const I32 = 0x7f;
const V128 = 0x7b;
const VOID = 0x40;

/** One instruction: its text, its bytes, and whether it opens (1) or closes (−1) a block. */
interface Instruction {
  readonly text: string;
  readonly bytes: readonly number[];
  readonly nesting: -1 | 0 | 1;
}
/** A sequence of instructions, as the builders below return and splice together. */
type Code = Instruction[];

const op = (text: string, bytes: readonly number[], nesting: -1 | 0 | 1 = 0): Code => [{ text, bytes, nesting }];

// Control and variable instructions.
const block = op('block', [0x02, VOID], 1);
const loop = op('loop', [0x03, VOID], 1);
const ifThen = op('if', [0x04, VOID], 1);
const end = op('end', [0x0b], -1);
const br = (depth: number): Code => op(`br ${depth}`, [0x0c, ...u32(depth)]);
const brIf = (depth: number): Code => op(`br_if ${depth}`, [0x0d, ...u32(depth)]);
const get = (local: number): Code => op(`local.get ${localName(local)}`, [0x20, ...u32(local)]);
const set = (local: number): Code => op(`local.set ${localName(local)}`, [0x21, ...u32(local)]);

// Numeric i32 instructions.
const i32Const = (value: number): Code => op(`i32.const ${value}`, [0x41, ...s32(value)]);
const i32Eqz = op('i32.eqz', [0x45]);
const i32LtU = op('i32.lt_u', [0x49]);
const i32GeU = op('i32.ge_u', [0x4f]);
const i32Add = op('i32.add', [0x6a]);
const i32Sub = op('i32.sub', [0x6b]);
const i32Shl = op('i32.shl', [0x74]);

// SIMD instructions: prefix 0xfd, then the opcode as unsigned LEB128, then immediates.
const simd = (text: string, opcode: number, ...immediates: number[]): Code =>
  op(text, [0xfd, ...u32(opcode), ...immediates]);
/** Memory argument: log2 of the alignment (float32 data: 4 bytes, so 2), then the offset (0). */
const memarg = [2, 0];
const v128Load = simd('v128.load align=4', 0x00, ...memarg);
const v128Store = simd('v128.store align=4', 0x0b, ...memarg);
/** 2 floats into lanes 0-1, zeros above. */
const v128Load64Zero = simd('v128.load64_zero align=4', 0x5d, ...memarg);
/** 1 float into lane 0. */
const v128Load32Zero = simd('v128.load32_zero align=4', 0x5c, ...memarg);
/** Lanes 0-1. */
const v128Store64Lane0 = simd('v128.store64_lane align=4 0', 0x5b, ...memarg, 0);
/** Lane 0. */
const v128Store32Lane0 = simd('v128.store32_lane align=4 0', 0x5a, ...memarg, 0);
/** All ones where a > b (false when either is NaN). */
const f32x4Gt = simd('f32x4.gt', 0x44);
const v128And = simd('v128.and', 0x4e);
/** a & ~b. */
const v128AndNot = simd('v128.andnot', 0x4f);
/** (a & c) | (b & ~c). */
const v128Bitselect = simd('v128.bitselect', 0x52);
const negativeInfinity = simd(
  'v128.const f32x4 -inf -inf -inf -inf',
  0x0c,
  ...Array.from({ length: 4 }, () => [0x00, 0x00, 0x80, 0xff]).flat(),
);

// The function's locals: its parameters first, then the declared locals.
const X = 0;
const DY = 1;
const DX = 2;
const WINDOW_ROWS = 3;
const OUT_WIDTH = 4;
const PIXEL_BYTES = 5;
const ROW_BYTES = 6;
const ROW_GAP_BYTES = 7;
const DELTA = 8; // dx − x: a dx address is the x address plus this (mod 2³²)
const ROW = 9; // top-left x address of the current window row
const PIXEL = 10; // top-left x address of the current window
const LEFT = 11; // channel bytes of the current window still to do
const A = 12; // top-left x address of the current lanes
const N = 13; // windows left in the row
const BEST = 14;
const W0 = 15;
const W1 = 16;
const W2 = 17;
const W3 = 18;
const G = 19;
const V = 20; // the input lanes being compared
const PARAMETERS = ['x', 'dy', 'dx', 'windowRows', 'outWidth', 'pixelBytes', 'rowBytes', 'rowGapBytes'];
/** The declared locals, in runs of one type. */
const LOCALS: readonly { readonly type: number; readonly text: string; readonly names: readonly string[] }[] = [
  { type: I32, text: 'i32', names: ['delta', 'row', 'pixel', 'left', 'a', 'n'] },
  { type: V128, text: 'v128', names: ['best', 'w0', 'w1', 'w2', 'w3', 'g', 'v'] },
];
const localNames = [...PARAMETERS, ...LOCALS.flatMap(({ names }) => names)];

function localName(local: number): string {
  const named = localNames[local];
  if (named === undefined) throw new Error(`no local ${local}`);
  return `$${named}`;
}

const addLocals = (x: number, y: number): Code => [...get(x), ...get(y), ...i32Add];
const bump = (local: number, bytes: number): Code => [...get(local), ...i32Const(bytes), ...i32Add, ...set(local)];
const shrink = (local: number, bytes: number): Code => [...get(local), ...i32Const(bytes), ...i32Sub, ...set(local)];

/**
 * One set of lanes of every window position at A (4, 2 or 1 channels, by the load and store used):
 * the branch-free form of the JavaScript pass's four `if (v > best)` steps.
 */
function windowLanes(load: Code, store: Code): Code {
  const topRight = [...addLocals(A, PIXEL_BYTES)];
  const bottomLeft = [...addLocals(A, ROW_BYTES)];
  const bottomRight = [...addLocals(A, ROW_BYTES), ...get(PIXEL_BYTES), ...i32Add];
  const step = (address: Code, winner: number): Code => [
    ...address,
    ...load,
    ...set(V),
    // winner = v > best
    ...get(V),
    ...get(BEST),
    ...f32x4Gt,
    ...set(winner),
    // best = winner ? v : best
    ...get(V),
    ...get(BEST),
    ...get(winner),
    ...v128Bitselect,
    ...set(BEST),
  ];
  /** dx at (x address + DELTA) = g & winner, then g = g & ~winner. */
  const route = (address: Code, winner: number): Code => [
    ...address,
    ...get(DELTA),
    ...i32Add,
    ...get(G),
    ...get(winner),
    ...v128And,
    ...store,
    ...get(G),
    ...get(winner),
    ...v128AndNot,
    ...set(G),
  ];
  return [
    ...negativeInfinity,
    ...set(BEST),
    ...step(get(A), W0),
    ...step(topRight, W1),
    ...step(bottomLeft, W2),
    // w3 = v11 > best (best is not needed after it)
    ...bottomRight,
    ...load,
    ...get(BEST),
    ...f32x4Gt,
    ...set(W3),
    ...get(DY),
    ...load,
    ...set(G),
    ...route(bottomRight, W3),
    ...route(bottomLeft, W2),
    ...route(topRight, W1),
    // the last one: dx00 = g & w0
    ...get(A),
    ...get(DELTA),
    ...i32Add,
    ...get(G),
    ...get(W0),
    ...v128And,
    ...store,
  ];
}

/** The function's instructions (branch depths count enclosing blocks outwards). */
function functionCode(): Code {
  return [
    ...get(DX),
    ...get(X),
    ...i32Sub,
    ...set(DELTA),
    ...get(X),
    ...set(ROW),
    ...block,
    ...loop, // $rowsDone, $rows
    ...get(WINDOW_ROWS),
    ...i32Eqz,
    ...brIf(1),
    ...get(ROW),
    ...set(PIXEL),
    ...get(OUT_WIDTH),
    ...set(N),
    ...block,
    ...loop, // $pixelsDone, $pixels
    ...get(N),
    ...i32Eqz,
    ...brIf(1),
    ...get(PIXEL),
    ...set(A),
    ...get(PIXEL_BYTES),
    ...set(LEFT),
    ...block,
    ...loop, // $quadsDone, $quads: 4 channels at a time
    ...get(LEFT),
    ...i32Const(16),
    ...i32LtU,
    ...brIf(1),
    ...windowLanes(v128Load, v128Store),
    ...bump(A, 16),
    ...bump(DY, 16),
    ...shrink(LEFT, 16),
    ...br(0),
    ...end,
    ...end,
    ...get(LEFT),
    ...i32Const(8),
    ...i32GeU,
    ...ifThen, // 2 channels left
    ...windowLanes(v128Load64Zero, v128Store64Lane0),
    ...bump(A, 8),
    ...bump(DY, 8),
    ...shrink(LEFT, 8),
    ...end,
    ...get(LEFT),
    ...ifThen, // 1 channel left
    ...windowLanes(v128Load32Zero, v128Store32Lane0),
    ...bump(DY, 4),
    ...end,
    // next window: two pixels on
    ...get(PIXEL),
    ...get(PIXEL_BYTES),
    ...i32Const(1),
    ...i32Shl,
    ...i32Add,
    ...set(PIXEL),
    ...shrink(N, 1),
    ...br(0),
    ...end,
    ...end,
    ...get(ROW),
    ...get(ROW_GAP_BYTES),
    ...i32Add,
    ...set(ROW),
    ...shrink(WINDOW_ROWS, 1),
    ...br(0),
    ...end,
    ...end,
    ...end, // the function's end
  ];
}

/** The function body: its locals, then its code. */
function functionBody(): number[] {
  const locals = vec(LOCALS.map(({ type, names }) => [...u32(names.length), type]));
  return [...locals, ...functionCode().flatMap(({ bytes }) => bytes)];
}

const EXPORT_NAME = 'maxPool2x2Grad';

/** The module's bytes. */
export function moduleBytes(): Uint8Array<ArrayBuffer> {
  const functionType = [0x60, ...vec(PARAMETERS.map(() => [I32])), ...vec([])]; // (i32 ×8) → ()
  const body = functionBody();
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d], // magic: \0asm
    ...[0x01, 0x00, 0x00, 0x00], // version 1
    ...section(1, vec([functionType])), // type section
    // import section: env.memory, a memory (0x02) with limits "min 0, no maximum" (0x00 0x00)
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, ...u32(0)]])),
    ...section(3, vec([u32(0)])), // function section: function 0 has type 0
    ...section(7, vec([[...name(EXPORT_NAME), 0x00, ...u32(0)]])), // export section: function 0
    ...section(10, vec([[...u32(body.length), ...body]])), // code section
  ]);
}

/**
 * The module as WebAssembly text, one instruction a line, made from the same instructions as
 * `moduleBytes` (the test assembles it back to those bytes).
 */
export const maxPool2x2GradWat = moduleText();

function moduleText(): string {
  const code = functionCode();
  // The function's own end: in the text, the parenthesis that closes the function.
  if (code.pop()?.text !== 'end') throw new Error("the function's code must finish with end");
  const lines = [
    '(module',
    '  (import "env" "memory" (memory 0))',
    `  (func (export "${EXPORT_NAME}")`,
    `    ${PARAMETERS.map((parameter) => `(param $${parameter} i32)`).join(' ')}`,
    ...LOCALS.map(({ text, names }) => `    ${names.map((local) => `(local $${local} ${text})`).join(' ')}`),
  ];
  let depth = 0;
  for (const { text, nesting } of code) {
    if (nesting < 0) depth--;
    lines.push(`${'  '.repeat(depth + 2)}${text}`);
    if (nesting > 0) depth++;
  }
  if (depth !== 0) throw new Error(`the function's blocks don't close (depth ${depth})`);
  return [...lines, '  )', ')', ''].join('\n');
}

/**
 * maxPool2x2Grad(x, dy, dx, windowRows, outWidth, pixelBytes, rowBytes, rowGapBytes), all byte
 * offsets and sizes in the imported memory.
 */
export type MaxPool2x2GradFn = (
  x: number,
  dy: number,
  dx: number,
  windowRows: number,
  outWidth: number,
  pixelBytes: number,
  rowBytes: number,
  rowGapBytes: number,
) => void;

const maxPoolModule = heapModule<MaxPool2x2GradFn>(moduleBytes, (exports) => {
  const fn = exports[EXPORT_NAME];
  return typeof fn === 'function' ? (fn as MaxPool2x2GradFn) : undefined;
});

/**
 * The function bound to `memory` (one instance per memory, made on first use), or undefined if it
 * can't be had: no SIMD128, or a shared memory (the module declares an unshared one).
 */
export function maxPool2x2GradOn(memory: WebAssembly.Memory): MaxPool2x2GradFn | undefined {
  return maxPoolModule.on(memory);
}

/** The same on this backend's memory. */
export function maxPool2x2GradOnBackend(backend: BackendWasm): MaxPool2x2GradFn | undefined {
  return maxPoolModule.onBackend(backend);
}

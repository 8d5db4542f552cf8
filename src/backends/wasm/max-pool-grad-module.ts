/**
 * The 2x2, stride-2 max-pool gradient as a tiny WebAssembly module (SIMD128) that works in place on
 * the tfjs wasm backend's own linear memory: it imports the backend's WebAssembly.Memory, so x, dy
 * and dx are read and written where the backend keeps them, with no copies.
 *
 * There is no assembler here, so the module's bytes are emitted by the small builder below, one
 * commented instruction at a time; `maxPool2x2GradWat` is the same function as text, for reading.
 * Semantics are the JavaScript pass's (kernels/MaxPoolGrad.ts): each window's dy goes to its FIRST
 * maximum in row-major order (strictly greater replaces), NaN and −∞ never win, a window with no
 * winner gets nothing, every other dx in the window is +0.
 */

/** The function as WebAssembly text (documentation only: the bytes come from `moduleBytes`). */
export const maxPool2x2GradWat = `
(module
  (import "env" "memory" (memory 0))
  ;; x, dy, dx: byte offsets of NHWC float32 tensors; windowRows = batch * outHeight when the input
  ;; height is even, else the caller calls once per image; pixelBytes = channels * 4;
  ;; rowBytes = inWidth * channels * 4; rowGapBytes = bytes from one window row's start to the next
  (func (export "maxPool2x2Grad")
      (param $x i32) (param $dy i32) (param $dx i32) (param $windowRows i32) (param $outWidth i32)
      (param $pixelBytes i32) (param $rowBytes i32) (param $rowGapBytes i32)
    (local $delta i32) (local $row i32) (local $pixel i32) (local $left i32) (local $a i32) (local $n i32)
    (local $best v128) (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $g v128)
    (local $v v128)
    (local.set $delta (i32.sub (local.get $dx) (local.get $x)))   ;; dx address = x address + delta
    (local.set $row (local.get $x))
    (block $rowsDone (loop $rows
      (br_if $rowsDone (i32.eqz (local.get $windowRows)))
      (local.set $pixel (local.get $row))
      (local.set $n (local.get $outWidth))
      (block $pixelsDone (loop $pixels
        (br_if $pixelsDone (i32.eqz (local.get $n)))
        (local.set $a (local.get $pixel))
        (local.set $left (local.get $pixelBytes))
        (block $quadsDone (loop $quads                   ;; 4 channels at a time
          (br_if $quadsDone (i32.lt_u (local.get $left) (i32.const 16)))
          WINDOW(v128.load, v128.store)
          (local.set $a (i32.add (local.get $a) (i32.const 16)))
          (local.set $dy (i32.add (local.get $dy) (i32.const 16)))
          (local.set $left (i32.sub (local.get $left) (i32.const 16)))
          (br $quads)))
        (if (i32.ge_u (local.get $left) (i32.const 8)) (then  ;; 2 channels left
          WINDOW(v128.load64_zero, v128.store64_lane 0)
          (local.set $a (i32.add (local.get $a) (i32.const 8)))
          (local.set $dy (i32.add (local.get $dy) (i32.const 8)))
          (local.set $left (i32.sub (local.get $left) (i32.const 8)))))
        (if (local.get $left) (then                        ;; 1 channel left
          WINDOW(v128.load32_zero, v128.store32_lane 0)
          (local.set $dy (i32.add (local.get $dy) (i32.const 4)))))
        (local.set $pixel (i32.add (local.get $pixel) (i32.shl (local.get $pixelBytes) (i32.const 1))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $pixels)))
      (local.set $row (i32.add (local.get $row) (local.get $rowGapBytes)))
      (local.set $windowRows (i32.sub (local.get $windowRows) (i32.const 1)))
      (br $rows)))))

  ;; WINDOW(load, store), for the lanes at $a (top left), $a + pixelBytes (top right),
  ;; $a + rowBytes (bottom left), $a + rowBytes + pixelBytes (bottom right) and dy at $dy:
  ;;   w0 = v00 > -inf              best = w0 ? v00 : -inf
  ;;   w1 = v01 > best              best = w1 ? v01 : best
  ;;   w2 = v10 > best              best = w2 ? v10 : best
  ;;   w3 = v11 > best
  ;;   dx11 = g & w3; g &= ~w3;  dx10 = g & w2; g &= ~w2;  dx01 = g & w1; g &= ~w1;  dx00 = g & w0
`;

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

// Control and variable instructions.
const block = [0x02, VOID];
const loop = [0x03, VOID];
const ifThen = [0x04, VOID];
const end = [0x0b];
const br = (depth: number): number[] => [0x0c, ...u32(depth)];
const brIf = (depth: number): number[] => [0x0d, ...u32(depth)];
const get = (local: number): number[] => [0x20, ...u32(local)]; // local.get
const set = (local: number): number[] => [0x21, ...u32(local)]; // local.set

// Numeric i32 instructions.
const i32Const = (value: number): number[] => [0x41, ...s32(value)];
const i32Eqz = [0x45];
const i32LtU = [0x49];
const i32GeU = [0x4f];
const i32Add = [0x6a];
const i32Sub = [0x6b];
const i32Shl = [0x74];

// SIMD instructions: prefix 0xfd, then the opcode as unsigned LEB128, then immediates.
const simd = (opcode: number, ...immediates: number[]): number[] => [0xfd, ...u32(opcode), ...immediates];
/** Memory argument: log2 of the alignment (float32 data: 4 bytes, so 2), then the offset (0). */
const memarg = [2, 0];
const v128Load = simd(0x00, ...memarg); // v128.load
const v128Store = simd(0x0b, ...memarg); // v128.store
const v128Load64Zero = simd(0x5d, ...memarg); // v128.load64_zero: 2 floats into lanes 0-1, zeros above
const v128Load32Zero = simd(0x5c, ...memarg); // v128.load32_zero: 1 float into lane 0
const v128Store64Lane0 = simd(0x5b, ...memarg, 0); // v128.store64_lane 0: lanes 0-1
const v128Store32Lane0 = simd(0x5a, ...memarg, 0); // v128.store32_lane 0: lane 0
const f32x4Gt = simd(0x44); // f32x4.gt: all ones where a > b (false when either is NaN)
const v128And = simd(0x4e); // v128.and
const v128AndNot = simd(0x4f); // v128.andnot: a & ~b
const v128Bitselect = simd(0x52); // v128.bitselect: (a & c) | (b & ~c)
/** v128.const f32x4(-inf, -inf, -inf, -inf). */
const negativeInfinity = simd(0x0c, ...Array.from({ length: 4 }, () => [0x00, 0x00, 0x80, 0xff]).flat());

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
const LOCALS = [
  [...u32(6), I32], // DELTA, ROW, PIXEL, LEFT, A, N
  [...u32(7), V128], // BEST, W0, W1, W2, W3, G, V
];

const addLocals = (x: number, y: number): number[] => [...get(x), ...get(y), ...i32Add];
const bump = (local: number, bytes: number): number[] => [...get(local), ...i32Const(bytes), ...i32Add, ...set(local)];
const shrink = (local: number, bytes: number): number[] => [...get(local), ...i32Const(bytes), ...i32Sub, ...set(local)];

/**
 * One set of lanes of every window position at A (4, 2 or 1 channels, by the load and store used):
 * the branch-free form of the JavaScript pass's four `if (v > best)` steps.
 */
function windowLanes(load: number[], store: number[]): number[] {
  const topRight = [...addLocals(A, PIXEL_BYTES)];
  const bottomLeft = [...addLocals(A, ROW_BYTES)];
  const bottomRight = [...addLocals(A, ROW_BYTES), ...get(PIXEL_BYTES), ...i32Add];
  const step = (address: number[], winner: number): number[] => [
    ...address, ...load, ...set(V),
    // winner = v > best
    ...get(V), ...get(BEST), ...f32x4Gt, ...set(winner),
    // best = winner ? v : best
    ...get(V), ...get(BEST), ...get(winner), ...v128Bitselect, ...set(BEST),
  ];
  /** dx at (x address + DELTA) = g & winner, then g = g & ~winner. */
  const route = (address: number[], winner: number): number[] => [
    ...address, ...get(DELTA), ...i32Add, ...get(G), ...get(winner), ...v128And, ...store,
    ...get(G), ...get(winner), ...v128AndNot, ...set(G),
  ];
  return [
    ...negativeInfinity, ...set(BEST),
    ...step(get(A), W0),
    ...step(topRight, W1),
    ...step(bottomLeft, W2),
    // w3 = v11 > best (best is not needed after it)
    ...bottomRight, ...load, ...get(BEST), ...f32x4Gt, ...set(W3),
    ...get(DY), ...load, ...set(G),
    ...route(bottomRight, W3),
    ...route(bottomLeft, W2),
    ...route(topRight, W1),
    // the last one: dx00 = g & w0
    ...get(A), ...get(DELTA), ...i32Add, ...get(G), ...get(W0), ...v128And, ...store,
  ];
}

/** The function body, as in `maxPool2x2GradWat` (branch depths count enclosing blocks outwards). */
function functionBody(): number[] {
  const code = [
    ...get(DX), ...get(X), ...i32Sub, ...set(DELTA),
    ...get(X), ...set(ROW),
    ...block, ...loop, // $rowsDone, $rows
    ...get(WINDOW_ROWS), ...i32Eqz, ...brIf(1),
    ...get(ROW), ...set(PIXEL),
    ...get(OUT_WIDTH), ...set(N),
    ...block, ...loop, // $pixelsDone, $pixels
    ...get(N), ...i32Eqz, ...brIf(1),
    ...get(PIXEL), ...set(A),
    ...get(PIXEL_BYTES), ...set(LEFT),
    ...block, ...loop, // $quadsDone, $quads: 4 channels at a time
    ...get(LEFT), ...i32Const(16), ...i32LtU, ...brIf(1),
    ...windowLanes(v128Load, v128Store),
    ...bump(A, 16), ...bump(DY, 16), ...shrink(LEFT, 16),
    ...br(0),
    ...end, ...end,
    ...get(LEFT), ...i32Const(8), ...i32GeU, ...ifThen, // 2 channels left
    ...windowLanes(v128Load64Zero, v128Store64Lane0),
    ...bump(A, 8), ...bump(DY, 8), ...shrink(LEFT, 8),
    ...end,
    ...get(LEFT), ...ifThen, // 1 channel left
    ...windowLanes(v128Load32Zero, v128Store32Lane0),
    ...bump(DY, 4),
    ...end,
    // next window: two pixels on
    ...get(PIXEL), ...get(PIXEL_BYTES), ...i32Const(1), ...i32Shl, ...i32Add, ...set(PIXEL),
    ...shrink(N, 1),
    ...br(0),
    ...end, ...end,
    ...get(ROW), ...get(ROW_GAP_BYTES), ...i32Add, ...set(ROW),
    ...shrink(WINDOW_ROWS, 1),
    ...br(0),
    ...end, ...end,
    ...end, // the function's end
  ];
  return [...vec(LOCALS), ...code];
}

export const EXPORT_NAME = 'maxPool2x2Grad';

/** The module's bytes. */
export function moduleBytes(): Uint8Array<ArrayBuffer> {
  const functionType = [0x60, ...vec(Array.from({ length: 8 }, () => [I32])), ...vec([])]; // (i32 ×8) → ()
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

let compiled: WebAssembly.Module | null | undefined;
const instances = new WeakMap<WebAssembly.Memory, MaxPool2x2GradFn>();

/** The compiled module, or null where this runtime can't compile it (no SIMD128). */
function compiledModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(moduleBytes());
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/**
 * The function bound to `memory` (one instance per memory, made on first use), or undefined if it
 * can't be had: no SIMD128, or a shared memory (the module declares an unshared one).
 */
export function maxPool2x2GradOn(memory: WebAssembly.Memory): MaxPool2x2GradFn | undefined {
  const known = instances.get(memory);
  if (known !== undefined) return known;
  if (typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer) return undefined;
  const module = compiledModule();
  if (module === null) return undefined;
  try {
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const fn = instance.exports[EXPORT_NAME] as MaxPool2x2GradFn;
    instances.set(memory, fn);
    return fn;
  } catch {
    return undefined;
  }
}

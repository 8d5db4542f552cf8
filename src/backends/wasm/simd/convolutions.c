/*
 * Kernels of convolutional, dense and BatchNorm layers for the wasm backend, and the elementwise
 * kernels of their gradients it runs slowly (ReLU6's), in WebAssembly SIMD128, built by build.sh
 * into convolutions.wasm. The module imports the backend's memory and owns none of
 * its own: every pointer is a byte offset into the backend's heap, and nothing here may use a
 * stack in memory (build.sh refuses a module that does), so all working values stay in locals.
 *
 * Layouts are TensorFlow.js's: images NHWC, filters HWIO ([kh][kw][ci][co]), matrices row-major.
 * Seen from one filter row kh, the values a filter row multiplies are contiguous in the image:
 * x[b, ih, iw + kw, ci] for kw, ci in order is the run x[b, ih, iw, 0 .. kW·inC), and the
 * filter's [kh] slice is the matrix [kW·inC][co]. So the convolution kernels are small matrix
 * products over that run ("row" r = kw·inC + ci), with only the image's edges (padding) needing
 * care.
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* The first `lanes` (1-4) floats at p, the other lanes zero; reads nothing past them. */
static inline v128_t load_lanes(const float *p, int lanes) {
  switch (lanes) {
    case 4: return wasm_v128_load(p);
    case 3: return wasm_v128_load32_lane(p + 2, wasm_v128_load64_zero(p), 2);
    case 2: return wasm_v128_load64_zero(p);
    default: return wasm_v128_load32_zero(p);
  }
}

/* The first `lanes` (1-4) lanes of v into p; writes nothing past them. */
static inline void store_lanes(float *p, v128_t v, int lanes) {
  switch (lanes) {
    case 4: wasm_v128_store(p, v); break;
    case 3: wasm_v128_store64_lane(p, v, 0); wasm_v128_store32_lane(p + 2, v, 2); break;
    case 2: wasm_v128_store64_lane(p, v, 0); break;
    default: wasm_v128_store32_lane(p, v, 0); break;
  }
}

#define MULADD(acc, a, b) (acc) = wasm_f32x4_add((acc), wasm_f32x4_mul((a), (b)))

/* ---- forward convolution ------------------------------------------------------------------- */

/*
 * The filter as panels of 8 output channels, [co / 8][kH·kW·inC][8], zeros past outC, so the
 * forward kernel reads each tile's weights in order and in whole vectors.
 */
EXPORT(pack_filter)
void pack_filter(const float *w, float *packed, int rows, int outC) {
  for (int c0 = 0; c0 < outC; c0 += 8) {
    float *panel = packed + c0 * rows;
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < 8; c++) panel[r * 8 + c] = c0 + c < outC ? w[r * outC + c0 + c] : 0.0f;
  }
}

/*
 * One tile of the output: PX neighbouring pixels of one output row, NV vectors (4·NV channels) of
 * output channels from `co`. For each filter row kh, the kw columns every pixel of the tile sees
 * inside the image go through the fast loop; the others, at the image's left and right edges, for
 * the pixels that see them.
 */
#define CONV_TILE(PX, NV)                                                                          \
  static inline void conv_tile_##PX##_##NV(                                                        \
      const float *x, const float *wp, float *y, int b, int oh, int ow, int co, int inH, int inW,  \
      int inC, int outH, int outW, int outC, int kH, int kW, int sH, int sW, int padTop,           \
      int padLeft) {                                                                               \
    v128_t acc[PX][NV];                                                                            \
    for (int j = 0; j < PX; j++)                                                                   \
      for (int v = 0; v < NV; v++) acc[j][v] = wasm_f32x4_splat(0.0f);                             \
    const int run = kW * inC;                                                                      \
    const int firstColumn = ow * sW - padLeft;                                                     \
    const int lastColumn = (ow + PX - 1) * sW - padLeft;                                           \
    /* kw columns inside the image for every pixel of the tile */                                 \
    const int kwLo = MIN(kW, MAX(0, -firstColumn));                                                \
    const int kwHi = MAX(kwLo, MIN(kW, inW - lastColumn));                                         \
    for (int kh = 0; kh < kH; kh++) {                                                              \
      const int ih = oh * sH + kh - padTop;                                                        \
      if (ih < 0 || ih >= inH) continue;                                                           \
      const float *row = x + ((b * inH + ih) * inW) * inC;                                         \
      const float *wk = wp + co * kH * run + kh * run * 8;                                         \
      const float *px[PX];                                                                         \
      for (int j = 0; j < PX; j++) px[j] = row + ((ow + j) * sW - padLeft) * inC;                  \
      for (int r = kwLo * inC; r < kwHi * inC; r++) {                                              \
        const float *wr = wk + r * 8;                                                              \
        v128_t wv[NV];                                                                             \
        for (int v = 0; v < NV; v++) wv[v] = wasm_v128_load(wr + 4 * v);                           \
        for (int j = 0; j < PX; j++) {                                                             \
          const v128_t xs = wasm_v128_load32_splat(px[j] + r);                                     \
          for (int v = 0; v < NV; v++) MULADD(acc[j][v], xs, wv[v]);                               \
        }                                                                                          \
      }                                                                                            \
      if (kwLo == 0 && kwHi == kW) continue;                                                       \
      for (int kw = 0; kw < kW; kw++) {                                                            \
        if (kw >= kwLo && kw < kwHi) continue;                                                     \
        int inside[PX], count = 0;                                                                 \
        for (int j = 0; j < PX; j++) {                                                             \
          const int column = (ow + j) * sW - padLeft + kw;                                         \
          inside[j] = column >= 0 && column < inW;                                                 \
          count += inside[j];                                                                      \
        }                                                                                          \
        if (count == 1) {                                                                          \
          /* one pixel sees this column: its own loop, without the other pixels' tests */          \
          for (int j = 0; j < PX; j++) {                                                           \
            if (!inside[j]) continue;                                                              \
            for (int ci = 0; ci < inC; ci++) {                                                     \
              const int r = kw * inC + ci;                                                         \
              const v128_t xs = wasm_v128_load32_splat(px[j] + r);                                 \
              for (int v = 0; v < NV; v++) MULADD(acc[j][v], xs, wasm_v128_load(wk + r * 8 + 4 * v)); \
            }                                                                                      \
          }                                                                                        \
          continue;                                                                                \
        }                                                                                          \
        /* several: each weight vector loaded once for all of them */                              \
        for (int ci = 0; count > 1 && ci < inC; ci++) {                                            \
          const int r = kw * inC + ci;                                                             \
          v128_t wv[NV];                                                                           \
          for (int v = 0; v < NV; v++) wv[v] = wasm_v128_load(wk + r * 8 + 4 * v);                \
          for (int j = 0; j < PX; j++) {                                                           \
            if (!inside[j]) continue;                                                              \
            const v128_t xs = wasm_v128_load32_splat(px[j] + r);                                   \
            for (int v = 0; v < NV; v++) MULADD(acc[j][v], xs, wv[v]);                             \
          }                                                                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
    for (int j = 0; j < PX; j++) {                                                                 \
      float *out = y + ((b * outH + oh) * outW + ow + j) * outC + co;                              \
      for (int v = 0; v < NV; v++) store_lanes(out + 4 * v, acc[j][v], MIN(4, outC - co - 4 * v)); \
    }                                                                                              \
  }

CONV_TILE(4, 2)
CONV_TILE(4, 1)
CONV_TILE(1, 2)
CONV_TILE(1, 1)

/*
 * y[b, oh, ow, co] = Σ_{kh, kw, ci} x[b, oh·sH + kh − padTop, ow·sW + kw − padLeft, ci] · w[kh, kw, ci, co],
 * taps outside the image reading zero; `packed` is the filter as pack_filter leaves it.
 */
EXPORT(conv2d)
void conv2d(const float *x, const float *packed, float *y, int batch, int inH, int inW, int inC,
            int outH, int outW, int outC, int kH, int kW, int sH, int sW, int padTop,
            int padLeft) {
  for (int b = 0; b < batch; b++) {
    for (int oh = 0; oh < outH; oh++) {
      for (int co = 0; co < outC; co += 8) {
        const int wide = outC - co > 4;
        int ow = 0;
        for (; ow + 4 <= outW; ow += 4) {
          if (wide)
            conv_tile_4_2(x, packed, y, b, oh, ow, co, inH, inW, inC, outH, outW, outC, kH, kW, sH, sW, padTop, padLeft);
          else
            conv_tile_4_1(x, packed, y, b, oh, ow, co, inH, inW, inC, outH, outW, outC, kH, kW, sH, sW, padTop, padLeft);
        }
        for (; ow < outW; ow++) {
          if (wide)
            conv_tile_1_2(x, packed, y, b, oh, ow, co, inH, inW, inC, outH, outW, outC, kH, kW, sH, sW, padTop, padLeft);
          else
            conv_tile_1_1(x, packed, y, b, oh, ow, co, inH, inW, inC, outH, outW, outC, kH, kW, sH, sW, padTop, padLeft);
        }
      }
    }
  }
}

/* ---- filter gradient ----------------------------------------------------------------------- */

/*
 * dw[kh, r, co] = Σ_q X_kh[q, r] · dy[q, co] over the output pixels q, where X_kh[q, r] is the
 * image value filter row kh and row r = kw·inC + ci meet at q: a matrix product whose long axis
 * (the pixels) is strided in both operands as they lie. So a block of pixels at a time is packed
 * into `scratch`: dy in panels of 8 channels, [coBlock][q][8], and per filter row kh the image run
 * in tiles of 4 rows, [rowTile][q][4], zeros where a tap falls outside the image; the product then
 * reads both panels in order, 4 rows × 8 channels of dw per pass.
 */
EXPORT(filter_gradient_pixel_floats)
int filter_gradient_pixel_floats(int inC, int kW, int outC) {
  return ((outC + 7) / 8) * 8 + ((kW * inC + 3) / 4) * 4;
}

static inline v128_t lane_splat(v128_t v, int lane) {
  switch (lane) {
    case 0: return wasm_i32x4_shuffle(v, v, 0, 0, 0, 0);
    case 1: return wasm_i32x4_shuffle(v, v, 1, 1, 1, 1);
    case 2: return wasm_i32x4_shuffle(v, v, 2, 2, 2, 2);
    default: return wasm_i32x4_shuffle(v, v, 3, 3, 3, 3);
  }
}

/* Adds the first `channels` (at most 8 of them count) lanes of lo, hi to the floats at p. */
static inline void add_into_row(float *p, v128_t lo, v128_t hi, int channels) {
  const int first = MIN(4, channels);
  store_lanes(p, wasm_f32x4_add(load_lanes(p, first), lo), first);
  if (channels > 4) {
    const int second = MIN(4, channels - 4);
    store_lanes(p + 4, wasm_f32x4_add(load_lanes(p + 4, second), hi), second);
  }
}

/* Adds a 4-row × 8-channel tile to the first `rows` rows (stride floats apart) and `channels` channels at p. */
static inline void add_tile_into(float *p, int stride, v128_t acc[4][2], int rows, int channels) {
  add_into_row(p, acc[0][0], acc[0][1], channels);
  if (rows > 1) add_into_row(p + stride, acc[1][0], acc[1][1], channels);
  if (rows > 2) add_into_row(p + 2 * stride, acc[2][0], acc[2][1], channels);
  if (rows > 3) add_into_row(p + 3 * stride, acc[3][0], acc[3][1], channels);
}

/*
 * `scratch` (scratchFloats floats) holds the panels of scratchFloats / filter_gradient_pixel_floats
 * pixels at a time, at least one pixel's; dw is overwritten.
 */
EXPORT(conv2d_backprop_filter)
void conv2d_backprop_filter(const float *x, const float *dy, float *dw, float *scratch,
                            int scratchFloats, int batch, int inH, int inW, int inC, int outH,
                            int outW, int outC, int kH, int kW, int sH, int sW, int padTop,
                            int padLeft) {
  const int run = kW * inC;
  const int rowTiles = (run + 3) / 4;
  const int coBlocks = (outC + 7) / 8;
  const int block = MAX(1, scratchFloats / filter_gradient_pixel_floats(inC, kW, outC));
  const int pixels = batch * outH * outW;
  float *dyPanels = scratch;
  for (int i = 0; i < kH * run * outC; i++) dw[i] = 0.0f;
  for (int q0 = 0; q0 < pixels; q0 += block) {
    const int count = MIN(block, pixels - q0);
    float *xTiles = scratch + coBlocks * 8 * count;
    /* dy's panels */
    for (int q = 0; q < count; q++) {
      const float *from = dy + (q0 + q) * outC;
      for (int cb = 0; cb < coBlocks; cb++) {
        float *to = dyPanels + (cb * count + q) * 8;
        const int c0 = cb * 8;
        wasm_v128_store(to, load_lanes(from + c0, MIN(4, outC - c0)));
        wasm_v128_store(to + 4, outC - c0 > 4 ? load_lanes(from + c0 + 4, MIN(4, outC - c0 - 4)) : wasm_f32x4_splat(0.0f));
      }
    }
    for (int kh = 0; kh < kH; kh++) {
      /* the image runs filter row kh meets, as 4-row tiles */
      int ow = q0 % outW, oh = (q0 / outW) % outH, b = q0 / (outW * outH);
      for (int q = 0; q < count; q++, ow++) {
        if (ow == outW) {
          ow = 0;
          if (++oh == outH) oh = 0, b++;
        }
        const int ih = oh * sH + kh - padTop;
        const int column = ow * sW - padLeft;
        const float *from = x + ((b * inH + ih) * inW + column) * inC;
        const int rowInside = ih >= 0 && ih < inH;
        const int allInside = rowInside && column >= 0 && column + kW <= inW;
        for (int t = 0; t < rowTiles; t++) {
          float *to = xTiles + (t * count + q) * 4;
          const int r0 = t * 4;
          if (allInside) {
            wasm_v128_store(to, load_lanes(from + r0, MIN(4, run - r0)));
            continue;
          }
          for (int i = 0; i < 4; i++) {
            const int r = r0 + i;
            const int kw = r / inC;
            const int inside = rowInside && r < run && column + kw >= 0 && column + kw < inW;
            to[i] = inside ? from[r] : 0.0f;
          }
        }
      }
      /* the product, 4 rows × 8 channels of dw[kh] at a time */
      for (int t = 0; t < rowTiles; t++) {
        const float *xs = xTiles + t * count * 4;
        const int rows = MIN(4, run - t * 4);
        for (int cb = 0; cb < coBlocks; cb++) {
          const float *ds = dyPanels + cb * count * 8;
          v128_t acc[4][2];
          for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = wasm_f32x4_splat(0.0f);
          for (int q = 0; q < count; q++) {
            const v128_t xv = wasm_v128_load(xs + q * 4);
            const v128_t d0 = wasm_v128_load(ds + q * 8);
            const v128_t d1 = wasm_v128_load(ds + q * 8 + 4);
            for (int i = 0; i < 4; i++) {
              const v128_t s = lane_splat(xv, i);
              MULADD(acc[i][0], s, d0);
              MULADD(acc[i][1], s, d1);
            }
          }
          add_tile_into(dw + (kh * run + t * 4) * outC + cb * 8, outC, acc, rows, outC - cb * 8);
        }
      }
    }
  }
}

/* ---- filter gradient, few rows: straight from x and dy --------------------------------------- */

/*
 * One tile of the filter gradient of filter row kh: RT rows (r = kw·inC + ci) from r0, NV vectors
 * of output channels from co, summed over the output pixels of images b0 .. b1 and added to what
 * dw holds (`first`: nothing yet). A block of images at a time, so their dy and x stay in cache
 * while every tile of the gradient reads them.
 */
#define FILTER_TILE(RT, NV)                                                                        \
  static inline void filter_tile_##RT##_##NV(                                                      \
      const float *x, const float *dy, float *dw, int first, int b0, int b1, int kh, int r0, int co, \
      int inH, int inW, int inC, int outH, int outW, int outC, int kW, int sH, int sW,             \
      int padTop, int padLeft) {                                                                   \
    const int run = kW * inC;                                                                      \
    float *target = dw + (kh * run + r0) * outC + co;                                              \
    int lanes[NV];                                                                                 \
    for (int v = 0; v < NV; v++) lanes[v] = MIN(4, outC - co - 4 * v);                             \
    v128_t acc[RT][NV];                                                                            \
    for (int i = 0; i < RT; i++)                                                                   \
      for (int v = 0; v < NV; v++)                                                                 \
        acc[i][v] = first ? wasm_f32x4_splat(0.0f) : load_lanes(target + i * outC + 4 * v, lanes[v]); \
    /* ow range in which every row's column is inside the image */                                \
    int owLo = 0, owHi = outW;                                                                     \
    for (int i = 0; i < RT; i++) {                                                                 \
      const int kw = (r0 + i) / inC;                                                               \
      /* 0 <= ow·sW − padLeft + kw < inW */                                                        \
      const int lo = MAX(0, (padLeft - kw + sW - 1) / sW);                                         \
      const int hi = MIN(outW, inW - 1 + padLeft - kw < 0 ? 0 : (inW - 1 + padLeft - kw) / sW + 1); \
      owLo = MAX(owLo, lo);                                                                        \
      owHi = MIN(owHi, hi);                                                                        \
    }                                                                                              \
    if (owHi < owLo) owHi = owLo;                                                                  \
    const int tail = lanes[NV - 1] < 4;                                                            \
    for (int b = b0; b < b1; b++)                                                                  \
    for (int oh = 0; oh < outH; oh++) {                                                            \
      const int ih = oh * sH + kh - padTop;                                                        \
      if (ih < 0 || ih >= inH) continue;                                                           \
      const float *row = x + ((b * inH + ih) * inW) * inC + r0;                                    \
      const float *grad = dy + ((b * outH + oh) * outW) * outC + co;                               \
      for (int ow = owLo; ow < owHi; ow++) {                                                       \
        const float *xs = row + (ow * sW - padLeft) * inC;                                         \
        const float *g = grad + ow * outC;                                                         \
        v128_t gv[NV];                                                                             \
        for (int v = 0; v < NV - 1; v++) gv[v] = wasm_v128_load(g + 4 * v);                        \
        gv[NV - 1] = tail ? load_lanes(g + 4 * (NV - 1), lanes[NV - 1]) : wasm_v128_load(g + 4 * (NV - 1)); \
        for (int i = 0; i < RT; i++) {                                                             \
          const v128_t s = wasm_v128_load32_splat(xs + i);                                         \
          for (int v = 0; v < NV; v++) MULADD(acc[i][v], s, gv[v]);                                \
        }                                                                                          \
      }                                                                                            \
      /* the image's edges: each row on its own */                                                \
      for (int ow = 0; ow < outW; ow++) {                                                          \
        if (ow >= owLo && ow < owHi) continue;                                                     \
        const int column = ow * sW - padLeft;                                                      \
        const float *g = grad + ow * outC;                                                         \
        for (int i = 0; i < RT; i++) {                                                             \
          const int kw = (r0 + i) / inC;                                                           \
          if (column + kw < 0 || column + kw >= inW) continue;                                     \
          const v128_t s = wasm_v128_load32_splat(row + column * inC + i);                         \
          for (int v = 0; v < NV; v++) MULADD(acc[i][v], s, load_lanes(g + 4 * v, lanes[v]));      \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
    for (int i = 0; i < RT; i++)                                                                   \
      for (int v = 0; v < NV; v++) store_lanes(target + i * outC + 4 * v, acc[i][v], lanes[v]);    \
  }

FILTER_TILE(4, 2)
FILTER_TILE(4, 1)
FILTER_TILE(2, 2)
FILTER_TILE(2, 1)
FILTER_TILE(1, 2)
FILTER_TILE(1, 1)

/* Images per pass over the gradient's tiles: as many as keep their x and dy within this (bytes), in L2. */
#define IMAGE_BLOCK_BYTES (128 * 1024)

/*
 * conv2d_backprop_filter's result without its packing, which does not pay where a filter row
 * meets fewer than 8 image values (kW·inC < 8: a first layer on grey images, LeNet-5's 5×5 on
 * MNIST).
 */
EXPORT(conv2d_backprop_filter_direct)
void conv2d_backprop_filter_direct(const float *x, const float *dy, float *dw, int batch, int inH,
                            int inW, int inC, int outH, int outW, int outC, int kH, int kW,
                            int sH, int sW, int padTop, int padLeft) {
  const int run = kW * inC;
  const int imageBytes = 4 * (inH * inW * inC + outH * outW * outC);
  const int block = MAX(1, IMAGE_BLOCK_BYTES / imageBytes);
  for (int b0 = 0; b0 < batch; b0 += block) {
    const int b1 = MIN(batch, b0 + block);
    const int first = b0 == 0;
    for (int kh = 0; kh < kH; kh++) {
      for (int co = 0; co < outC; co += 8) {
        const int wide = outC - co > 4;
#define FILTER_TILES(RT)                                                                            \
        if (wide)                                                                                   \
          filter_tile_##RT##_2(x, dy, dw, first, b0, b1, kh, r, co, inH, inW, inC, outH, outW, outC, kW, sH, sW, padTop, padLeft); \
        else                                                                                        \
          filter_tile_##RT##_1(x, dy, dw, first, b0, b1, kh, r, co, inH, inW, inC, outH, outW, outC, kW, sH, sW, padTop, padLeft);
        int r = 0;
        for (; r + 4 <= run; r += 4) { FILTER_TILES(4) }
        for (; r + 2 <= run; r += 2) { FILTER_TILES(2) }
        for (; r < run; r++) { FILTER_TILES(1) }
#undef FILTER_TILES
      }
    }
  }
}

/* ---- depthwise convolution gradients ------------------------------------------------------- */

/*
 * A depthwise convolution with channel multiplier m filters each input channel c on its own into
 * the m output channels c·m .. c·m + m − 1, with the filter [kh][kw][c][q] (outC = inC·m):
 *   y[b, oh, ow, c·m + q] = Σ_{kh, kw} x[b, oh·sH + kh − padTop, ow·sW + kw − padLeft, c] · w[kh, kw, c, q].
 * With m = 1, the usual case (MobileNet's), channel c of x, y and the filter lie at the same index,
 * so the gradients below run 4 channels to a vector; other multipliers take a scalar loop.
 */

/*
 * The filter rows k (kh or kw) that reach output row (column) o = (r − k) / s, r = i + pad, for one
 * image row (column) i: k ≡ r (mod s), 0 ≤ k < kSize, 0 ≤ o < outSize. The first is *first, the end
 * (exclusive) *end, stepping by s.
 */
static inline void taps_reaching(int r, int s, int kSize, int outSize, int *first, int *end) {
  const int lowest = r - (outSize - 1) * s; /* ≡ r (mod s) */
  *first = lowest > 0 ? lowest : r % s;
  *end = MIN(kSize, r + 1);
}

/* p[c] += a[c] · b[c] for the C channels at p, a and b; writes nothing past them. */
static inline void add_products(float *p, const float *a, const float *b, int C) {
  int c = 0;
  for (; c + 4 <= C; c += 4)
    wasm_v128_store(p + c, wasm_f32x4_add(wasm_v128_load(p + c), wasm_f32x4_mul(wasm_v128_load(a + c), wasm_v128_load(b + c))));
  if (c < C) {
    const int lanes = C - c;
    store_lanes(p + c, wasm_f32x4_add(load_lanes(p + c, lanes), wasm_f32x4_mul(load_lanes(a + c, lanes), load_lanes(b + c, lanes))), lanes);
  }
}

/*
 * dx[b, ih, iw, c] = Σ_{kh, kw, q} dy[b, oh, ow, c·m + q] · w[kh, kw, c, q] over the taps with
 * ih = oh·sH + kh − padTop, iw = ow·sW + kw − padLeft: each dx pixel's channels summed in place,
 * one tap at a time, so every pass reads dy's and the filter's channels in order.
 */
EXPORT(depthwise_conv2d_backprop_input)
void depthwise_conv2d_backprop_input(const float *dy, const float *w, float *dx, int batch, int inH,
                                     int inW, int inC, int outH, int outW, int multiplier, int kH,
                                     int kW, int sH, int sW, int padTop, int padLeft) {
  const int outC = inC * multiplier;
  for (int b = 0; b < batch; b++) {
    for (int ih = 0; ih < inH; ih++) {
      int khFirst, khEnd;
      taps_reaching(ih + padTop, sH, kH, outH, &khFirst, &khEnd);
      for (int iw = 0; iw < inW; iw++) {
        int kwFirst, kwEnd;
        taps_reaching(iw + padLeft, sW, kW, outW, &kwFirst, &kwEnd);
        float *out = dx + ((b * inH + ih) * inW + iw) * inC;
        for (int c = 0; c < inC; c++) out[c] = 0.0f;
        for (int kh = khFirst; kh < khEnd; kh += sH) {
          const int oh = (ih + padTop - kh) / sH;
          for (int kw = kwFirst; kw < kwEnd; kw += sW) {
            const int ow = (iw + padLeft - kw) / sW;
            const float *g = dy + ((b * outH + oh) * outW + ow) * outC;
            const float *wt = w + (kh * kW + kw) * outC;
            if (multiplier == 1) {
              add_products(out, g, wt, inC);
              continue;
            }
            for (int c = 0; c < inC; c++)
              for (int q = 0; q < multiplier; q++) out[c] += g[c * multiplier + q] * wt[c * multiplier + q];
          }
        }
      }
    }
  }
}

/* The sum of v's four lanes. */
static inline float lane_sum(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
         wasm_f32x4_extract_lane(v, 3);
}

/*
 * The input gradient of a convolution straight from its definition, for the layers where recasting
 * it as a forward convolution of dy (Conv2DBackpropInput.ts) wastes most of the work: a first
 * layer on RGB images at stride 2 (MobileNetV2's), where the zeros inserted between dy's pixels
 * quadruple the work and 3 output channels fill 3 lanes of the 8-wide tiles.
 *   dx[b, ih, iw, ci] = Σ_{kh, kw, co} dy[b, oh, ow, co] · w[kh, kw, ci, co]
 * over the taps with ih = oh·sH + kh − padTop, iw = ow·sW + kw − padLeft. Each dx value is a dot
 * product over dy's channels, which lie in order beside the filter's [kh, kw, ci] row.
 */
EXPORT(conv2d_backprop_input_direct)
void conv2d_backprop_input_direct(const float *dy, const float *w, float *dx, int batch, int inH, int inW,
                                  int inC, int outH, int outW, int outC, int kH, int kW, int sH, int sW,
                                  int padTop, int padLeft) {
  for (int b = 0; b < batch; b++) {
    for (int ih = 0; ih < inH; ih++) {
      int khFirst, khEnd;
      taps_reaching(ih + padTop, sH, kH, outH, &khFirst, &khEnd);
      for (int iw = 0; iw < inW; iw++) {
        int kwFirst, kwEnd;
        taps_reaching(iw + padLeft, sW, kW, outW, &kwFirst, &kwEnd);
        float *out = dx + ((b * inH + ih) * inW + iw) * inC;
        for (int ci = 0; ci < inC; ci++) {
          v128_t acc = wasm_f32x4_splat(0.0f);
          for (int kh = khFirst; kh < khEnd; kh += sH) {
            const int oh = (ih + padTop - kh) / sH;
            for (int kw = kwFirst; kw < kwEnd; kw += sW) {
              const int ow = (iw + padLeft - kw) / sW;
              const float *g = dy + ((b * outH + oh) * outW + ow) * outC;
              const float *wt = w + ((kh * kW + kw) * inC + ci) * outC;
              int co = 0;
              for (; co + 4 <= outC; co += 4) MULADD(acc, wasm_v128_load(g + co), wasm_v128_load(wt + co));
              if (co < outC) MULADD(acc, load_lanes(g + co, outC - co), load_lanes(wt + co, outC - co));
            }
          }
          out[ci] = lane_sum(acc);
        }
      }
    }
  }
}

/*
 * The forward depthwise convolution (the formula above), 16 channels of one output pixel at a time
 * in four vectors summed over the taps inside the image, at multiplier 1; a scalar loop at others,
 * which DepthwiseConv2dNative.ts leaves to XNNPACK (faster there).
 */
EXPORT(depthwise_conv2d)
void depthwise_conv2d(const float *x, const float *w, float *y, int batch, int inH, int inW, int inC,
                      int outH, int outW, int multiplier, int kH, int kW, int sH, int sW, int padTop,
                      int padLeft) {
  const int outC = inC * multiplier;
  for (int b = 0; b < batch; b++) {
    for (int oh = 0; oh < outH; oh++) {
      const int top = oh * sH - padTop;
      const int khFirst = MAX(0, -top), khEnd = MIN(kH, inH - top);
      for (int ow = 0; ow < outW; ow++) {
        const int left = ow * sW - padLeft;
        const int kwFirst = MAX(0, -left), kwEnd = MIN(kW, inW - left);
        float *out = y + ((b * outH + oh) * outW + ow) * outC;
        /* The index of the tap (0, 0), outside x where the padding is: only taps inside are read. */
        const int corner = ((b * inH + top) * inW + left) * inC;
        if (multiplier != 1) {
          for (int o = 0; o < outC; o++) {
            const int c = o / multiplier;
            float sum = 0.0f;
            for (int kh = khFirst; kh < khEnd; kh++)
              for (int kw = kwFirst; kw < kwEnd; kw++)
                sum += x[corner + (kh * inW + kw) * inC + c] * w[(kh * kW + kw) * outC + o];
            out[o] = sum;
          }
          continue;
        }
        int c = 0;
        for (; c + 16 <= inC; c += 16) {
          v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
          for (int kh = khFirst; kh < khEnd; kh++) {
            for (int kw = kwFirst; kw < kwEnd; kw++) {
              const float *xs = x + (corner + (kh * inW + kw) * inC + c);
              const float *ws = w + (kh * kW + kw) * inC + c;
              MULADD(a0, wasm_v128_load(xs), wasm_v128_load(ws));
              MULADD(a1, wasm_v128_load(xs + 4), wasm_v128_load(ws + 4));
              MULADD(a2, wasm_v128_load(xs + 8), wasm_v128_load(ws + 8));
              MULADD(a3, wasm_v128_load(xs + 12), wasm_v128_load(ws + 12));
            }
          }
          wasm_v128_store(out + c, a0);
          wasm_v128_store(out + c + 4, a1);
          wasm_v128_store(out + c + 8, a2);
          wasm_v128_store(out + c + 12, a3);
        }
        for (; c < inC; c += 4) {
          const int lanes = MIN(4, inC - c);
          v128_t acc = wasm_f32x4_splat(0.0f);
          for (int kh = khFirst; kh < khEnd; kh++)
            for (int kw = kwFirst; kw < kwEnd; kw++)
              MULADD(acc, load_lanes(x + (corner + (kh * inW + kw) * inC + c), lanes), load_lanes(w + (kh * kW + kw) * inC + c, lanes));
          store_lanes(out + c, acc, lanes);
        }
      }
    }
  }
}

/* The output columns [*first, *end) whose tap kw falls inside the image: 0 ≤ ow·sW + kw − padLeft < inW. */
static inline void columns_inside(int kw, int sW, int padLeft, int inW, int outW, int *first, int *end) {
  const int lowest = padLeft - kw; /* ow·sW ≥ lowest */
  const int highest = inW - 1 + padLeft - kw; /* ow·sW ≤ highest */
  *first = lowest > 0 ? (lowest + sW - 1) / sW : 0;
  *end = highest < 0 ? 0 : MIN(outW, highest / sW + 1);
  if (*end < *first) *end = *first;
}

/* Σ over the output columns [first, end) of one row of x·dy, channels c .. c + lanes (multiplier 1). */
static inline v128_t filter_gradient_lanes(const float *xRow, const float *dyRow, int c, int lanes, int C,
                                           int kw, int sW, int padLeft, int first, int end) {
  v128_t acc = wasm_f32x4_splat(0.0f);
  for (int ow = first; ow < end; ow++)
    MULADD(acc, load_lanes(xRow + (ow * sW + kw - padLeft) * C + c, lanes), load_lanes(dyRow + ow * C + c, lanes));
  return acc;
}

/*
 * dw[kh, kw, c, q] = Σ_{b, oh, ow} x[b, oh·sH + kh − padTop, ow·sW + kw − padLeft, c] · dy[b, oh, ow, c·m + q],
 * taps outside the image adding nothing. Summed one output row at a time, then row by row into dw,
 * which keeps the float32 rounding of large batches near the cpu backend's float64 sums.
 */
EXPORT(depthwise_conv2d_backprop_filter)
void depthwise_conv2d_backprop_filter(const float *x, const float *dy, float *dw, int batch, int inH,
                                      int inW, int inC, int outH, int outW, int multiplier, int kH,
                                      int kW, int sH, int sW, int padTop, int padLeft) {
  const int outC = inC * multiplier;
  for (int i = 0; i < kH * kW * outC; i++) dw[i] = 0.0f;
  for (int b = 0; b < batch; b++) {
    for (int oh = 0; oh < outH; oh++) {
      const float *dyRow = dy + (b * outH + oh) * outW * outC;
      for (int kh = 0; kh < kH; kh++) {
        const int ih = oh * sH + kh - padTop;
        if (ih < 0 || ih >= inH) continue;
        const float *xRow = x + (b * inH + ih) * inW * inC;
        for (int kw = 0; kw < kW; kw++) {
          int first, end;
          columns_inside(kw, sW, padLeft, inW, outW, &first, &end);
          float *tap = dw + (kh * kW + kw) * outC;
          if (multiplier == 1) {
            int c = 0;
            for (; c + 4 <= inC; c += 4)
              wasm_v128_store(tap + c, wasm_f32x4_add(wasm_v128_load(tap + c),
                                                      filter_gradient_lanes(xRow, dyRow, c, 4, inC, kw, sW, padLeft, first, end)));
            if (c < inC)
              store_lanes(tap + c,
                          wasm_f32x4_add(load_lanes(tap + c, inC - c),
                                         filter_gradient_lanes(xRow, dyRow, c, inC - c, inC, kw, sW, padLeft, first, end)),
                          inC - c);
            continue;
          }
          for (int o = 0; o < outC; o++) {
            const int c = o / multiplier;
            float sum = 0.0f;
            for (int ow = first; ow < end; ow++) sum += xRow[(ow * sW + kw - padLeft) * inC + c] * dyRow[ow * outC + o];
            tap[o] += sum;
          }
        }
      }
    }
  }
}

/* ---- dense layers ---------------------------------------------------------------------------- */

/* Depth of one pass over B: a packed panel of KC × 16 floats (16 KiB) stays in L1. */
#define KC 256

/* C[4 rows][8 columns] += A[4 rows][k0 .. k0+depth) · panel[.., half·8 .. half·8+8). */
static inline void gemm_tile(const float *a, int K, const float *panel, int depth, float *c, int N,
                             int columns, int rows) {
  v128_t acc[4][2];
  for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = wasm_f32x4_splat(0.0f);
  const float *a0 = a, *a1 = a + (rows > 1 ? K : 0), *a2 = a + (rows > 2 ? 2 * K : 0), *a3 = a + (rows > 3 ? 3 * K : 0);
  for (int k = 0; k < depth; k++) {
    const v128_t b0 = wasm_v128_load(panel + k * 16);
    const v128_t b1 = wasm_v128_load(panel + k * 16 + 4);
    const v128_t s0 = wasm_v128_load32_splat(a0 + k);
    const v128_t s1 = wasm_v128_load32_splat(a1 + k);
    const v128_t s2 = wasm_v128_load32_splat(a2 + k);
    const v128_t s3 = wasm_v128_load32_splat(a3 + k);
    MULADD(acc[0][0], s0, b0); MULADD(acc[0][1], s0, b1);
    MULADD(acc[1][0], s1, b0); MULADD(acc[1][1], s1, b1);
    MULADD(acc[2][0], s2, b0); MULADD(acc[2][1], s2, b1);
    MULADD(acc[3][0], s3, b0); MULADD(acc[3][1], s3, b1);
  }
  add_tile_into(c, N, acc, rows, columns);
}

/*
 * C[M, N] = A[M, K] · B[K, N], all row-major, for a dense layer whose weights B are new on every
 * call (training): B is read once, in panels of 16 columns × KC rows packed into `scratch`
 * (KC · 16 floats), which every 4-row tile of A then multiplies; XNNPACK instead packs all of B
 * into a copy first, on every call.
 */
EXPORT(matmul)
void matmul(const float *a, const float *b, float *c, float *scratch, int M, int K, int N) {
  for (int i = 0; i < M * N; i++) c[i] = 0.0f;
  for (int n0 = 0; n0 < N; n0 += 16) {
    const int columns = MIN(16, N - n0);
    for (int k0 = 0; k0 < K; k0 += KC) {
      const int depth = MIN(KC, K - k0);
      for (int k = 0; k < depth; k++) {
        const float *from = b + (k0 + k) * N + n0;
        float *to = scratch + k * 16;
        for (int v = 0; v < 4; v++) {
          const int lanes = columns - 4 * v;
          wasm_v128_store(to + 4 * v, lanes > 0 ? load_lanes(from + 4 * v, MIN(4, lanes)) : wasm_f32x4_splat(0.0f));
        }
      }
      for (int m0 = 0; m0 < M; m0 += 4) {
        const int rows = MIN(4, M - m0);
        const float *a0 = a + m0 * K + k0;
        float *c0 = c + m0 * N + n0;
        gemm_tile(a0, K, scratch, depth, c0, N, MIN(8, columns), rows);
        if (columns > 8) gemm_tile(a0, K, scratch + 8, depth, c0 + 8, N, columns - 8, rows);
      }
    }
  }
}

/* ---- bias ---------------------------------------------------------------------------------- */

/* y[r, c] = x[r, c] + bias[c], for a layer's output of `rows` rows (every axis but the last) of C channels. */
EXPORT(add_bias)
void add_bias(const float *x, const float *bias, float *y, int rows, int C) {
  if ((C & 3) == 0) {
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < C; c += 4)
        wasm_v128_store(y + r * C + c, wasm_f32x4_add(wasm_v128_load(x + r * C + c), wasm_v128_load(bias + c)));
    return;
  }
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < C; c++) y[r * C + c] = x[r * C + c] + bias[c];
}

/* out[c] = Σ_r x[r, c], in row order: the bias gradient, dy summed over every axis but the last. */
EXPORT(sum_rows)
void sum_rows(const float *x, float *out, int rows, int C) {
  if ((C & 3) == 0) {
    for (int c = 0; c < C; c += 4) wasm_v128_store(out + c, wasm_f32x4_splat(0.0f));
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < C; c += 4)
        wasm_v128_store(out + c, wasm_f32x4_add(wasm_v128_load(out + c), wasm_v128_load(x + r * C + c)));
    return;
  }
  for (int c = 0; c < C; c++) out[c] = 0.0f;
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < C; c++) out[c] += x[r * C + c];
}

/* ---- BatchNorm and the batch's statistics ------------------------------------------------- */

/* acc[c] += row[c] for the C floats at acc and row. */
static inline void add_row(float *acc, const float *row, int C) {
  int c = 0;
  for (; c + 4 <= C; c += 4) wasm_v128_store(acc + c, wasm_f32x4_add(wasm_v128_load(acc + c), wasm_v128_load(row + c)));
  if (c < C) store_lanes(acc + c, wasm_f32x4_add(load_lanes(acc + c, C - c), load_lanes(row + c, C - c)), C - c);
}

/*
 * y = (x − mean) · scale / √(variance + ε) + offset, x as `rows` rows of L values. FusedBatchNorm's
 * parameters repeat along x with their own length, so each is one value per column of a row (its
 * stride 1: a [C] or [1, 1, 1, C] parameter of an NHWC tensor, L = C) or one for all (stride 0); a
 * missing scale (offset) is a null pointer and counts as 1 (0). `factors` (3·L floats) first
 * receives each column's mean, scale / √(variance + ε) and offset, so that the pass over x is one
 * subtraction, one multiplication and one addition per value.
 */
EXPORT(batch_norm)
void batch_norm(const float *x, const float *mean, const float *variance, const float *scale,
                const float *offset, float *factors, float *y, int rows, int L, float epsilon,
                int meanStride, int varianceStride, int scaleStride, int offsetStride) {
  float *shift = factors, *factor = factors + L, *add = factors + 2 * L;
  for (int c = 0; c < L; c++) {
    shift[c] = mean[c * meanStride];
    factor[c] = (scale ? scale[c * scaleStride] : 1.0f) / __builtin_sqrtf(variance[c * varianceStride] + epsilon);
    add[c] = offset ? offset[c * offsetStride] : 0.0f;
  }
  for (int r = 0; r < rows; r++) {
    const float *from = x + r * L;
    float *to = y + r * L;
    int c = 0;
    for (; c + 4 <= L; c += 4) {
      const v128_t centred = wasm_f32x4_sub(wasm_v128_load(from + c), wasm_v128_load(shift + c));
      wasm_v128_store(to + c, wasm_f32x4_add(wasm_f32x4_mul(centred, wasm_v128_load(factor + c)), wasm_v128_load(add + c)));
    }
    if (c < L) {
      const int lanes = L - c;
      const v128_t centred = wasm_f32x4_sub(load_lanes(from + c, lanes), load_lanes(shift + c, lanes));
      store_lanes(to + c, wasm_f32x4_add(wasm_f32x4_mul(centred, load_lanes(factor + c, lanes)), load_lanes(add + c, lanes)), lanes);
    }
  }
}

/* Rows a block sums before its sum joins the total. */
#define MEAN_BLOCK 256

/*
 * out[o, c] = Σ_r x[o, r, c] / rows, x as `outer` blocks of `rows` rows of C values: the mean over
 * the middle axis, as BatchNorm's statistics (outer 1: every axis but the channels) and global
 * average pooling (rows = the pixels of each image) take it. Summed MEAN_BLOCK rows at a time into
 * `partial` (C floats), each block's sum then added to the total: a running float32 sum over the
 * tens of thousands of pixels of a batch would lose digits the others keep.
 */
EXPORT(mean_rows)
void mean_rows(const float *x, float *out, float *partial, int outer, int rows, int C) {
  for (int o = 0; o < outer; o++) {
    float *total = out + o * C;
    const float *block = x + o * rows * C;
    for (int c = 0; c < C; c++) total[c] = 0.0f;
    for (int r0 = 0; r0 < rows; r0 += MEAN_BLOCK) {
      const int r1 = MIN(rows, r0 + MEAN_BLOCK);
      for (int c = 0; c < C; c++) partial[c] = 0.0f;
      for (int r = r0; r < r1; r++) add_row(partial, block + r * C, C);
      add_row(total, partial, C);
    }
    const v128_t count = wasm_f32x4_splat((float)rows);
    int c = 0;
    for (; c + 4 <= C; c += 4) wasm_v128_store(total + c, wasm_f32x4_div(wasm_v128_load(total + c), count));
    for (; c < C; c++) total[c] /= (float)rows;
  }
}

/* ---- ReLU6's gradient: the comparisons and the selection of tfjs-core's clipByValue gradient ---- */

/* Bool tensors are one byte a value, 1 or 0. */
typedef unsigned char byte;

/* The 16 lanes of four 4-lane comparison masks (all ones or zeros), in order, as bytes 1 or 0. */
static inline v128_t mask_bytes(v128_t m0, v128_t m1, v128_t m2, v128_t m3) {
  const v128_t bytes = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(m0, m1), wasm_i16x8_narrow_i32x4(m2, m3));
  return wasm_v128_and(bytes, wasm_i8x16_splat(1));
}

/* out[i] = x[i] OP value for the n floats at x, as bytes 1 or 0; NaN compares false, as in JavaScript. */
#define COMPARE_WITH_VALUE(NAME, VECTOR_OP, OP)                                                     \
  EXPORT(NAME)                                                                                      \
  void NAME(const float *x, float value, byte *out, int n) {                                        \
    const v128_t v = wasm_f32x4_splat(value);                                                       \
    int i = 0;                                                                                      \
    for (; i + 16 <= n; i += 16)                                                                    \
      wasm_v128_store(out + i, mask_bytes(VECTOR_OP(wasm_v128_load(x + i), v), VECTOR_OP(wasm_v128_load(x + i + 4), v), \
                                          VECTOR_OP(wasm_v128_load(x + i + 8), v), VECTOR_OP(wasm_v128_load(x + i + 12), v))); \
    for (; i < n; i++) out[i] = x[i] OP value;                                                      \
  }

COMPARE_WITH_VALUE(greater_equal_value, wasm_f32x4_ge, >=)
COMPARE_WITH_VALUE(less_equal_value, wasm_f32x4_le, <=)

/* out[i] = a[i] && b[i] for the n bytes at a and b, as 1 or 0. */
EXPORT(logical_and)
void logical_and(const byte *a, const byte *b, byte *out, int n) {
  const v128_t zero = wasm_i8x16_splat(0), one = wasm_i8x16_splat(1);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const v128_t both = wasm_v128_and(wasm_i8x16_ne(wasm_v128_load(a + i), zero), wasm_i8x16_ne(wasm_v128_load(b + i), zero));
    wasm_v128_store(out + i, wasm_v128_and(both, one));
  }
  for (; i < n; i++) out[i] = a[i] && b[i];
}

/* out[i] = condition[i] ? t[i] : e[i] for n values of 4 bytes (float32 or int32: the bits are copied). */
EXPORT(select_values)
void select_values(const byte *condition, const float *t, const float *e, float *out, int n) {
  const v128_t zero = wasm_i32x4_splat(0);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t lanes = wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(condition + i)));
    wasm_v128_store(out + i, wasm_v128_bitselect(wasm_v128_load(t + i), wasm_v128_load(e + i), wasm_i32x4_ne(lanes, zero)));
  }
  for (; i < n; i++) out[i] = condition[i] ? t[i] : e[i];
}

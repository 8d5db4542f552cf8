/*
 * Kernels of convolutional and dense layers for the wasm backend, in WebAssembly SIMD128, built by build.sh into
 * convolutions.wasm. The module imports the backend's memory and owns none of its own: every
 * pointer is a byte offset into the backend's heap, and nothing here may use a stack in memory
 * (build.sh refuses a module that does), so all working values stay in locals.
 *
 * Layouts are TensorFlow.js's: images NHWC, filters HWIO ([kh][kw][ci][co]). Seen from one filter
 * row kh, the values a filter row multiplies are contiguous in the image: x[b, ih, iw + kw, ci] for
 * kw, ci in order is the run x[b, ih, iw, 0 .. kW·inC), and the filter's [kh] slice is the matrix
 * [kW·inC][co]. So both kernels are small matrix products over that run ("row" r = kw·inC + ci),
 * with only the image's edges (padding) needing care.
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
 * The filter with its output channels padded with zeros to a multiple of 4 (`paddedOut`), so the
 * forward kernel's inner loop loads whole vectors: [kH·kW·inC][paddedOut].
 */
EXPORT(pack_filter)
void pack_filter(const float *w, float *packed, int rows, int outC, int paddedOut) {
  for (int r = 0; r < rows; r++) {
    const float *from = w + r * outC;
    float *to = packed + r * paddedOut;
    int c = 0;
    for (; c < outC; c++) to[c] = from[c];
    for (; c < paddedOut; c++) to[c] = 0.0f;
  }
}

/*
 * One tile of the output: PX neighbouring pixels of one output row, NV vectors (4·NV channels) of
 * output channels from `co`. For each filter row kh, the kw columns every pixel of the tile sees
 * inside the image go through the fast loop; the others, at the image's left and right edges, per
 * pixel.
 */
#define CONV_TILE(PX, NV)                                                                          \
  static inline void conv_tile_##PX##_##NV(                                                        \
      const float *x, const float *wp, float *y, int b, int oh, int ow, int co, int inH, int inW,  \
      int inC, int outH, int outW, int outC, int kH, int kW, int sH, int sW, int padTop,           \
      int padLeft, int paddedOut) {                                                                \
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
      const float *wk = wp + kh * run * paddedOut + co;                                            \
      const float *px[PX];                                                                         \
      for (int j = 0; j < PX; j++) px[j] = row + ((ow + j) * sW - padLeft) * inC;                  \
      for (int r = kwLo * inC; r < kwHi * inC; r++) {                                              \
        const float *wr = wk + r * paddedOut;                                                      \
        v128_t wv[NV];                                                                             \
        for (int v = 0; v < NV; v++) wv[v] = wasm_v128_load(wr + 4 * v);                           \
        for (int j = 0; j < PX; j++) {                                                             \
          const v128_t xs = wasm_v128_load32_splat(px[j] + r);                                     \
          for (int v = 0; v < NV; v++) MULADD(acc[j][v], xs, wv[v]);                               \
        }                                                                                          \
      }                                                                                            \
      if (kwLo == 0 && kwHi == kW) continue;                                                       \
      for (int j = 0; j < PX; j++) {                                                               \
        const int column = (ow + j) * sW - padLeft;                                                \
        for (int kw = 0; kw < kW; kw++) {                                                          \
          if (kw >= kwLo && kw < kwHi) continue;                                                   \
          if (column + kw < 0 || column + kw >= inW) continue;                                     \
          for (int ci = 0; ci < inC; ci++) {                                                       \
            const int r = kw * inC + ci;                                                           \
            const v128_t xs = wasm_v128_load32_splat(px[j] + r);                                   \
            for (int v = 0; v < NV; v++)                                                           \
              MULADD(acc[j][v], xs, wasm_v128_load(wk + r * paddedOut + 4 * v));                   \
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
  const int paddedOut = (outC + 3) & ~3;
  for (int b = 0; b < batch; b++) {
    for (int oh = 0; oh < outH; oh++) {
      for (int co = 0; co < outC; co += 8) {
        const int wide = outC - co > 4;
        int ow = 0;
        for (; ow + 4 <= outW; ow += 4) {
          if (wide)
            conv_tile_4_2(x, packed, y, b, oh, ow, co, inH, inW, inC, outH, outW, outC, kH, kW, sH, sW, padTop, padLeft, paddedOut);
          else
            conv_tile_4_1(x, packed, y, b, oh, ow, co, inH, inW, inC, outH, outW, outC, kH, kW, sH, sW, padTop, padLeft, paddedOut);
        }
        for (; ow < outW; ow++) {
          if (wide)
            conv_tile_1_2(x, packed, y, b, oh, ow, co, inH, inW, inC, outH, outW, outC, kH, kW, sH, sW, padTop, padLeft, paddedOut);
          else
            conv_tile_1_1(x, packed, y, b, oh, ow, co, inH, inW, inC, outH, outW, outC, kH, kW, sH, sW, padTop, padLeft, paddedOut);
        }
      }
    }
  }
}

/* ---- filter gradient ----------------------------------------------------------------------- */

/*
 * One tile of the filter gradient of filter row kh: RT rows (r = kw·inC + ci) from r0, NV vectors
 * of output channels from co, summed over one image's output pixels and added to what dw holds
 * (`first`: nothing yet). Per image, so the image's dy and x stay in cache while every tile of
 * the gradient reads them.
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
 * dw[kh, kw, ci, co] = Σ_{b, oh, ow} x[b, oh·sH + kh − padTop, ow·sW + kw − padLeft, ci] · dy[b, oh, ow, co],
 * taps outside the image reading zero.
 */
EXPORT(conv2d_backprop_filter)
void conv2d_backprop_filter(const float *x, const float *dy, float *dw, int batch, int inH,
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

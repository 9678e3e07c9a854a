/* The arithmetic of the fused sparse convolution, compiled once per instruction set: conv_base.c (the portable
 * baseline) and conv_avx2.c (AVX2 + FMA) include this file with SR3D_ISA(name) naming their copies; conv.c picks
 * one at run time and runs it on the thread team. Nothing here knows about threads: a call handles one task (a
 * block of destination rows, or one offset's weight gradient), and every output element is written by one task.
 *
 * Sparse convolution as one fused gather-GEMM: no gathered block in memory, no per-offset ops. Eight-float
 * vectors (GCC/Clang vector extensions: two SSE registers on the x86-64 baseline, one AVX register with AVX2,
 * NEON pairs on ARM). For every kernel offset, its (input, output) pairs are taken ROWS at a time; the destination
 * rows' tile of 8 NV channels is loaded into registers, every source channel is broadcast against one row of the
 * offset's weight (fused multiply-adds where the instruction set has them), and the tile is stored back. Work is
 * spent on existing pairs only (no empty sites, whatever the fill). Tiles of 6 rows x 16 channels hold 12
 * accumulators, 2 weight vectors and a broadcast in 15 of AVX2's 16 vector registers, 8 loads per 12
 * multiply-adds; 3 x 32 needed 17 registers, so the compiler re-read the weights from memory for every row (15
 * loads per 12): 1.1-1.3x slower. Channel counts must be multiples of 8 (the caller checks). */
#include <stdint.h>
#include <string.h>

#include "conv_types.h"

typedef float v8 __attribute__((vector_size(32)));

static inline v8 load8(const float *p) {
    v8 v;
    memcpy(&v, p, sizeof v); /* an unaligned vector load */
    return v;
}
static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }
static inline v8 splat8(float a) { return (v8){a, a, a, a, a, a, a, a}; }

enum { ROWS = 6 };

/* dst[r][co .. co + 8 NV) += src[r] @ wt for the ROWS pairs of a group, wt (c_in, 8 NV) the offset's weights for
 * this tile of output channels, packed (conv.c's pack_tiles); the rows of a group need not be adjacent. */
#define SR3D_PAIR_TILE(NV)                                                                                    \
    static void pair_tile##NV(const float *const *src, float *const *dst, int64_t c_in, const float *wt,       \
                              int64_t co) {                                                                   \
        v8 acc[ROWS][NV];                                                                                     \
        for (int r = 0; r < ROWS; ++r)                                                                        \
            for (int j = 0; j < NV; ++j) acc[r][j] = load8(dst[r] + co + 8 * j);                              \
        for (int64_t c = 0; c < c_in; ++c) {                                                                  \
            v8 wv[NV];                                                                                        \
            for (int j = 0; j < NV; ++j) wv[j] = load8(wt + (c * NV + j) * 8);                                \
            for (int r = 0; r < ROWS; ++r) {                                                                  \
                const v8 b = splat8(src[r][c]);                                                               \
                for (int j = 0; j < NV; ++j) acc[r][j] += b * wv[j];                                          \
            }                                                                                                 \
        }                                                                                                     \
        for (int r = 0; r < ROWS; ++r) /* every row, no count-dependent branch: unused rows point at scratch */ \
            for (int j = 0; j < NV; ++j) store8(dst[r] + co + 8 * j, acc[r][j]);                              \
    }
SR3D_PAIR_TILE(1)
SR3D_PAIR_TILE(2)

/* Where the pairs [p, p + count) of a convolution read (src) and write (dst), padded to ROWS entries with the
 * task's scratch rows (zeros to read, a row never read to write). */
static void pair_rows(const ConvArgs *a, const float *scratch, int64_t p, int64_t count, const float **src,
                      float **dst) {
    for (int64_t q = 0; q < ROWS; ++q) {
        if (q < count) {
            const int64_t i = a->rows_in[p + q], o = a->rows_out[p + q];
            src[q] = a->x + (a->transpose ? o : i) * a->c_in;
            dst[q] = a->out + (a->transpose ? i : o) * a->c_out;
        } else {
            src[q] = scratch;
            dst[q] = (float *)scratch + a->c_in;
        }
    }
}

/* The pairs [first, last) of offset k, group by group: a group's six source rows stay in L1 across its channel
 * tiles, while each tile's packed weights stream in order from L2. */
static void apply_pairs(const ConvArgs *a, float *scratch, int64_t k, int64_t first, int64_t last) {
    const float *wk = a->wt + k * a->c_in * a->c_out;
    for (int64_t p = first; p < last; p += ROWS) {
        const float *gsrc[ROWS];
        float *gdst[ROWS];
        pair_rows(a, scratch, p, last - p < ROWS ? last - p : ROWS, gsrc, gdst);
        int64_t co = 0;
        for (; co + 16 <= a->c_out; co += 16) pair_tile2(gsrc, gdst, a->c_in, wk + co * a->c_in, co);
        for (; co < a->c_out; co += 8) pair_tile1(gsrc, gdst, a->c_in, wk + co * a->c_in, co);
    }
}

/* Narrow inputs (c_in < 8: a stem on colours). A pair then carries only c_in multiply-adds per output channel, so
 * the group tiles spend most of their time on pointers, tile loads and stores. These loops keep an offset's weights
 * for one 16-channel tile (c_in x 2 vectors) in registers and take the pairs one by one: the forward adds x[i] w[k]
 * into out[o] (output rows in blocks of OBLOCK, every offset per block, as the general kernel), the weight gradient
 * accumulates x[i]^T g[o] for a whole offset in registers. One function per c_in, so the channel loops unroll.
 * The forward handles the pairs [cur[k], end[k]) of every offset (one task's rows), the weight gradient offset k. */
#define SR3D_NARROW(CIN)                                                                                      \
    static void narrow_fwd##CIN(const ConvArgs *a, int64_t d0, int64_t d1, const int64_t *cur0,               \
                                const int64_t *end, int64_t *cur) {                                           \
        const int64_t c_out = a->c_out;                                                                       \
        for (int64_t co = 0; co < c_out; co += 16) {                                                          \
            const int nv = c_out - co >= 16 ? 2 : 1;                                                          \
            memcpy(cur, cur0, (size_t)a->kvol * sizeof(int64_t));                                             \
            for (int64_t o0 = d0; o0 < d1; o0 += SR3D_OBLOCK) {                                               \
                for (int64_t k = 0; k < a->kvol; ++k) {                                                       \
                    v8 wv[CIN][2];                                                                            \
                    for (int c = 0; c < CIN; ++c) {                                                           \
                        wv[c][0] = load8(a->w + (k * CIN + c) * c_out + co);                                  \
                        wv[c][1] = nv == 2 ? load8(a->w + (k * CIN + c) * c_out + co + 8) : splat8(0.f);      \
                    }                                                                                         \
                    int64_t p = cur[k];                                                                       \
                    for (; p < end[k] && a->rows_out[p] < o0 + SR3D_OBLOCK; ++p) {                            \
                        const float *xi = a->x + a->rows_in[p] * CIN;                                         \
                        float *dst = a->out + a->rows_out[p] * c_out + co;                                    \
                        v8 a0 = load8(dst), a1 = nv == 2 ? load8(dst + 8) : splat8(0.f);                      \
                        for (int c = 0; c < CIN; ++c) {                                                       \
                            const v8 b = splat8(xi[c]);                                                       \
                            a0 += b * wv[c][0];                                                               \
                            a1 += b * wv[c][1];                                                               \
                        }                                                                                     \
                        store8(dst, a0);                                                                      \
                        if (nv == 2) store8(dst + 8, a1);                                                     \
                    }                                                                                         \
                    cur[k] = p;                                                                               \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
    static void narrow_wgrad##CIN(const WgradArgs *a, int64_t k) {                                            \
        const int64_t c_out = a->c_out;                                                                       \
        for (int64_t co = 0; co < c_out; co += 16) {                                                          \
            const int nv = c_out - co >= 16 ? 2 : 1;                                                          \
            v8 acc[CIN][2];                                                                                   \
            for (int c = 0; c < CIN; ++c) acc[c][0] = acc[c][1] = splat8(0.f);                               \
            for (int64_t p = a->starts[k]; p < a->starts[k + 1]; ++p) {                                       \
                const float *xi = a->x + a->rows_in[p] * CIN, *gr = a->g + a->rows_out[p] * c_out + co;       \
                const v8 g0 = load8(gr), g1 = nv == 2 ? load8(gr + 8) : splat8(0.f);                          \
                for (int c = 0; c < CIN; ++c) {                                                               \
                    const v8 b = splat8(xi[c]);                                                               \
                    acc[c][0] += b * g0;                                                                      \
                    acc[c][1] += b * g1;                                                                      \
                }                                                                                             \
            }                                                                                                 \
            for (int c = 0; c < CIN; ++c) {                                                                   \
                store8(a->gw + (k * CIN + c) * c_out + co, acc[c][0]);                                        \
                if (nv == 2) store8(a->gw + (k * CIN + c) * c_out + co + 8, acc[c][1]);                       \
            }                                                                                                 \
        }                                                                                                     \
    }
SR3D_NARROW(1)
SR3D_NARROW(2)
SR3D_NARROW(3)
SR3D_NARROW(4)
SR3D_NARROW(5)
SR3D_NARROW(6)
SR3D_NARROW(7)

/* One task of the convolution (conv.c): the destination rows [d0, d1), whose pairs are [cur[k], end[k]) of every
 * offset k, out zeroed there. The sum of every destination row runs in the same order whatever the task's bounds:
 *   forward (destination = output rows): offset by offset;
 *   transpose (destination = input rows): by block of OBLOCK output rows, then offset by offset, the order of a
 *   one-task run over all output blocks.
 * So any partition gives the bits of one task over all rows. cur (kvol) is the task's cursor, cur2 (kvol) scratch
 * of the narrow forward; scratch (c_in + c_out floats): zeros to read, a row to write. */
void SR3D_ISA(conv_task)(const ConvArgs *a, int64_t d0, int64_t d1, int64_t *cur, const int64_t *end, int64_t *cur2,
                         float *scratch) {
    if (!a->transpose && a->c_in >= 1 && a->c_in < 8) {
        switch (a->c_in) {
        case 1: narrow_fwd1(a, d0, d1, cur, end, cur2); break;
        case 2: narrow_fwd2(a, d0, d1, cur, end, cur2); break;
        case 3: narrow_fwd3(a, d0, d1, cur, end, cur2); break;
        case 4: narrow_fwd4(a, d0, d1, cur, end, cur2); break;
        case 5: narrow_fwd5(a, d0, d1, cur, end, cur2); break;
        case 6: narrow_fwd6(a, d0, d1, cur, end, cur2); break;
        default: narrow_fwd7(a, d0, d1, cur, end, cur2); break;
        }
        return;
    }
    if (!a->transpose) {
        /* The block's destination rows and the few windows of source rows its neighbours fall in stay in the L2
         * cache across the offsets (sweeping all rows once per offset streamed every row from memory 27 times:
         * 1.2-1.4x slower at 2 cm on a 50k-point frame). */
        for (int64_t o0 = d0; o0 < d1; o0 += SR3D_OBLOCK) {
            const int64_t o1 = o0 + SR3D_OBLOCK;
            for (int64_t k = 0; k < a->kvol; ++k) {
                int64_t last = cur[k];
                while (last < end[k] && a->rows_out[last] < o1) ++last;
                apply_pairs(a, scratch, k, cur[k], last);
                cur[k] = last;
            }
        }
        return;
    }
    for (;;) { /* the transpose: output blocks in ascending order, skipping the ones no pair of the task is in */
        int64_t ob = INT64_MAX;
        for (int64_t k = 0; k < a->kvol; ++k) {
            if (cur[k] < end[k] && a->rows_out[cur[k]] / SR3D_OBLOCK < ob) ob = a->rows_out[cur[k]] / SR3D_OBLOCK;
        }
        if (ob == INT64_MAX) return;
        const int64_t o1 = (ob + 1) * SR3D_OBLOCK;
        for (int64_t k = 0; k < a->kvol; ++k) {
            int64_t last = cur[k];
            while (last < end[k] && a->rows_out[last] < o1) ++last;
            apply_pairs(a, scratch, k, cur[k], last);
            cur[k] = last;
        }
    }
}

/* gw[r][co .. co + 8 NV) (+)= sum_p xb[p][r] gb[p][0 .. 8 NV) for the first `valid` (<= 6) rows r, over `count`
 * packed pairs of a chunk: xb (count, 6) holds six of the pairs' input channels (padding past the last one: its
 * sums are never stored), gb (count, 8 NV) one tile of their gradient channels; gw points at the block's first
 * input channel. */
#define SR3D_WGRAD_TILE(NV)                                                                                   \
    static void wgrad_tile##NV(const float *xb, const float *gb, int64_t count, float *gw, int64_t c_out,     \
                               int64_t co, int valid, int add) {                                              \
        v8 acc[6][NV];                                                                                        \
        for (int r = 0; r < 6; ++r)                                                                           \
            for (int j = 0; j < NV; ++j)                                                                      \
                acc[r][j] = add && r < valid ? load8(gw + r * c_out + co + 8 * j) : splat8(0.f);              \
        for (int64_t p = 0; p < count; ++p) {                                                                 \
            v8 gv[NV];                                                                                        \
            for (int j = 0; j < NV; ++j) gv[j] = load8(gb + (p * NV + j) * 8);                                \
            for (int r = 0; r < 6; ++r) {                                                                     \
                const v8 b = splat8(xb[p * 6 + r]);                                                           \
                for (int j = 0; j < NV; ++j) acc[r][j] += b * gv[j];                                          \
            }                                                                                                 \
        }                                                                                                     \
        for (int r = 0; r < valid; ++r)                                                                       \
            for (int j = 0; j < NV; ++j) store8(gw + r * c_out + co + 8 * j, acc[r][j]);                      \
    }
SR3D_WGRAD_TILE(2) /* 6 input x 16 output channels, as the pair tile */
SR3D_WGRAD_TILE(1)

/* One task of the weight gradient: gw[k] rows [6 b0, 6 b1) (input channels in blocks of six), summed over offset
 * k's pairs in their order, chunk after chunk, whatever the task split (so every split gives the same bits). A
 * chunk's input and gradient rows are packed the way the tiles read them: its input channels in blocks of six,
 * each block (chunk, 6), and its gradient channels in tiles of 16 (8), each (chunk, width). A tile then reads two
 * runs of memory, the block (6 KB at 256 pairs) staying in L1 across the tiles; with the pairs' rows as they are,
 * every pair started two new cache lines per tile (packing: 1.0-1.15x at 64-128 channels, 1.2x at 256). xs
 * (chunk * 6 * (b1 - b0)) and gs (chunk * c_out) are the thread's buffers, reused across chunks and tasks. Narrow
 * inputs (c_in < 8) take the whole offset in registers. */
void SR3D_ISA(wgrad_task)(const WgradArgs *a, int64_t k, int64_t b0, int64_t b1, float *xs, float *gs) {
    const int64_t c_in = a->c_in, c_out = a->c_out, chunk = a->chunk;
    if (c_in >= 1 && c_in < 8) {
        switch (c_in) {
        case 1: narrow_wgrad1(a, k); break;
        case 2: narrow_wgrad2(a, k); break;
        case 3: narrow_wgrad3(a, k); break;
        case 4: narrow_wgrad4(a, k); break;
        case 5: narrow_wgrad5(a, k); break;
        case 6: narrow_wgrad6(a, k); break;
        default: narrow_wgrad7(a, k); break;
        }
        return;
    }
    const int64_t *starts = a->starts;
    float *gk = a->gw + k * c_in * c_out;
    if (starts[k] == starts[k + 1]) { /* no pairs */
        for (int64_t r = 6 * b0; r < 6 * b1 && r < c_in; ++r) memset(gk + r * c_out, 0, (size_t)c_out * sizeof(float));
        return;
    }
    for (int64_t p0 = starts[k]; p0 < starts[k + 1]; p0 += chunk) {
        const int64_t n = starts[k + 1] - p0 < chunk ? starts[k + 1] - p0 : chunk;
        for (int64_t p = 0; p < n; ++p) {
            const float *xr = a->x + a->rows_in[p0 + p] * c_in, *gr = a->g + a->rows_out[p0 + p] * c_out;
            if (p + 8 < n) { /* eight pairs ahead: the gathered rows miss the cache (1.1-1.25x) */
                const float *xn = a->x + a->rows_in[p0 + p + 8] * c_in;
                const float *gn = a->g + a->rows_out[p0 + p + 8] * c_out;
                for (int64_t c = 6 * b0; c < 6 * b1 && c < c_in; c += 16) __builtin_prefetch(xn + c);
                for (int64_t c = 0; c < c_out; c += 16) __builtin_prefetch(gn + c);
            }
            /* fixed-size copies the compiler unrolls (a memcpy call per six floats cost as much as the arithmetic
             * at 64 channels) */
            int64_t b = b0;
            for (; b < b1 && 6 * b + 6 <= c_in; ++b)
                for (int r = 0; r < 6; ++r) xs[((b - b0) * chunk + p) * 6 + r] = xr[6 * b + r];
            if (b < b1)
                for (int64_t c = 6 * b; c < c_in; ++c) xs[((b - b0) * chunk + p) * 6 + c - 6 * b] = xr[c];
            int64_t co = 0;
            for (; co + 16 <= c_out; co += 16) {
                store8(gs + co * chunk + p * 16, load8(gr + co));
                store8(gs + co * chunk + p * 16 + 8, load8(gr + co + 8));
            }
            if (co < c_out) store8(gs + co * chunk + p * 8, load8(gr + co));
        }
        const int add = p0 > starts[k];
        for (int64_t b = b0; b < b1; ++b) {
            const int valid = c_in - 6 * b < 6 ? (int)(c_in - 6 * b) : 6;
            const float *xb = xs + (b - b0) * chunk * 6;
            float *gb = gk + 6 * b * c_out;
            int64_t co = 0;
            for (; co + 16 <= c_out; co += 16) wgrad_tile2(xb, gs + co * chunk, n, gb, c_out, co, valid, add);
            for (; co < c_out; co += 8) wgrad_tile1(xb, gs + co * chunk, n, gb, c_out, co, valid, add);
        }
    }
}

/* The fused sparse convolution of sr3d_core.sparse.native (forward, input and weight gradients), the max pool, and
 * the run-time choice of instruction set: the kernels in conv_kernels.h are compiled for the portable baseline and
 * for AVX2 + FMA, and the first call (or sr3d_select_isa) takes the best the CPU has.
 *
 * Threads: every call takes the number of threads to use (the caller passes torch.get_num_threads()) and splits
 * its work into tasks that each own their output elements: blocks of destination rows for the convolution, offsets
 * (and blocks of input channels) for the weight gradient. Every element's sum runs in the same order whatever the
 * split, so a run on any number of threads gives the bits of a one-thread run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conv_types.h"
#include "engine.h"
#include "isa.h"

enum { SR3D_ISA_BASE = 0, SR3D_ISA_AVX2 = 1 };

/* The work from which a call splits over the threads (sr3d_team): multiply-adds of the convolution and its weight
 * gradient, elements of the max pool. Measured on 2 cores: a split won from about these sizes on. */
#define MIN_CONV_MACS 2.5e6
#define MIN_POOL_ELEMS 2e5

static ConvTaskFn conv_task = NULL; /* NULL until chosen: the best the CPU has */
static WgradTaskFn wgrad_task = NULL;
static int isa_chosen = -1;

/* Choose the kernels: want < 0 the best this CPU runs, SR3D_ISA_BASE the baseline, SR3D_ISA_AVX2 AVX2 + FMA.
 * Returns the instruction set now in use, or -1 when the one asked for is not built or not supported here. Called
 * once when the library is loaded (not while a convolution runs). */
SR3D_API int sr3d_select_isa(int want) {
    const int best = sr3d_cpu_has_avx2_fma() ? SR3D_ISA_AVX2 : SR3D_ISA_BASE;
    const int isa = want < 0 ? best : want;
    if (isa > best) return -1;
#ifdef SR3D_HAVE_AVX2_VARIANT
    if (isa == SR3D_ISA_AVX2) {
        conv_task = sr3d_conv_task_avx2;
        wgrad_task = sr3d_wgrad_task_avx2;
        isa_chosen = isa;
        return isa;
    }
#endif
    conv_task = sr3d_conv_task_base;
    wgrad_task = sr3d_wgrad_task_base;
    isa_chosen = SR3D_ISA_BASE;
    return isa_chosen;
}

/* The instruction set in use (SR3D_ISA_*), choosing the best one on the first call. */
SR3D_API int sr3d_isa(void) {
    if (isa_chosen < 0) sr3d_select_isa(-1);
    return isa_chosen;
}

/* A pair list's starts must run from 0 to n_pairs without going down; with check, its rows must lie in their
 * sets. Returns SR3D_OK or the error. */
static int check_pairs(const int64_t *starts, const int64_t *rows_in, const int64_t *rows_out, int64_t kvol,
                       int64_t n_pairs, int64_t n_in, int64_t n_out, int check, int nthreads) {
    if (!sr3d_starts_valid(starts, kvol, n_pairs)) return SR3D_ERR_STARTS;
    if (!check) return SR3D_OK;
    int bad = 0;
#pragma omp parallel for num_threads(nthreads) reduction(| : bad) if (nthreads > 1 && n_pairs > 65536)
    for (int64_t p = 0; p < n_pairs; ++p) bad |= (rows_in[p] < 0) | (rows_in[p] >= n_in) | (rows_out[p] < 0) |
                                                 (rows_out[p] >= n_out);
    return bad ? SR3D_ERR_INDEX : SR3D_OK;
}

/* Whether rows ascend strictly within every offset of a pair list (then a task's pairs are found by bisection). */
static int rows_ascend(const int64_t *starts, const int64_t *rows, int64_t kvol) {
    for (int64_t k = 0; k < kvol; ++k)
        for (int64_t p = starts[k] + 1; p < starts[k + 1]; ++p)
            if (rows[p] <= rows[p - 1]) return 0;
    return 1;
}

/* The weights (kvol, c_in, c_out) in the order the pair tiles read them: for each offset, its output channels in
 * tiles of 16 (the last of 8 when c_out % 16 == 8), each tile a (c_in, width) block, so a tile's weights are one
 * run of memory. Tile [co, co + width) of offset k starts at (k c_out + co) c_in. With the row-major layout a tile
 * read 64 B from every c_out-wide row: from 128 x 128 channels up, as the weights left L1, 1.15-1.3x slower. */
static void pack_tiles(const float *w, int64_t kvol, int64_t c_in, int64_t c_out, float *wt) {
    for (int64_t k = 0; k < kvol; ++k)
        for (int64_t co = 0; co < c_out; co += 16) {
            const int64_t width = c_out - co >= 16 ? 16 : 8;
            float *tile = wt + (k * c_out + co) * c_in;
            for (int64_t c = 0; c < c_in; ++c)
                memcpy(tile + c * width, w + (k * c_in + c) * c_out + co, (size_t)width * sizeof(float));
        }
}

/* out[k] = w[k]^T for the kvol (r x c) matrices of a weight: the input gradient's weights. In 8 x 8 blocks, whose
 * rows and columns stay in cache (a generic strided copy of a 128 x 128 kernel took ~0.8 ms, 40x this). */
SR3D_API void sr3d_transpose_weights(const float *w, int64_t kvol, int64_t r, int64_t c, float *out) {
    for (int64_t k = 0; k < kvol; ++k) {
        const float *src = w + k * r * c;
        float *dst = out + k * r * c;
        for (int64_t i0 = 0; i0 < r; i0 += 8)
            for (int64_t j0 = 0; j0 < c; j0 += 8)
                for (int64_t i = i0; i < i0 + 8 && i < r; ++i)
                    for (int64_t j = j0; j < j0 + 8 && j < c; ++j) dst[j * r + i] = src[i * c + j];
    }
}

/* The convolution over the pair list of a kernel map (offset k's pairs are [starts[k], starts[k + 1]) of rows_in /
 * rows_out, output rows ascending) and weights w (kvol, c_in, c_out), all row-major float32; out is overwritten.
 *   transpose = 0: out (n_out, c_out)[o] = sum over pairs (k, i, o) of x[i] @ w[k], x (n_in, c_in): the forward.
 *   transpose = 1: out (n_in, c_out)[i] = sum over pairs (k, i, o) of x[o] @ w[k], x (n_out, c_in): the input
 *                  gradient, called with the gradient as x and every w[k] transposed. An input row feeds at most
 *                  one output row per offset (o = i - offset), so the rows of a group are distinct.
 * check: verify that every row lies in its set (pair lists the library built itself are trusted and skip it).
 * The destination rows are split into tasks of contiguous rows when the rows they are indexed by ascend within
 * every offset (a kernel map's do: an input key is its output key plus the offset's delta); otherwise one task
 * takes them all. Returns SR3D_OK or an SR3D_ERR_* code. */
SR3D_API int sr3d_conv_pairs(const float *x, int64_t c_in, const int64_t *starts, const int64_t *rows_in,
                             const int64_t *rows_out, int64_t n_pairs, int64_t kvol, int64_t n_in, int64_t n_out,
                             const float *w, int64_t c_out, float *out, int transpose, int check, int nthreads) {
    if (c_out % 8 || c_out <= 0 || c_in <= 0) return c_out % 8 ? SR3D_ERR_CHANNELS : SR3D_ERR_SIZE;
    if (kvol <= 0 || n_in < 0 || n_out < 0 || n_pairs < 0) return SR3D_ERR_SIZE;
    nthreads = sr3d_team(nthreads, (double)n_pairs * (double)c_in * (double)c_out, MIN_CONV_MACS);
    const int rc = check_pairs(starts, rows_in, rows_out, kvol, n_pairs, n_in, n_out, check, nthreads);
    if (rc) return rc;
    if (conv_task == NULL) sr3d_select_isa(-1);
    const int64_t n_dst = transpose ? n_in : n_out;
    memset(out, 0, (size_t)(n_dst * c_out) * sizeof(float));
    const int narrow = !transpose && c_in < 8;
    float *wt = NULL;
    if (!narrow) {
        wt = malloc((size_t)(kvol * c_in * c_out) * sizeof(float));
        if (!wt) return SR3D_ERR_NOMEM;
        pack_tiles(w, kvol, c_in, c_out, wt);
    }
    const ConvArgs args = {x, w, wt, out, starts, rows_in, rows_out, kvol, c_in, c_out, transpose};
    const int64_t *dst_rows = transpose ? rows_in : rows_out;
    /* Tasks of at most OBLOCK rows, about four per thread (the offsets' pairs are uneven across the rows). */
    int64_t rows_per_task = n_dst, tasks = 1;
    int split = nthreads > 1 && n_dst > 64;
    if (split && (check || transpose)) split = rows_ascend(starts, dst_rows, kvol); /* a table's input rows need not */
    if (split) {
        rows_per_task = (n_dst + 4 * nthreads - 1) / (4 * nthreads);
        rows_per_task = rows_per_task < 64 ? 64 : rows_per_task > SR3D_OBLOCK ? SR3D_OBLOCK : rows_per_task;
        tasks = (n_dst + rows_per_task - 1) / rows_per_task;
    }
    int failed = 0;
#pragma omp parallel num_threads(nthreads) if (tasks > 1)
    {
        int64_t *cur = malloc((size_t)(3 * kvol) * sizeof(int64_t));
        float *scratch = calloc((size_t)(c_in + c_out), sizeof(float));
        if (!cur || !scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; ++t) {
            if (!cur || !scratch) continue;
            const int64_t d0 = t * rows_per_task, d1 = d0 + rows_per_task < n_dst ? d0 + rows_per_task : n_dst;
            int64_t *end = cur + kvol, *cur2 = cur + 2 * kvol;
            for (int64_t k = 0; k < kvol; ++k) {
                if (tasks == 1) {
                    cur[k] = starts[k];
                    end[k] = starts[k + 1];
                } else {
                    cur[k] = sr3d_lower_bound(dst_rows, starts[k], starts[k + 1], d0);
                    end[k] = sr3d_lower_bound(dst_rows, cur[k], starts[k + 1], d1);
                }
            }
            conv_task(&args, d0, d1, cur, end, cur2, scratch);
        }
        free(cur);
        free(scratch);
    }
    free(wt);
    return failed ? SR3D_ERR_NOMEM : SR3D_OK;
}

/* The weight gradient of sr3d_conv_pairs: gw[k] = sum over offset k's pairs (i, o) of x[i]^T g[o], gw
 * (kvol, c_in, c_out) overwritten, g (n_out, c_out). Tasks: one per offset, and per block of input channels where
 * offsets are fewer than four per thread; each sums its offset's pairs in order, so any split gives the same bits.
 * Returns SR3D_OK or an SR3D_ERR_* code. */
SR3D_API int sr3d_conv_weight_grad(const float *x, int64_t c_in, const int64_t *starts, const int64_t *rows_in,
                                   const int64_t *rows_out, int64_t n_pairs, int64_t kvol, int64_t n_in,
                                   int64_t n_out, const float *g, int64_t c_out, float *gw, int check, int nthreads) {
    if (c_out % 8 || c_out <= 0 || c_in <= 0) return c_out % 8 ? SR3D_ERR_CHANNELS : SR3D_ERR_SIZE;
    if (kvol <= 0 || n_in < 0 || n_out < 0 || n_pairs < 0) return SR3D_ERR_SIZE;
    nthreads = sr3d_team(nthreads, (double)n_pairs * (double)c_in * (double)c_out, MIN_CONV_MACS);
    const int rc = check_pairs(starts, rows_in, rows_out, kvol, n_pairs, n_in, n_out, check, nthreads);
    if (rc) return rc;
    if (wgrad_task == NULL) sr3d_select_isa(-1);
    const int narrow = c_in < 8;
    const int64_t blocks = narrow ? 1 : (c_in + 5) / 6;
    int64_t chunk = 65536 / (6 * blocks + c_out); /* a chunk's packed rows: <= 256 KB, reused across chunks */
    chunk = chunk < 16 ? 16 : chunk > 256 ? 256 : chunk;
    int64_t splits = 1; /* blocks of input channels per offset */
    if (!narrow && nthreads > 1 && kvol < 4 * nthreads) {
        splits = (4 * nthreads + kvol - 1) / kvol;
        splits = splits > blocks ? blocks : splits;
    }
    const WgradArgs args = {x, g, gw, starts, rows_in, rows_out, kvol, c_in, c_out, chunk};
    const int64_t tasks = kvol * splits;
    int failed = 0;
#pragma omp parallel num_threads(nthreads) if (nthreads > 1 && tasks > 1)
    {
        const int64_t span = (blocks + splits - 1) / splits;
        float *xs = calloc((size_t)(chunk * 6 * span), sizeof(float));
        float *gs = malloc((size_t)(chunk * c_out) * sizeof(float));
        if (!xs || !gs) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; ++t) {
            if (!xs || !gs) continue;
            const int64_t k = t / splits, s = t % splits;
            const int64_t b0 = s * span, b1 = b0 + span < blocks ? b0 + span : blocks;
            if (b0 < b1) wgrad_task(&args, k, b0, b1, xs, gs);
        }
        free(xs);
        free(gs);
    }
    return failed ? SR3D_ERR_NOMEM : SR3D_OK;
}

/* Channels [c0, c1) of the max pool over every row (the work of one thread). Cloned for AVX2 (isa.h): its compares
 * and selects then take eight lanes (the baseline's SSE2 has no blend), the same bits. */
static SR3D_CLONES void max_pool_channels(const float *x, int64_t n, int64_t c, const int64_t *parent, int64_t m,
                                          float *out, int32_t *arg, int64_t c0, int64_t c1) {
    for (int64_t j = 0; j < m; ++j)
        for (int64_t ch = c0; ch < c1; ++ch) arg[j * c + ch] = -1;
    for (int64_t i = 0; i < n; ++i) {
        float *o = out + parent[i] * c;
        int32_t *a = arg + parent[i] * c;
        const float *xi = x + i * c;
        for (int64_t ch = c0; ch < c1; ++ch) { /* branchless: the comparisons of random features are coin flips */
            const float v = xi[ch];
            const int take = (a[ch] < 0) | (v > o[ch]) | ((v != v) & (o[ch] == o[ch]));
            o[ch] = take ? v : o[ch];
            a[ch] = take ? (int32_t)i : a[ch];
        }
    }
}

/* Max pool of rows into their parents (kernel = stride = 2): out[parent[i]][ch] = max over the children i, and
 * arg[parent[i]][ch] = the first child (lowest row) holding it, which the gradient is routed to (as
 * MinkowskiEngine's max pool does). A NaN wins and stays (as torch's amax). Every parent has a child. Returns
 * SR3D_OK, or SR3D_ERR_INDEX (nothing written past out) when a parent lies outside [0, m). Threads take blocks of
 * channels (each walks every row in order for its own channels, so the result is the one-thread run's). */
SR3D_API int sr3d_max_pool(const float *x, int64_t n, int64_t c, const int64_t *parent, int64_t m, float *out,
                           int32_t *arg, int nthreads) {
    if (n < 0 || c < 0 || m < 0) return SR3D_ERR_SIZE;
    for (int64_t i = 0; i < n; ++i)
        if (parent[i] < 0 || parent[i] >= m) return SR3D_ERR_INDEX;
    nthreads = sr3d_team(nthreads, (double)n * (double)c, MIN_POOL_ELEMS);
    if (nthreads <= 1 || c <= 16) { /* one thread: every channel in one pass over the rows, no parallel region */
        max_pool_channels(x, n, c, parent, m, out, arg, 0, c);
        return SR3D_OK;
    }
    /* Several: blocks of 16 channels (64 B, so no two threads write one cache line). */
    const int64_t blocks = (c + 15) / 16;
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t bl = 0; bl < blocks; ++bl)
        max_pool_channels(x, n, c, parent, m, out, arg, bl * 16, bl * 16 + 16 < c ? bl * 16 + 16 : c);
    return SR3D_OK;
}

/* Its gradient: gx (n, c) = 0 except gx[arg[j]][ch] = g[j] (each child feeds one parent: no collisions, so the
 * parents split over the threads). Returns SR3D_OK, or SR3D_ERR_INDEX when an arg lies outside [0, n). */
SR3D_API int sr3d_max_pool_grad(const float *g, const int32_t *arg, int64_t m, int64_t c, float *gx, int64_t n,
                                int nthreads) {
    if (n < 0 || c < 0 || m < 0) return SR3D_ERR_SIZE;
    for (int64_t j = 0; j < m * c; ++j)
        if (arg[j] < 0 || arg[j] >= n) return SR3D_ERR_INDEX;
    memset(gx, 0, (size_t)(n * c) * sizeof(float));
    nthreads = sr3d_team(nthreads, (double)m * (double)c, MIN_POOL_ELEMS);
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1)
    for (int64_t j = 0; j < m; ++j)
        for (int64_t ch = 0; ch < c; ++ch) gx[(int64_t)arg[j * c + ch] * c + ch] = g[j * c + ch];
    return SR3D_OK;
}

/* Kernel-map construction by merging sorted key arrays (the compiled path of sr3d_core.sparse.native).
 *
 * Coordinate sets are stored sorted by packed int64 key, and adding a kernel offset's key delta to every output
 * key keeps the queries sorted. So the input row of every (offset, output) pair is found by walking the input
 * keys once per offset, in O(N_in + N_out), with no temporaries: the work the pure-PyTorch path spreads over a
 * dozen full-size tensor passes (or binary searches) happens in one loop that stays in cache.
 */
#include <stdint.h>

/* cols[k * n_out + o] = i where src[i] == dst[o] + delta[k], or n_in when no input has that key.
 * src (n_in) and dst (n_out) are strictly ascending. */
void sr3d_kernel_map(const int64_t *src, int64_t n_in, const int64_t *dst, int64_t n_out,
                     const int64_t *delta, int64_t kvol, int64_t *cols) {
    for (int64_t k = 0; k < kvol; ++k) {
        const int64_t d = delta[k];
        int64_t *row = cols + k * n_out;
        int64_t p = 0;
        for (int64_t o = 0; o < n_out; ++o) {
            const int64_t q = dst[o] + d;
            if (p < n_in && src[p] < q) {
                /* Gallop, then bisect: a far jump (a sparse output set, a new scene) costs log steps. */
                int64_t step = 1, lo = p, hi = p + 1;
                while (hi < n_in && src[hi] < q) {
                    lo = hi;
                    step <<= 1;
                    hi = p + step;
                }
                if (hi > n_in) hi = n_in;
                /* src[lo] < q, and hi == n_in or src[hi] >= q: find the first index >= q in (lo, hi]. */
                while (hi - lo > 1) {
                    const int64_t mid = lo + ((hi - lo) >> 1);
                    if (src[mid] < q) lo = mid; else hi = mid;
                }
                p = hi;
            }
            row[o] = (p < n_in && src[p] == q) ? p : n_in;
        }
    }
}

/* The transposed table: t[k * n_in + cols[k * n_out + o]] = o for every existing pair, n_out elsewhere. */
void sr3d_transpose_map(const int64_t *cols, int64_t n_in, int64_t n_out, int64_t kvol, int64_t *t) {
    for (int64_t i = 0; i < kvol * n_in; ++i) t[i] = n_out;
    for (int64_t k = 0; k < kvol; ++k) {
        const int64_t *row = cols + k * n_out;
        int64_t *trow = t + k * n_in;
        for (int64_t o = 0; o < n_out; ++o) {
            if (row[o] < n_in) trow[row[o]] = o;
        }
    }
}

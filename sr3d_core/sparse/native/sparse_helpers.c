/* The compiled helpers of the sparse engine (sr3d_core.sparse.native): kernel maps, voxelization, sort-unique.
 *
 * Kernel maps:
 *
 * Coordinate sets are stored sorted by packed int64 key, and adding a kernel offset's key delta to every output
 * key keeps the queries sorted. So the input row of every (offset, output) pair is found by walking the input
 * keys once per offset, in O(N_in + N_out), with no temporaries: the work the pure-PyTorch path spreads over a
 * dozen full-size tensor passes (or binary searches) happens in one loop that stays in cache.
 */
#include <math.h>
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

/* Voxelization's sort-unique with its random in-voxel pick, in one pass over radix-sorted keys.
 * keys (n): packed voxel keys of the points; prio (n): distinct priorities (a permutation).
 * Writes the ascending unique keys (m of them), inverse[i] = unique row of point i, and pick[v] = the point of
 * highest priority in voxel v; returns m. order and tmp are n-element scratch buffers. */
int64_t sr3d_unique_pick(const int64_t *keys, const int64_t *prio, int64_t n, int64_t *order, int64_t *tmp,
                         int64_t *ukeys, int64_t *inverse, int64_t *pick) {
    if (n <= 0) return 0;
    /* LSD radix sort of point indices by key (as unsigned after a sign flip), 11 bits a pass; a pass whose digit
     * is the same for every key is skipped (the batch and high coordinate bits usually are). */
    enum { BITS = 11, BUCKETS = 1 << BITS };
    static const uint64_t SIGN = (uint64_t)1 << 63;
    int64_t count[BUCKETS];
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    int64_t *src = order, *dst = tmp;
    for (int shift = 0; shift < 64; shift += BITS) {
        for (int b = 0; b < BUCKETS; ++b) count[b] = 0;
        for (int64_t i = 0; i < n; ++i) ++count[(((uint64_t)keys[i] ^ SIGN) >> shift) & (BUCKETS - 1)];
        int constant = 0;
        for (int b = 0; b < BUCKETS; ++b) {
            if (count[b] == n) constant = 1;
            if (count[b]) break;
        }
        if (constant) continue;
        int64_t sum = 0;
        for (int b = 0; b < BUCKETS; ++b) {
            const int64_t c = count[b];
            count[b] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; ++i) {
            const int64_t j = src[i];
            dst[count[(((uint64_t)keys[j] ^ SIGN) >> shift) & (BUCKETS - 1)]++] = j;
        }
        int64_t *swap = src;
        src = dst;
        dst = swap;
    }
    int64_t m = -1;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t j = src[i];
        if (m < 0 || keys[j] != ukeys[m]) {
            ++m;
            ukeys[m] = keys[j];
            pick[m] = j;
        } else if (prio[j] > prio[pick[m]]) {
            pick[m] = j;
        }
        inverse[j] = m;
    }
    return m + 1;
}

/* Packed voxel keys of float32 points: key = ((b * R + x + OFF) * R + y + OFF) * R + z + OFF with
 * x = floor(px / voxel) (in double, as the PyTorch path), R = 2^axis_bits, OFF = 2^(axis_bits - 1).
 * Returns 0, or 1 when a point is not finite or a coordinate lies outside [-limit, limit] (the caller then runs the
 * checked PyTorch path, which names the problem). */
int sr3d_voxel_keys(const float *xyz, int64_t n, double voxel, int64_t batch, int axis_bits, int64_t limit,
                    int64_t *keys) {
    const int64_t radix = (int64_t)1 << axis_bits, off = (int64_t)1 << (axis_bits - 1);
    const double lim = (double)limit;
    for (int64_t i = 0; i < n; ++i) {
        int64_t key = batch;
        for (int a = 0; a < 3; ++a) {
            const double q = floor((double)xyz[3 * i + a] / voxel);
            if (!(q >= -lim && q <= lim)) return 1; /* also catches NaN */
            key = key * radix + (int64_t)q + off;
        }
        keys[i] = key;
    }
    return 0;
}

/* The compiled helpers of the sparse engine (sr3d_core.sparse.native): kernel maps, voxelization, sort-unique,
 * the fused gather-GEMM of a sparse convolution, the max pool, the rotated bird's-eye-view IoU of non-maximum
 * suppression, and the decoding of a sensor cloud's point records.
 *
 * Kernel maps:
 *
 * Coordinate sets are stored sorted by packed int64 key, and adding a kernel offset's key delta to every output
 * key keeps the queries sorted. So the input rows of every output's neighbours are found by walking the input
 * keys once per (x, y) column of the kernel, in O(N_in + N_out), with no temporaries: the work the pure-PyTorch
 * path spreads over a dozen full-size tensor passes (or binary searches) happens in one loop that stays in cache.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The first index p' >= p with src[p'] >= q (n_in when none): gallop from p, then bisect, so a far jump (a sparse
 * output set, a new scene) costs log steps and a near one a step or two. */
static inline int64_t seek(const int64_t *src, int64_t n_in, int64_t p, int64_t q) {
    if (p >= n_in || src[p] >= q) return p;
    int64_t step = 1, lo = p, hi = p + 1;
    while (hi < n_in && src[hi] < q) {
        lo = hi;
        step <<= 1;
        hi = p + step;
    }
    if (hi > n_in) hi = n_in;
    while (hi - lo > 1) {
        const int64_t mid = lo + ((hi - lo) >> 1);
        if (src[mid] < q) lo = mid; else hi = mid;
    }
    return hi;
}

/* The pair list of a kernel map straight from the keys, without the (kvol, n_out) table, in two steps:
 * sr3d_kernel_pairs_search finds the pairs, sr3d_kernel_pairs_pack writes them as the convolution kernels read
 * them: offset k's pairs (i, o) with src[i] == dst[o] + delta[k] at [starts[k], starts[k + 1]) of rows_in /
 * rows_out, output rows ascending (the order sr3d_pair_fill gives).
 *
 * The offsets of a ks^3 kernel are k = c + iz * ks^2 (z slowest), and a z step changes only a key's lowest field,
 * so the ks offsets of one (x, y) column c reach keys in [q, q + (ks - 1) * zstep] with q = dst[o] + delta[c]:
 * consecutive input keys (ks of them at most when the inputs lie on the offsets' grid, as a layer's do). One
 * search per column and output finds all of them (ks^2 searches per output instead of ks^3). The search writes
 * offset k's pairs to its segment [k * n_out, k * n_out + count[k]) of seg_in / seg_out (kvol * n_out slots each,
 * scratch the caller reuses), and returns the number of pairs; the pack copies the segments into exact-size
 * arrays.
 * symmetric: src is dst and delta[kvol - 1 - k] == -delta[k] (an odd kernel on its own set), so offset
 * kvol - 1 - k's pairs are offset k's with in and out swapped, in the same order (a pair's input row ascends with
 * its output row): only the columns up to the centre one are searched, and the pack mirrors the others. */
int64_t sr3d_kernel_pairs_search(const int64_t *src, int64_t n_in, const int64_t *dst, int64_t n_out,
                                 const int64_t *delta, int64_t ks, int symmetric, int64_t *count, int64_t *seg_in,
                                 int64_t *seg_out) {
    const int64_t plane = ks * ks, kvol = plane * ks;
    const int64_t zstep = ks > 1 ? delta[plane] - delta[0] : 1;
    const int64_t searched = symmetric ? plane / 2 + 1 : plane;
    memset(count, 0, (size_t)kvol * sizeof(int64_t));
    for (int64_t c = 0; c < searched; ++c) {
        int64_t p = 0;
        for (int64_t o = 0; o < n_out; ++o) {
            const int64_t q = dst[o] + delta[c];
            p = seek(src, n_in, p, q);
            int64_t j = p;
            for (int64_t iz = 0; iz < ks; ++iz) { /* no division: the column's targets in order */
                const int64_t target = q + iz * zstep;
                while (j < n_in && src[j] < target) ++j;
                if (j == n_in) break;
                if (src[j] == target) {
                    const int64_t k = c + iz * plane, slot = k * n_out + count[k]++;
                    seg_in[slot] = j;
                    seg_out[slot] = o;
                }
            }
        }
    }
    int64_t total = 0;
    for (int64_t k = 0; k < kvol; ++k) {
        if (symmetric && k % plane >= searched) count[k] = count[kvol - 1 - k];
        total += count[k];
    }
    return total;
}

/* sr3d_kernel_pairs_search for a stride-2 convolution with a 3 x 3 x 3 kernel onto the parents of its input, from
 * the parent map instead of a search per kernel column and output. src (stride s = 2^log_s) and dst (its parents,
 * stride 2s) are ascending packed keys (axis_bits per coordinate field), parent[i] the row of input i's parent. An
 * input i at parent p sits at p + s * pos (pos in {0, 1}^3) and feeds exactly the outputs p + 2s * e for e within
 * pos (d = s * pos - 2s * e): p itself (its parent row) and up to seven neighbours of p, looked up once per parent
 * (three column searches, the z neighbour is the next key). Parents are walked in order and each offset's (pos, e)
 * is fixed, so each offset's outputs come out ascending, as the search gives them. Writes count / seg_in / seg_out
 * as the search does (for sr3d_kernel_pairs_pack with symmetric = 0) and returns the number of pairs, or -1 when
 * out of memory. */
static inline int child_pos(int64_t key, int log_s, int axis_bits) { /* bit 0: x on its parent's odd half, 1: y, 2: z */
    return (int)((key >> (2 * axis_bits + log_s)) & 1) | (int)(((key >> (axis_bits + log_s)) & 1) << 1) |
           (int)(((key >> log_s) & 1) << 2);
}

int64_t sr3d_kernel_pairs_down3(const int64_t *src, int64_t n_in, const int64_t *dst, int64_t n_out,
                                const int64_t *parent, int log_s, int axis_bits, int64_t *count, int64_t *seg_in,
                                int64_t *seg_out) {
    int64_t *first = calloc((size_t)n_out + 1, sizeof(int64_t)); /* children of row r: child[first[r] ..] */
    int64_t *child = malloc((size_t)(n_in > 0 ? n_in : 1) * sizeof(int64_t));
    int64_t *nbr = malloc((size_t)(n_out > 0 ? n_out : 1) * 8 * sizeof(int64_t)); /* row of p + 2s e, or -1 */
    uint8_t *need = calloc((size_t)(n_out > 0 ? n_out : 1), 1); /* the union of a parent's children's pos */
    if (!first || !child || !nbr || !need) {
        free(first);
        free(child);
        free(nbr);
        free(need);
        return -1;
    }
    for (int64_t i = 0; i < n_in; ++i) {
        ++first[parent[i] + 1];
        need[parent[i]] |= (uint8_t)child_pos(src[i], log_s, axis_bits);
    }
    for (int64_t r = 0; r < n_out; ++r) first[r + 1] += first[r];
    for (int64_t i = 0; i < n_in; ++i) child[first[parent[i]]++] = i; /* first[r] now ends row r's children */
    for (int64_t r = n_out; r > 0; --r) first[r] = first[r - 1];
    first[0] = 0;
    const int64_t step = (int64_t)2 << log_s, R = (int64_t)1 << axis_bits;
    for (int c = 0; c < 4; ++c) { /* kernel columns (ex, ey) of the parent grid */
        const int64_t dcol = step * ((c & 1) * R * R + (c >> 1) * R);
        int64_t p = 0;
        for (int64_t r = 0; r < n_out; ++r) {
            if ((need[r] & c) != c) continue; /* no child reaches this column: never read */
            const int64_t t = dst[r] + dcol;
            p = c ? seek(dst, n_out, p, t) : r;
            const int hit = p < n_out && dst[p] == t;
            const int64_t j = hit ? p + 1 : p; /* the z neighbour, if any, is the next key */
            nbr[8 * r + c] = hit ? p : -1;
            nbr[8 * r + c + 4] = j < n_out && dst[j] == t + step ? j : -1;
        }
    }
    memset(count, 0, 27 * sizeof(int64_t));
    int64_t total = 0;
    for (int64_t r = 0; r < n_out; ++r) {
        for (int64_t q = first[r]; q < first[r + 1]; ++q) {
            const int64_t i = child[q];
            const int pos = child_pos(src[i], log_s, axis_bits);
            for (int e = pos;; e = (e - 1) & pos) { /* every e within pos, pos itself first, down to 0 */
                const int64_t o = nbr[8 * r + e];
                if (o >= 0) {
                    /* d per axis in units of s: 0 off pos, +1 on pos but not e, -1 on e; k = ix + 3 iy + 9 iz */
                    const int dx = (pos & 1) ? ((e & 1) ? -1 : 1) : 0, dy = (pos & 2) ? ((e & 2) ? -1 : 1) : 0;
                    const int dz = (pos & 4) ? ((e & 4) ? -1 : 1) : 0;
                    const int k = (dx + 1) + 3 * (dy + 1) + 9 * (dz + 1);
                    const int64_t slot = k * n_out + count[k]++;
                    seg_in[slot] = i;
                    seg_out[slot] = o;
                    ++total;
                }
                if (e == 0) break;
            }
        }
    }
    free(first);
    free(child);
    free(nbr);
    free(need);
    return total;
}

void sr3d_kernel_pairs_pack(const int64_t *count, int64_t ks, int symmetric, int64_t n_out, const int64_t *seg_in,
                            const int64_t *seg_out, int64_t *starts, int64_t *rows_in, int64_t *rows_out) {
    const int64_t plane = ks * ks, kvol = plane * ks, searched = symmetric ? plane / 2 + 1 : plane;
    int64_t m = 0;
    for (int64_t k = 0; k < kvol; ++k) {
        starts[k] = m;
        const int mirror = symmetric && k % plane >= searched;
        const int64_t from = (mirror ? kvol - 1 - k : k) * n_out, n = count[k];
        memcpy(rows_in + m, (mirror ? seg_out : seg_in) + from, (size_t)n * sizeof(int64_t));
        memcpy(rows_out + m, (mirror ? seg_in : seg_out) + from, (size_t)n * sizeof(int64_t));
        m += n;
    }
    starts[kvol] = m;
}

/* The table of a pair list (the inverse of sr3d_pair_starts / sr3d_pair_fill): cols[k * n_out + o] = i for every
 * pair (i, o) of offset k, n_in elsewhere. */
void sr3d_pairs_to_table(const int64_t *starts, const int64_t *rows_in, const int64_t *rows_out, int64_t kvol,
                         int64_t n_in, int64_t n_out, int64_t *cols) {
    for (int64_t i = 0; i < kvol * n_out; ++i) cols[i] = n_in;
    for (int64_t k = 0; k < kvol; ++k) {
        int64_t *row = cols + k * n_out;
        for (int64_t p = starts[k]; p < starts[k + 1]; ++p) row[rows_out[p]] = rows_in[p];
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

/* The existing pairs of a neighbour table, offset by offset (the convolution kernels' input): starts[k] is the
 * first pair of offset k, starts[kvol] the total, which is returned. */
int64_t sr3d_pair_starts(const int64_t *cols, int64_t kvol, int64_t n_out, int64_t n_in, int64_t *starts) {
    int64_t total = 0;
    for (int64_t k = 0; k < kvol; ++k) {
        starts[k] = total;
        const int64_t *col = cols + k * n_out;
        for (int64_t o = 0; o < n_out; ++o) total += col[o] < n_in;
    }
    starts[kvol] = total;
    return total;
}

/* rows_in / rows_out of every pair, offset-major, output rows ascending within an offset. Written without
 * branches (the empty sites of a sparse offset would cost a mispredicted branch each), so both arrays need one
 * slot more than the number of pairs. */
void sr3d_pair_fill(const int64_t *cols, int64_t kvol, int64_t n_out, int64_t n_in, int64_t *rows_in,
                    int64_t *rows_out) {
    int64_t m = 0;
    for (int64_t k = 0; k < kvol; ++k) {
        const int64_t *col = cols + k * n_out;
        for (int64_t o = 0; o < n_out; ++o) {
            rows_in[m] = col[o];
            rows_out[m] = o;
            m += col[o] < n_in;
        }
    }
}

/* Voxelization's sort-unique with its random in-voxel pick, in one pass over radix-sorted keys.
 * keys (n): any int64 keys, typically packed voxel keys (a batch field above three axis_bits-wide coordinate
 * fields); prio (n): distinct priorities (a permutation).
 * Writes the ascending unique keys (m of them), inverse[i] = unique row of point i, and pick[v] = the point of
 * highest priority in voxel v; returns m. order, tmp and dense are n-element scratch buffers. */
static inline int64_t key_field(int64_t key, int f, int axis_bits) {
    /* Field 0: the bits above the three coordinate fields, signed (so any int64 keeps its order); 1-3: x, y, z. */
    if (f == 0) return key >> (3 * axis_bits); /* arithmetic shift */
    return (int64_t)(((uint64_t)key >> ((3 - f) * axis_bits)) & (((uint64_t)1 << axis_bits) - 1));
}

int64_t sr3d_unique_pick(const int64_t *keys, const int64_t *prio, int64_t n, int axis_bits, int64_t *order,
                         int64_t *tmp, int64_t *dense, int64_t *ukeys, int64_t *inverse, int64_t *pick) {
    if (n <= 0) return 0;
    /* The sort runs on dense keys of the same order: each field minus its minimum, shifted past the low bits that
     * are zero in all of them (a stride), in mixed radix (at most 64 bits: the field widths never sum to more). A
     * frame's keys then span ~24 bits instead of reaching the top field: two passes of 12-bit digits where the
     * packed keys needed three or four. */
    int64_t lo[4], hi[4];
    uint64_t spread[4] = {0, 0, 0, 0};
    for (int f = 0; f < 4; ++f) {
        lo[f] = INT64_MAX;
        hi[f] = INT64_MIN;
    }
    for (int64_t i = 0; i < n; ++i) {
        for (int f = 0; f < 4; ++f) {
            const int64_t v = key_field(keys[i], f, axis_bits);
            lo[f] = v < lo[f] ? v : lo[f];
            hi[f] = v > hi[f] ? v : hi[f];
        }
    }
    for (int64_t i = 0; i < n; ++i) /* the low bits every field's offset from its minimum leaves zero */
        for (int f = 0; f < 4; ++f) spread[f] |= (uint64_t)(key_field(keys[i], f, axis_bits) - lo[f]);
    int shift[4];
    uint64_t width[4];
    for (int f = 0; f < 4; ++f) {
        shift[f] = spread[f] ? __builtin_ctzll(spread[f]) : 0;
        width[f] = ((uint64_t)(hi[f] - lo[f]) >> shift[f]) + 1;
    }
    for (int64_t i = 0; i < n; ++i) {
        uint64_t d = 0;
        for (int f = 0; f < 4; ++f)
            d = d * width[f] + ((uint64_t)(key_field(keys[i], f, axis_bits) - lo[f]) >> shift[f]);
        dense[i] = (int64_t)d;
        order[i] = i;
    }
    uint64_t top = 0;
    for (int64_t i = 0; i < n; ++i) top |= (uint64_t)dense[i];
    const int used = top ? 64 - __builtin_clzll(top) : 0;
    /* LSD radix sort of the indices by dense key, in as few passes of at most 12 bits as cover the used bits. */
    enum { MAX_BITS = 12 };
    const int passes = (used + MAX_BITS - 1) / MAX_BITS, digit = passes ? (used + passes - 1) / passes : 0;
    int64_t count[1 << MAX_BITS];
    int64_t *src = order, *dst = tmp;
    for (int pass = 0; pass < passes; ++pass) {
        const int sh = pass * digit;
        const uint64_t dmask = ((uint64_t)1 << digit) - 1;
        for (int b = 0; b <= (int)dmask; ++b) count[b] = 0;
        for (int64_t i = 0; i < n; ++i) ++count[((uint64_t)dense[i] >> sh) & dmask];
        int64_t sum = 0;
        for (int b = 0; b <= (int)dmask; ++b) {
            const int64_t c = count[b];
            count[b] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; ++i) {
            const int64_t j = src[i];
            dst[count[((uint64_t)dense[j] >> sh) & dmask]++] = j;
        }
        int64_t *swap = src;
        src = dst;
        dst = swap;
    }
    int64_t m = -1, last = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t j = src[i];
        if (m < 0 || dense[j] != last) {
            ++m;
            last = dense[j];
            ukeys[m] = keys[j];
            pick[m] = j;
        } else if (prio[j] > prio[pick[m]]) {
            pick[m] = j;
        }
        inverse[j] = m;
    }
    return m + 1;
}

/* Packed voxel keys of float32 points: key = ((b * R + x + OFF) * R + y + OFF) * R + z + OFF, R = 2^axis_bits,
 * OFF = 2^(axis_bits - 1), with x = floor of px over the voxel size computed as the PyTorch path does for `mode`
 * (SR3D_QUANTIZE_*): in double; as a float32 quotient; or as a float32 product with the float32 reciprocal.
 * Point i's x, y, z are xyz[row_stride * i + 0, 1, 2] (a cloud's xyz columns read in place).
 * Returns 0, or 1 when a point is not finite or a coordinate lies outside [-limit, limit] (the caller then runs the
 * checked PyTorch path, which names the problem). */
enum { SR3D_QUANTIZE_FLOAT64 = 0, SR3D_QUANTIZE_FLOAT32 = 1, SR3D_QUANTIZE_FLOAT32_RECIPROCAL = 2 };

int sr3d_voxel_keys(const float *xyz, int64_t n, int64_t row_stride, double voxel, int mode, int64_t batch,
                    int axis_bits, int64_t limit, int64_t *keys) {
    const int64_t radix = (int64_t)1 << axis_bits, off = (int64_t)1 << (axis_bits - 1);
    const double lim = (double)limit;
    /* Both rounded to float32 as PyTorch rounds a Python number for a float32 tensor; no -ffast-math, so the
     * compiler keeps a float32 division a division. */
    const float voxel32 = (float)voxel, inverse32 = 1.0f / voxel32;
    for (int64_t i = 0; i < n; ++i) {
        int64_t key = batch;
        for (int a = 0; a < 3; ++a) {
            const float p = xyz[row_stride * i + a];
            double q;
            if (mode == SR3D_QUANTIZE_FLOAT32)
                q = (double)floorf(p / voxel32);
            else if (mode == SR3D_QUANTIZE_FLOAT32_RECIPROCAL)
                q = (double)floorf(p * inverse32);
            else
                q = floor((double)p / voxel);
            if (!(q >= -lim && q <= lim)) return 1; /* also catches NaN */
            key = key * radix + (int64_t)q + off;
        }
        keys[i] = key;
    }
    return 0;
}

/* Floating-point contraction off for one function: its float32 sums must round as numpy's separate operations do
 * (the library is built with -ffp-contract=fast for the convolution kernels). */
#if defined(__clang__)
#define SR3D_NO_FMA_ATTR
#define SR3D_NO_FMA_BODY _Pragma("clang fp contract(off)")
#elif defined(__GNUC__)
#define SR3D_NO_FMA_ATTR __attribute__((optimize("fp-contract=off")))
#define SR3D_NO_FMA_BODY
#else
#define SR3D_NO_FMA_ATTR
#define SR3D_NO_FMA_BODY
#endif

/* Points of a sensor cloud's raw records, decoded, filtered and transformed in one pass (the node's per-frame
 * conversion; sr3d_ros.conversions.pointcloud2_to_array is the reference, and gives the same bits).
 * Point p's record starts at data + (p / width) * row_stride + (p % width) * step; the points read are rows[0..n)
 * (rows NULL: 0..n). x, y, z are float32 in the host's byte order at byte offsets off[0..2]; a point with a
 * non-finite coordinate is skipped. affine (row-major 3 x 4, or NULL) maps the kept points: out_r =
 * ((x * a_r0 + y * a_r1) + z * a_r2) + a_r3, each product and sum rounded to float32. With off_color >= 0, the
 * bytes off_color + color_bytes[0..2] (R, G, B of a packed colour) times scale follow as columns 3..5.
 * Writes (kept, 3 or 6) floats to out and returns kept. */
SR3D_NO_FMA_ATTR int64_t sr3d_decode_records(const uint8_t *data, int64_t width, int64_t step, int64_t row_stride,
                                             const int64_t *rows, int64_t n, const int32_t *off, int32_t off_color,
                                             const int32_t *color_bytes, float scale, const float *affine,
                                             float *out) {
    SR3D_NO_FMA_BODY
    const int cols = off_color >= 0 ? 6 : 3;
    int64_t kept = 0;
    enum { AHEAD = 16 }; /* records are scattered over a camera-size cloud: ask for them before they are needed */
    for (int64_t i = 0; i < n; ++i) {
        if (i + AHEAD < n) {
            const int64_t q = rows ? rows[i + AHEAD] : i + AHEAD;
            __builtin_prefetch(data + (q / width) * row_stride + (q % width) * step);
        }
        const int64_t p = rows ? rows[i] : i;
        const uint8_t *rec = data + (p / width) * row_stride + (p % width) * step;
        float v[3];
        memcpy(&v[0], rec + off[0], 4);
        memcpy(&v[1], rec + off[1], 4);
        memcpy(&v[2], rec + off[2], 4);
        if (!(isfinite(v[0]) && isfinite(v[1]) && isfinite(v[2]))) continue;
        float *o = out + kept * cols;
        if (affine) {
            for (int r = 0; r < 3; ++r) {
                const float *a = affine + 4 * r;
                float s = v[0] * a[0];
                const float py = v[1] * a[1];
                s = s + py;
                const float pz = v[2] * a[2];
                s = s + pz;
                o[r] = s + a[3];
            }
        } else {
            o[0] = v[0];
            o[1] = v[1];
            o[2] = v[2];
        }
        if (off_color >= 0)
            for (int c = 0; c < 3; ++c) o[3 + c] = (float)rec[off_color + color_bytes[c]] * scale;
        ++kept;
    }
    return kept;
}


/* Sparse convolution as one fused gather-GEMM: no gathered block in memory, no per-offset ops.
 *
 * Eight-float vectors (GCC/Clang vector extensions: AVX/AVX2 with -march=native on x86, NEON pairs on ARM). For
 * every kernel offset, its (input, output) pairs are taken ROWS at a time; the destination rows' tile of 8 NV
 * channels is loaded into registers, every source channel is broadcast against one row of the offset's weight
 * (fused multiply-adds), and the tile is stored back. Work is spent on existing pairs only (no empty sites,
 * whatever the fill). Tiles of 6 rows x 16 channels hold 12 accumulators, 2 weight vectors and a broadcast in 15
 * of AVX2's 16 vector registers, 8 loads per 12 multiply-adds; 3 x 32 needed 17 registers, so the compiler
 * re-read the weights from memory for every row (15 loads per 12): 1.1-1.3x slower. Channel counts must be
 * multiples of 8 (the caller checks). */
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
 * this tile of output channels, packed (`pack_tiles`); the rows of a group need not be adjacent. */
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

/* Where the pairs [p, p + count) of a convolution read (src) and write (dst), padded to total entries with the
 * scratch rows (zeros to read, a row never read to write). */
typedef struct {
    const float *x;
    float *out;
    const int64_t *rows_in, *rows_out;
    int64_t c_in, c_out;
    int transpose;
    float *scratch;
} PairRows;

static void pair_rows(const PairRows *pr, int64_t p, int64_t count, int64_t total, const float **src, float **dst) {
    for (int64_t q = 0; q < total; ++q) {
        if (q < count) {
            const int64_t i = pr->rows_in[p + q], o = pr->rows_out[p + q];
            src[q] = pr->x + (pr->transpose ? o : i) * pr->c_in;
            dst[q] = pr->out + (pr->transpose ? i : o) * pr->c_out;
        } else {
            src[q] = pr->scratch;
            dst[q] = pr->scratch + pr->c_in;
        }
    }
}

enum { OBLOCK = 512 }; /* output rows per block of the convolutions below */

/* out[k] = w[k]^T for the kvol (r x c) matrices of a weight: the input gradient's weights. In 8 x 8 blocks, whose
 * rows and columns stay in cache (a generic strided copy of a 128 x 128 kernel took ~0.8 ms, 40x this). */
void sr3d_transpose_weights(const float *w, int64_t kvol, int64_t r, int64_t c, float *out) {
    for (int64_t k = 0; k < kvol; ++k) {
        const float *src = w + k * r * c;
        float *dst = out + k * r * c;
        for (int64_t i0 = 0; i0 < r; i0 += 8)
            for (int64_t j0 = 0; j0 < c; j0 += 8)
                for (int64_t i = i0; i < i0 + 8 && i < r; ++i)
                    for (int64_t j = j0; j < j0 + 8 && j < c; ++j) dst[j * r + i] = src[i * c + j];
    }
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

/* Narrow inputs (c_in < 8: a stem on colours). A pair then carries only c_in multiply-adds per output channel, so
 * the group tiles below spend most of their time on pointers, tile loads and stores. These loops keep an offset's
 * weights for one 16-channel tile (c_in x 2 vectors) in registers and take the pairs one by one: the forward adds
 * x[i] w[k] into out[o] (output rows in blocks of OBLOCK, every offset per block, as the general kernel), the weight
 * gradient accumulates x[i]^T g[o] for a whole offset in registers. One function per c_in, so the channel loops
 * unroll. */
#define SR3D_NARROW(CIN)                                                                                      \
    static void narrow_fwd##CIN(const float *x, const int64_t *starts, const int64_t *rows_in,                \
                                const int64_t *rows_out, int64_t kvol, int64_t n_out, const float *w,          \
                                int64_t c_out, float *out, int64_t *next) {                                    \
        for (int64_t co = 0; co < c_out; co += 16) {                                                          \
            const int nv = c_out - co >= 16 ? 2 : 1;                                                          \
            memcpy(next, starts, (size_t)kvol * sizeof(int64_t));                                             \
            for (int64_t o0 = 0; o0 < n_out; o0 += OBLOCK) {                                                  \
                for (int64_t k = 0; k < kvol; ++k) {                                                          \
                    v8 wv[CIN][2];                                                                            \
                    for (int c = 0; c < CIN; ++c) {                                                           \
                        wv[c][0] = load8(w + (k * CIN + c) * c_out + co);                                     \
                        wv[c][1] = nv == 2 ? load8(w + (k * CIN + c) * c_out + co + 8) : splat8(0.f);         \
                    }                                                                                         \
                    int64_t p = next[k];                                                                      \
                    for (const int64_t end = starts[k + 1]; p < end && rows_out[p] < o0 + OBLOCK; ++p) {      \
                        const float *xi = x + rows_in[p] * CIN;                                               \
                        float *dst = out + rows_out[p] * c_out + co;                                          \
                        v8 a0 = load8(dst), a1 = nv == 2 ? load8(dst + 8) : splat8(0.f);                      \
                        for (int c = 0; c < CIN; ++c) {                                                       \
                            const v8 b = splat8(xi[c]);                                                       \
                            a0 += b * wv[c][0];                                                               \
                            a1 += b * wv[c][1];                                                               \
                        }                                                                                     \
                        store8(dst, a0);                                                                      \
                        if (nv == 2) store8(dst + 8, a1);                                                     \
                    }                                                                                         \
                    next[k] = p;                                                                              \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
    static void narrow_wgrad##CIN(const float *x, const int64_t *starts, const int64_t *rows_in,              \
                                  const int64_t *rows_out, int64_t kvol, const float *g, int64_t c_out,        \
                                  float *gw) {                                                                \
        for (int64_t k = 0; k < kvol; ++k) {                                                                  \
            for (int64_t co = 0; co < c_out; co += 16) {                                                      \
                const int nv = c_out - co >= 16 ? 2 : 1;                                                      \
                v8 acc[CIN][2];                                                                               \
                for (int c = 0; c < CIN; ++c) acc[c][0] = acc[c][1] = splat8(0.f);                            \
                for (int64_t p = starts[k]; p < starts[k + 1]; ++p) {                                         \
                    const float *xi = x + rows_in[p] * CIN, *gr = g + rows_out[p] * c_out + co;               \
                    const v8 g0 = load8(gr), g1 = nv == 2 ? load8(gr + 8) : splat8(0.f);                      \
                    for (int c = 0; c < CIN; ++c) {                                                           \
                        const v8 b = splat8(xi[c]);                                                           \
                        acc[c][0] += b * g0;                                                                  \
                        acc[c][1] += b * g1;                                                                  \
                    }                                                                                         \
                }                                                                                             \
                for (int c = 0; c < CIN; ++c) {                                                               \
                    store8(gw + (k * CIN + c) * c_out + co, acc[c][0]);                                       \
                    if (nv == 2) store8(gw + (k * CIN + c) * c_out + co + 8, acc[c][1]);                      \
                }                                                                                             \
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

/* The narrow forward (out zeroed by the caller) or weight gradient for 1 <= c_in < 8. */
static void narrow_fwd(const float *x, int64_t c_in, const int64_t *starts, const int64_t *rows_in,
                       const int64_t *rows_out, int64_t kvol, int64_t n_out, const float *w, int64_t c_out,
                       float *out, int64_t *next) {
    switch (c_in) {
    case 1: narrow_fwd1(x, starts, rows_in, rows_out, kvol, n_out, w, c_out, out, next); break;
    case 2: narrow_fwd2(x, starts, rows_in, rows_out, kvol, n_out, w, c_out, out, next); break;
    case 3: narrow_fwd3(x, starts, rows_in, rows_out, kvol, n_out, w, c_out, out, next); break;
    case 4: narrow_fwd4(x, starts, rows_in, rows_out, kvol, n_out, w, c_out, out, next); break;
    case 5: narrow_fwd5(x, starts, rows_in, rows_out, kvol, n_out, w, c_out, out, next); break;
    case 6: narrow_fwd6(x, starts, rows_in, rows_out, kvol, n_out, w, c_out, out, next); break;
    default: narrow_fwd7(x, starts, rows_in, rows_out, kvol, n_out, w, c_out, out, next); break;
    }
}

static void narrow_wgrad(const float *x, int64_t c_in, const int64_t *starts, const int64_t *rows_in,
                         const int64_t *rows_out, int64_t kvol, const float *g, int64_t c_out, float *gw) {
    switch (c_in) {
    case 1: narrow_wgrad1(x, starts, rows_in, rows_out, kvol, g, c_out, gw); break;
    case 2: narrow_wgrad2(x, starts, rows_in, rows_out, kvol, g, c_out, gw); break;
    case 3: narrow_wgrad3(x, starts, rows_in, rows_out, kvol, g, c_out, gw); break;
    case 4: narrow_wgrad4(x, starts, rows_in, rows_out, kvol, g, c_out, gw); break;
    case 5: narrow_wgrad5(x, starts, rows_in, rows_out, kvol, g, c_out, gw); break;
    case 6: narrow_wgrad6(x, starts, rows_in, rows_out, kvol, g, c_out, gw); break;
    default: narrow_wgrad7(x, starts, rows_in, rows_out, kvol, g, c_out, gw); break;
    }
}

/* The convolution over the pair list of a kernel map (sr3d_kernel_pairs_pack, or sr3d_pair_starts / sr3d_pair_fill
 * from a table: offset k's pairs are [starts[k], starts[k + 1]) of rows_in / rows_out, output rows ascending) and
 * weights w (kvol, c_in, c_out), all row-major float32; out is overwritten.
 *   transpose = 0: out (n_out, c_out)[o] = sum over pairs (k, i, o) of x[i] @ w[k], x (n_in, c_in): the forward.
 *   transpose = 1: out (n_in, c_out)[i] = sum over pairs (k, i, o) of x[o] @ w[k], x (n_out, c_in): the input
 *                  gradient, called with the gradient as x and every w[k] transposed. An input row feeds at most
 *                  one output row per offset (o = i - offset), so the rows of a group are distinct.
 * The output rows are taken in blocks of OBLOCK, and every offset is applied to one block before the next: the
 * block's destination rows and the few windows of source rows its neighbours fall in stay in the L2 cache across
 * the 27 offsets (sweeping all rows once per offset streamed every row from memory 27 times: 1.2-1.4x slower at
 * 2 cm on a 50k-point frame). The order of the terms of every sum is fixed, so every run gives the same bits.
 * Returns 0, 1 when c_out % 8 != 0, 2 when out of memory. */

int sr3d_conv_pairs(const float *x, int64_t c_in, const int64_t *starts, const int64_t *rows_in,
                    const int64_t *rows_out, int64_t kvol, int64_t n_in, int64_t n_out, const float *w,
                    int64_t c_out, float *out, int transpose) {
    if (c_out % 8) return 1;
    memset(out, 0, (size_t)((transpose ? n_in : n_out) * c_out) * sizeof(float));
    if (!transpose && c_in >= 1 && c_in < 8) {
        int64_t *cursor = malloc((size_t)(kvol > 0 ? kvol : 1) * sizeof(int64_t));
        if (!cursor) return 2;
        narrow_fwd(x, c_in, starts, rows_in, rows_out, kvol, n_out, w, c_out, out, cursor);
        free(cursor);
        return 0;
    }
    /* What the unused slots of a last, incomplete group read (zeros) and write (a row that is never read). */
    float *scratch = calloc((size_t)(c_in + c_out), sizeof(float));
    int64_t *next = malloc((size_t)(kvol > 0 ? kvol : 1) * sizeof(int64_t)); /* each offset's first pair left */
    float *wt = malloc((size_t)(kvol * c_in * c_out > 0 ? kvol * c_in * c_out : 1) * sizeof(float));
    if (!scratch || !next || !wt) {
        free(scratch);
        free(next);
        free(wt);
        return 2;
    }
    pack_tiles(w, kvol, c_in, c_out, wt);
    memcpy(next, starts, (size_t)kvol * sizeof(int64_t));
    const PairRows rows = {x, out, rows_in, rows_out, c_in, c_out, transpose, scratch};
    for (int64_t o0 = 0; o0 < n_out; o0 += OBLOCK) {
        const int64_t o1 = o0 + OBLOCK;
        for (int64_t k = 0; k < kvol; ++k) {
            const float *wk = wt + k * c_in * c_out;
            const int64_t first = next[k], end = starts[k + 1];
            int64_t last = first;
            while (last < end && rows_out[last] < o1) ++last;
            next[k] = last;
            /* Group by group: a group's six source rows stay in L1 across its channel tiles, while each tile's
             * packed weights stream in order from L2. */
            for (int64_t p = first; p < last; p += ROWS) {
                const float *gsrc[ROWS];
                float *gdst[ROWS];
                pair_rows(&rows, p, last - p < ROWS ? last - p : ROWS, ROWS, gsrc, gdst);
                int64_t co = 0;
                for (; co + 16 <= c_out; co += 16) pair_tile2(gsrc, gdst, c_in, wk + co * c_in, co);
                for (; co < c_out; co += 8) pair_tile1(gsrc, gdst, c_in, wk + co * c_in, co);
            }
        }
    }
    free(scratch);
    free(next);
    free(wt);
    return 0;
}

/* gw[r][co .. co + 8 NV) (+)= sum_p xb[p][r] gb[p][0 .. 8 NV) for the first `valid` (<= 6) rows r, over `count`
 * packed pairs of a chunk: xb (count, 6) holds six of the pairs' input channels (zero past the last one), gb
 * (count, 8 NV) one tile of their gradient channels; gw points at the block's first input channel. */
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

/* The weight gradient of sr3d_conv_pairs: gw[k] = sum over offset k's pairs (i, o) of x[i]^T g[o], gw
 * (kvol, c_in, c_out) overwritten, g (n_out, c_out). Every offset's pairs are taken in chunks, and a chunk's input
 * and gradient rows are packed the way the tiles read them: its input channels in blocks of six (the last one
 * zero-padded), each block (chunk, 6), and its gradient channels in tiles of 16 (8), each (chunk, width). A tile
 * then reads two runs of memory, the block (6 KB at 256 pairs) staying in L1 across the tiles; with the pairs'
 * rows as they are, every pair started two new cache lines per tile (packing: 1.0-1.15x at 64-128 channels,
 * 1.2x at 256). The
 * buffers (<= 256 KB) are reused across chunks: whole-offset buffers of several MB were fresh pages, faulted in
 * on every call. Returns 0, 1 when c_out % 8 != 0, 2 when out of memory. */
int sr3d_conv_weight_grad(const float *x, int64_t c_in, const int64_t *starts, const int64_t *rows_in,
                          const int64_t *rows_out, int64_t kvol, const float *g, int64_t c_out, float *gw) {
    if (c_out % 8) return 1;
    if (c_in >= 1 && c_in < 8) {
        narrow_wgrad(x, c_in, starts, rows_in, rows_out, kvol, g, c_out, gw);
        return 0;
    }
    const int64_t blocks = (c_in + 5) / 6;
    int64_t chunk = 65536 / (6 * blocks + c_out);
    chunk = chunk < 16 ? 16 : chunk > 256 ? 256 : chunk;
    float *xs = calloc((size_t)(chunk * 6 * (blocks > 0 ? blocks : 1)), sizeof(float)); /* the padding stays 0 */
    float *gs = malloc((size_t)(chunk * (c_out > 0 ? c_out : 1)) * sizeof(float));
    if (!xs || !gs) {
        free(xs);
        free(gs);
        return 2;
    }
    for (int64_t k = 0; k < kvol; ++k) {
        float *gk = gw + k * c_in * c_out;
        if (starts[k] == starts[k + 1]) memset(gk, 0, (size_t)(c_in * c_out) * sizeof(float)); /* no pairs */
        for (int64_t p0 = starts[k]; p0 < starts[k + 1]; p0 += chunk) {
            const int64_t n = starts[k + 1] - p0 < chunk ? starts[k + 1] - p0 : chunk;
            for (int64_t p = 0; p < n; ++p) {
                const float *xr = x + rows_in[p0 + p] * c_in, *gr = g + rows_out[p0 + p] * c_out;
                if (p + 8 < n) { /* eight pairs ahead: the gathered rows miss the cache (1.1-1.25x) */
                    const float *xn = x + rows_in[p0 + p + 8] * c_in;
                    const float *gn = g + rows_out[p0 + p + 8] * c_out;
                    for (int64_t c = 0; c < c_in; c += 16) __builtin_prefetch(xn + c);
                    for (int64_t c = 0; c < c_out; c += 16) __builtin_prefetch(gn + c);
                }
                /* fixed-size copies the compiler unrolls (a memcpy call per six floats cost as much as the
                 * arithmetic at 64 channels) */
                int64_t b = 0;
                for (; 6 * b + 6 <= c_in; ++b)
                    for (int r = 0; r < 6; ++r) xs[(b * chunk + p) * 6 + r] = xr[6 * b + r];
                for (int64_t c = 6 * b; c < c_in; ++c) xs[(b * chunk + p) * 6 + c - 6 * b] = xr[c];
                int64_t co = 0;
                for (; co + 16 <= c_out; co += 16) {
                    store8(gs + co * chunk + p * 16, load8(gr + co));
                    store8(gs + co * chunk + p * 16 + 8, load8(gr + co + 8));
                }
                if (co < c_out) store8(gs + co * chunk + p * 8, load8(gr + co));
            }
            const int add = p0 > starts[k];
            for (int64_t b = 0; b < blocks; ++b) {
                const int valid = c_in - 6 * b < 6 ? (int)(c_in - 6 * b) : 6;
                const float *xb = xs + b * chunk * 6;
                float *gb = gk + 6 * b * c_out;
                int64_t co = 0;
                for (; co + 16 <= c_out; co += 16) wgrad_tile2(xb, gs + co * chunk, n, gb, c_out, co, valid, add);
                for (; co < c_out; co += 8) wgrad_tile1(xb, gs + co * chunk, n, gb, c_out, co, valid, add);
            }
        }
    }
    free(xs);
    free(gs);
    return 0;
}


/* Max pool of rows into their parents (kernel = stride = 2): out[parent[i]][ch] = max over the children i, and
 * arg[parent[i]][ch] = the first child (lowest row) holding it, which the gradient is routed to (as
 * MinkowskiEngine's max pool does). A NaN wins and stays (as torch's amax). Every parent has a child. */
void sr3d_max_pool(const float *x, int64_t n, int64_t c, const int64_t *parent, int64_t m, float *out,
                   int32_t *arg) {
    for (int64_t j = 0; j < m * c; ++j) arg[j] = -1;
    for (int64_t i = 0; i < n; ++i) {
        float *o = out + parent[i] * c;
        int32_t *a = arg + parent[i] * c;
        const float *xi = x + i * c;
        for (int64_t ch = 0; ch < c; ++ch) { /* branchless: the comparisons of random features are coin flips */
            const float v = xi[ch];
            const int take = (a[ch] < 0) | (v > o[ch]) | ((v != v) & (o[ch] == o[ch]));
            o[ch] = take ? v : o[ch];
            a[ch] = take ? (int32_t)i : a[ch];
        }
    }
}

/* Its gradient: gx (n, c) = 0 except gx[arg[j]][ch] = g[j] (each child feeds one parent: no collisions). */
void sr3d_max_pool_grad(const float *g, const int32_t *arg, int64_t m, int64_t c, float *gx, int64_t n) {
    memset(gx, 0, (size_t)(n * c) * sizeof(float));
    for (int64_t j = 0; j < m; ++j)
        for (int64_t ch = 0; ch < c; ++ch) gx[(int64_t)arg[j * c + ch] * c + ch] = g[j * c + ch];
}

/* Convex polygons of up to CLIP_MAX vertices, clipped by Sutherland-Hodgman steps: the rotated IoU below (no
 * gradient) and the clipped area with its gradient (sr3d_convex_clip) share them. */
enum { CLIP_MAX = 24, CLIP_EDGES = 8 };

typedef struct {
    int n;
    double x[CLIP_MAX], y[CLIP_MAX];
} Poly;

typedef struct { /* how an output vertex of one clipping stage came about */
    int kind;    /* 0: input vertex a kept; 1: the crossing of the input edge a -> b */
    int a, b;
    double ds, d, t;
} Step;

/* One Sutherland-Hodgman step: clip in by the half-plane left of q0 -> q1; distances within tol of the line count
 * as on it (no sliver vertices from coincident edges). steps (may be NULL) records where each output vertex came
 * from. Returns the output's vertex count, or -1 when it would outgrow CLIP_MAX. */
static int clip_stage(const Poly *in, double q0x, double q0y, double q1x, double q1y, double tol, Poly *out,
                      Step *steps) {
    const double ex = q1x - q0x, ey = q1y - q0y;
    double d[CLIP_MAX];
    for (int v = 0; v < in->n; ++v) {
        const double dv = ex * (in->y[v] - q0y) - ey * (in->x[v] - q0x); /* > 0: inside (left) */
        d[v] = fabs(dv) <= tol ? 0.0 : dv;
    }
    int k = 0;
    for (int v = 0; v < in->n; ++v) {
        if (k + 2 > CLIP_MAX) return -1;
        const int s = (v + in->n - 1) % in->n; /* edge s -> v */
        if ((d[s] > 0 && d[v] < 0) || (d[s] < 0 && d[v] > 0)) {
            const double t = d[s] / (d[s] - d[v]);
            out->x[k] = in->x[s] + t * (in->x[v] - in->x[s]);
            out->y[k] = in->y[s] + t * (in->y[v] - in->y[s]);
            if (steps) steps[k] = (Step){1, s, v, d[s], d[v], t};
            ++k;
        }
        if (d[v] >= 0) {
            out->x[k] = in->x[v];
            out->y[k] = in->y[v];
            if (steps) steps[k] = (Step){0, v, v, 0, 0, 0};
            ++k;
        }
    }
    out->n = k;
    return k;
}

static void bev_rect(const double *b, double mx, double my, double *px, double *py) {
    static const double SX[4] = {-0.5, 0.5, 0.5, -0.5}, SY[4] = {-0.5, -0.5, 0.5, 0.5};
    const double c = cos(b[6]), s = sin(b[6]);
    for (int v = 0; v < 4; ++v) {
        const double lx = SX[v] * b[3], ly = SY[v] * b[4];
        px[v] = c * lx - s * ly + (b[0] - mx);
        py[v] = s * lx + c * ly + (b[1] - my);
    }
}

static double shoelace(const double *x, const double *y, int n) {
    double a = 0.0;
    for (int v = 0; v < n; ++v) a += x[v] * y[(v + 1) % n] - y[v] * x[(v + 1) % n];
    return 0.5 * a;
}

/* Bird's-eye-view IoU of rotated box pairs, for non-maximum suppression (no gradient needed there).
 *
 * The same geometry as sr3d_core.geometry.iou (its PyTorch twin and reference): both footprints as
 * counter-clockwise rectangles about the pair's mid-centre, one clipped by the other's four edges
 * (Sutherland-Hodgman), the shoelace area capped by either area, IoU = inter / union (0 for an empty union). In
 * double, per pair, in registers: a few hundred nanoseconds where the batched tensor version costs a few hundred
 * small tensor operations whatever the number of pairs. Boxes are (x, y, z, dx, dy, dz, yaw) rows of 7 doubles. */
void sr3d_rotated_iou_bev(const double *b1, const double *b2, int64_t n, double *iou) {
    for (int64_t p = 0; p < n; ++p) {
        const double *a = b1 + 7 * p, *b = b2 + 7 * p;
        const double mx = 0.5 * (a[0] + b[0]), my = 0.5 * (a[1] + b[1]);
        double ax[4], ay[4], cx[4], cy[4];
        bev_rect(a, mx, my, ax, ay);
        bev_rect(b, mx, my, cx, cy);
        Poly buf[2], *cur = &buf[0], *next = &buf[1];
        cur->n = 4;
        double scale = 0.0;
        for (int v = 0; v < 4; ++v) {
            cur->x[v] = ax[v];
            cur->y[v] = ay[v];
            scale = fmax(scale, fmax(fmax(fabs(ax[v]), fabs(ay[v])), fmax(fabs(cx[v]), fabs(cy[v]))));
        }
        for (int e = 0; e < 4 && cur->n > 0; ++e) {
            const int e1 = (e + 1) % 4;
            const double tol = 32.0 * 2.220446049250313e-16 * scale * (fabs(cx[e1] - cx[e]) + fabs(cy[e1] - cy[e]));
            clip_stage(cur, cx[e], cy[e], cx[e1], cy[e1], tol, next, NULL); /* 4 + 4 vertices at most: fits */
            Poly *swap = cur;
            cur = next;
            next = swap;
        }
        const double area1 = a[3] * a[4], area2 = b[3] * b[4];
        double inter = cur->n > 0 ? shoelace(cur->x, cur->y, cur->n) : 0.0;
        inter = fmin(fmax(inter, 0.0), fmax(fmin(area1, area2), 0.0));
        const double uni = area1 + area2 - inter;
        iou[p] = uni > 0 ? inter / uni : 0.0;
    }
}

/* Greedy per-class NMS on the rotated BEV IoU above: boxes b (k x 7) in descending score order, labels (k); box j
 * is suppressed by the first kept box i < j of its label with IoU(i, j) > thr. The IoU is compared as the caller's
 * dtype would hold it (single: rounded to float, against the float threshold). Boxes whose axis-aligned
 * footprints do not overlap are skipped (their IoU is 0). keep[i] = 1 for the kept boxes; returns their number. */
int64_t sr3d_nms_rotated_bev(const double *b, const int64_t *labels, int64_t k, double thr, int single,
                             uint8_t *keep) {
    double *ext = malloc((size_t)(k > 0 ? k : 1) * 4 * sizeof(double)); /* x_min, x_max, y_min, y_max */
    if (!ext) return -1;
    for (int64_t i = 0; i < k; ++i) {
        const double *p = b + 7 * i, c = fabs(cos(p[6])), s = fabs(sin(p[6]));
        const double hx = 0.5 * (c * p[3] + s * p[4]), hy = 0.5 * (s * p[3] + c * p[4]);
        const double pad = 1e-9 * (fabs(p[0]) + fabs(p[1]) + hx + hy); /* the footprint test only skips */
        ext[4 * i + 0] = p[0] - hx - pad;
        ext[4 * i + 1] = p[0] + hx + pad;
        ext[4 * i + 2] = p[1] - hy - pad;
        ext[4 * i + 3] = p[1] + hy + pad;
        keep[i] = 1;
    }
    const float thr_f = (float)thr;
    int64_t kept = 0;
    for (int64_t i = 0; i < k; ++i) {
        if (!keep[i]) continue;
        ++kept;
        const double *ei = ext + 4 * i;
        for (int64_t j = i + 1; j < k; ++j) {
            const double *ej = ext + 4 * j;
            if (!keep[j] || labels[j] != labels[i] || ej[0] >= ei[1] || ei[0] >= ej[1] || ej[2] >= ei[3] ||
                ei[2] >= ej[3])
                continue;
            double iou;
            sr3d_rotated_iou_bev(b + 7 * i, b + 7 * j, 1, &iou);
            if (single ? (float)iou > thr_f : iou > thr) keep[j] = 0;
        }
    }
    free(ext);
    return kept;
}

/* The gradient g of a distance dist = ex (vy - q0y) - ey (vx - q0x) of vertex v from the clipping line q0 -> q1
 * (e = q1 - q0), added to v's and the line's ends' gradients. */
static inline void back_distance(double g, double vx, double vy, double q0x, double q0y, double ex, double ey,
                                 double *gvx, double *gvy, double *g0x, double *g0y, double *g1x, double *g1y) {
    *gvx += g * (-ey);
    *gvy += g * ex;
    *g0x += g * (ey - (vy - q0y)); /* through q0 itself and through e = q1 - q0 */
    *g0y += g * (-ex + (vx - q0x));
    *g1x += g * (vy - q0y);
    *g1y += g * (-(vx - q0x));
}

/* The intersection area of convex polygon pairs (the rotated IoU's bird's-eye-view overlap) and its gradient, as
 * geometry.iou.convex_intersection_area computes it: Sutherland-Hodgman clipping of poly1 (K x n corners) by the
 * half-planes of poly2 (K x m), counter-clockwise, with the same snapping of near-zero distances (|d| <= 32 eps
 * scale (|edge| + eps scale), eps the caller's float type's) and the shoelace area, clamped at 0. Coordinates are
 * taken about each pair's mean corner (translation leaves the area unchanged), in double.
 * With grad (K) given, the clipping is run again and its steps are walked back: an output vertex is a kept input
 * vertex or s + t (p - s) with t = ds / (ds - d), ds and d the distances of the edge s -> p's ends from the
 * clipping line; g1 (K x n x 2) and g2 (K x m x 2) receive grad times the area's derivatives. */
int sr3d_convex_clip(const double *p1, int64_t n, const double *p2, int64_t m, int64_t k_pairs, double eps,
                     double *area, const double *grad, double *g1, double *g2) {
    if (n < 1 || m < 1 || n > CLIP_EDGES || m > CLIP_EDGES) return 1;
    for (int64_t p = 0; p < k_pairs; ++p) {
        const double *a = p1 + p * n * 2, *b = p2 + p * m * 2;
        double sx1 = 0, sy1 = 0, sx2 = 0, sy2 = 0, scale = 0;
        for (int64_t v = 0; v < n; ++v) {
            sx1 += a[2 * v];
            sy1 += a[2 * v + 1];
        }
        for (int64_t v = 0; v < m; ++v) {
            sx2 += b[2 * v];
            sy2 += b[2 * v + 1];
        }
        const double ox = 0.5 * (sx1 / (double)n + sx2 / (double)m), oy = 0.5 * (sy1 / (double)n + sy2 / (double)m);
        Poly stage[CLIP_EDGES + 1];
        Step steps[CLIP_EDGES][CLIP_MAX];
        double qx[CLIP_EDGES], qy[CLIP_EDGES];
        stage[0].n = (int)n;
        for (int64_t v = 0; v < n; ++v) {
            stage[0].x[v] = a[2 * v] - ox;
            stage[0].y[v] = a[2 * v + 1] - oy;
            scale = fmax(scale, fmax(fabs(stage[0].x[v]), fabs(stage[0].y[v])));
        }
        for (int64_t v = 0; v < m; ++v) {
            qx[v] = b[2 * v] - ox;
            qy[v] = b[2 * v + 1] - oy;
            scale = fmax(scale, fmax(fabs(qx[v]), fabs(qy[v])));
        }
        int e = 0;
        for (; e < m; ++e) {
            const int e1 = (int)((e + 1) % m);
            const double tol = 32.0 * eps * scale * (fabs(qx[e1] - qx[e]) + fabs(qy[e1] - qy[e]) + eps * scale);
            if (stage[e].n == 0) {
                stage[e + 1].n = 0;
                continue;
            }
            if (clip_stage(&stage[e], qx[e], qy[e], qx[e1], qy[e1], tol, &stage[e + 1], steps[e]) < 0)
                return 2; /* more vertices than a slot holds (not convex enough): the caller's PyTorch path */
        }
        const Poly *fin = &stage[m];
        const double ar = shoelace(fin->x, fin->y, fin->n);
        area[p] = ar > 0 ? ar : 0;
        if (!grad) continue;
        double *ga = g1 + p * n * 2, *gb = g2 + p * m * 2;
        for (int64_t v = 0; v < 2 * n; ++v) ga[v] = 0;
        for (int64_t v = 0; v < 2 * m; ++v) gb[v] = 0;
        if (!(ar > 0) || grad[p] == 0) continue; /* the clamp: no gradient where the area is 0 */
        /* d area / d vertex of the final polygon (shoelace), times grad */
        double gx[CLIP_MAX], gy[CLIP_MAX];
        for (int v = 0; v < fin->n; ++v) {
            const int prev = (v + fin->n - 1) % fin->n, next = (v + 1) % fin->n;
            gx[v] = 0.5 * grad[p] * (fin->y[next] - fin->y[prev]);
            gy[v] = 0.5 * grad[p] * (fin->x[prev] - fin->x[next]);
        }
        double gqx[CLIP_EDGES] = {0}, gqy[CLIP_EDGES] = {0};
        for (e = (int)m - 1; e >= 0; --e) { /* stage e maps stage[e] to stage[e + 1] with clipping edge e */
            const Poly *in = &stage[e], *out = &stage[e + 1];
            const int e1 = (int)((e + 1) % m);
            const double q0x = qx[e], q0y = qy[e], ex = qx[e1] - q0x, ey = qy[e1] - q0y;
            double hx[CLIP_MAX] = {0}, hy[CLIP_MAX] = {0};
            for (int j = 0; j < out->n; ++j) {
                const Step *st = &steps[e][j];
                if (st->kind == 0) {
                    hx[st->a] += gx[j];
                    hy[st->a] += gy[j];
                    continue;
                }
                const int si = st->a, pi = st->b;
                const double sx = in->x[si], sy = in->y[si], px = in->x[pi], py = in->y[pi], t = st->t;
                /* X = s + t (p - s) */
                hx[si] += (1 - t) * gx[j];
                hy[si] += (1 - t) * gy[j];
                hx[pi] += t * gx[j];
                hy[pi] += t * gy[j];
                const double gt = gx[j] * (px - sx) + gy[j] * (py - sy); /* dL/dt */
                const double den = st->ds - st->d;
                const double gds = gt * (-st->d) / (den * den), gd = gt * st->ds / (den * den);
                /* Snapped distances are constants. */
                if (st->ds != 0) back_distance(gds, sx, sy, q0x, q0y, ex, ey, &hx[si], &hy[si], &gqx[e], &gqy[e],
                                               &gqx[e1], &gqy[e1]);
                if (st->d != 0) back_distance(gd, px, py, q0x, q0y, ex, ey, &hx[pi], &hy[pi], &gqx[e], &gqy[e],
                                              &gqx[e1], &gqy[e1]);
            }
            for (int v = 0; v < in->n; ++v) {
                gx[v] = hx[v];
                gy[v] = hy[v];
            }
        }
        for (int64_t v = 0; v < n; ++v) {
            ga[2 * v] = gx[v];
            ga[2 * v + 1] = gy[v];
        }
        for (int64_t v = 0; v < m; ++v) {
            gb[2 * v] = gqx[v];
            gb[2 * v + 1] = gqy[v];
        }
    }
    return 0;
}

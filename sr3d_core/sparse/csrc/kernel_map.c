/* Kernel maps and voxelization of the sparse engine (sr3d_core.sparse.native): the pair lists of a convolution
 * straight from the sorted keys, the tables derived from them, and voxelization's sort-unique.
 *
 * Coordinate sets are stored sorted by packed int64 key, and adding a kernel offset's key delta to every output
 * key keeps the queries sorted. So the input rows of every output's neighbours are found by walking the input
 * keys once per (x, y) column of the kernel, in O(N_in + N_out), with no temporaries: the work the pure-PyTorch
 * path spreads over a dozen full-size tensor passes (or binary searches) happens in one loop that stays in cache.
 * The search runs on several threads (columns x ranges of output rows); what each thread writes is fixed by the
 * partition, and the pack concatenates the ranges in order, so the pair list is the same at any thread count. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "isa.h"

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
 * search per column and output finds all of them (ks^2 searches per output instead of ks^3).
 *
 * The outputs are split into `ranges` equal ranges (range r: [r n_out / ranges, (r + 1) n_out / ranges)), and
 * every (column, range) is one task of the thread team: it writes offset k's pairs of its range to the slots
 * [k n_out + lo_r, ...) of seg_in / seg_out (kvol * n_out slots each, scratch the caller reuses) and their number
 * to count[k * ranges + r]. A range holds at most one pair per output and offset, so the slots never overlap.
 * Returns the number of pairs; the pack copies the segments, range by range, into exact-size arrays.
 * symmetric: src is dst and delta[kvol - 1 - k] == -delta[k] (an odd kernel on its own set), so offset
 * kvol - 1 - k's pairs are offset k's with in and out swapped, in the same order (a pair's input row ascends with
 * its output row): only the columns up to the centre one are searched, and the pack mirrors the others. */
static inline int64_t range_lo(int64_t r, int64_t ranges, int64_t n) { return r * n / ranges; }

SR3D_API int64_t sr3d_kernel_pairs_search(const int64_t *src, int64_t n_in, const int64_t *dst, int64_t n_out,
                                          const int64_t *delta, int64_t ks, int symmetric, int64_t ranges,
                                          int nthreads, int64_t *count, int64_t *seg_in, int64_t *seg_out) {
    const int64_t plane = ks * ks, kvol = plane * ks;
    const int64_t zstep = ks > 1 ? delta[plane] - delta[0] : 1;
    const int64_t searched = symmetric ? plane / 2 + 1 : plane;
    memset(count, 0, (size_t)(kvol * ranges) * sizeof(int64_t));
    const int64_t tasks = searched * ranges;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) if (nthreads > 1 && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
        const int64_t c = t / ranges, r = t % ranges;
        const int64_t o_lo = range_lo(r, ranges, n_out), o_hi = range_lo(r + 1, ranges, n_out);
        int64_t local[64]; /* this task's count per z step of its column (ks <= 64) */
        for (int64_t iz = 0; iz < ks; ++iz) local[iz] = 0;
        int64_t p = 0;
        for (int64_t o = o_lo; o < o_hi; ++o) {
            const int64_t q = dst[o] + delta[c];
            p = seek(src, n_in, p, q);
            int64_t j = p;
            for (int64_t iz = 0; iz < ks; ++iz) { /* no division: the column's targets in order */
                const int64_t target = q + iz * zstep;
                while (j < n_in && src[j] < target) ++j;
                if (j == n_in) break;
                if (src[j] == target) {
                    const int64_t k = c + iz * plane, slot = k * n_out + o_lo + local[iz]++;
                    seg_in[slot] = j;
                    seg_out[slot] = o;
                }
            }
        }
        for (int64_t iz = 0; iz < ks; ++iz) count[(c + iz * plane) * ranges + r] = local[iz];
    }
    int64_t total = 0;
    for (int64_t k = 0; k < kvol; ++k) {
        const int64_t from = symmetric && k % plane >= searched ? kvol - 1 - k : k;
        for (int64_t r = 0; r < ranges; ++r) {
            count[k * ranges + r] = count[from * ranges + r];
            total += count[k * ranges + r];
        }
    }
    return total;
}

/* sr3d_kernel_pairs_search for a stride-2 convolution with a 3 x 3 x 3 kernel onto the parents of its input, from
 * the parent map instead of a search per kernel column and output. src (stride s = 2^log_s) and dst (its parents,
 * stride 2s) are ascending packed keys (axis_bits per coordinate field), parent[i] the row of input i's parent. An
 * input i at parent p sits at p + s * pos (pos in {0, 1}^3) and feeds exactly the outputs p + 2s * e for e within
 * pos (d = s * pos - 2s * e): p itself (its parent row) and up to seven neighbours of p, looked up once per parent
 * (three column searches, the z neighbour is the next key). Parents are walked in order and each offset's (pos, e)
 * is fixed, so each offset's outputs come out ascending, as the search gives them, and one parent gives an offset
 * at most one pair. The parents are split into `ranges` ranges (range r: [r n_out / ranges, (r + 1) n_out /
 * ranges), one task each, on the thread team when the input is large enough, else range 0 takes them all): a range
 * writes offset k's pairs to the slots [k n_out + its first parent, ...) of seg_in / seg_out (at most one per
 * parent, so the ranges' slots never overlap) and their number to count[k * ranges + r], the layout
 * sr3d_kernel_pairs_pack (symmetric = 0) concatenates, range by range, into the same pair list at any number of
 * ranges or threads. Returns the number of pairs, -1 when out of memory (or asked for no range, which the
 * bindings never do), -2 when a parent row lies outside [0, n_out), or -3 when one offset would get more pairs
 * from a range than it has parents (keys that are not distinct children of their parents: nothing is written past
 * the range's slots). */
static inline int child_pos(int64_t key, int log_s, int axis_bits) { /* bit 0: x on its parent's odd half, 1: y, 2: z */
    return (int)((key >> (2 * axis_bits + log_s)) & 1) | (int)(((key >> (axis_bits + log_s)) & 1) << 1) |
           (int)(((key >> log_s) & 1) << 2);
}

/* The start of thread t's chunk of n items split into nt (the chunks ascend and cover [0, n)). */
static inline int64_t chunk_lo(int t, int nt, int64_t n) { return (int64_t)t * n / nt; }

/* Input rows from which the stride-2 map runs its ranges on the thread team. */
#define MIN_DOWN_ROWS 2e4

SR3D_API int64_t sr3d_kernel_pairs_down3(const int64_t *src, int64_t n_in, const int64_t *dst, int64_t n_out,
                                         const int64_t *parent, int log_s, int axis_bits, int64_t ranges,
                                         int nthreads, int64_t *count, int64_t *seg_in, int64_t *seg_out) {
    if (ranges < 1) return -1;
    const int nt = sr3d_team(nthreads, (double)n_in, MIN_DOWN_ROWS);
    int64_t total = -1; /* out of memory, until the pairs are written */
    int64_t *first = calloc((size_t)n_out + 1, sizeof(int64_t)); /* children of row r: child[first[r] ..] */
    int64_t *child = malloc((size_t)(n_in > 0 ? n_in : 1) * sizeof(int64_t));
    int64_t *nbr = malloc((size_t)(n_out > 0 ? n_out : 1) * 8 * sizeof(int64_t)); /* row of p + 2s e, or -1 */
    uint8_t *need = calloc((size_t)(n_out > 0 ? n_out : 1), 1); /* the union of a parent's children's pos */
    if (!first || !child || !nbr || !need) goto done;
    for (int64_t i = 0; i < n_in; ++i) {
        if ((uint64_t)parent[i] >= (uint64_t)n_out) {
            total = -2;
            goto done;
        }
        ++first[parent[i] + 1];
        need[parent[i]] |= (uint8_t)child_pos(src[i], log_s, axis_bits);
    }
    for (int64_t r = 0; r < n_out; ++r) first[r + 1] += first[r];
    for (int64_t i = 0; i < n_in; ++i) child[first[parent[i]]++] = i; /* first[r] now ends row r's children */
    for (int64_t r = n_out; r > 0; --r) first[r] = first[r - 1];
    first[0] = 0;
    const int64_t step = (int64_t)2 << log_s, R = (int64_t)1 << axis_bits;
    /* On one thread range 0 takes every parent (its slots start where the first range's do), the others none. */
    const int64_t used = nt > 1 ? ranges : 1;
    memset(count, 0, (size_t)(27 * ranges) * sizeof(int64_t));
    int overfull = 0;
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : overfull) if (nt > 1 && used > 1)
    for (int64_t rg = 0; rg < used; ++rg) {
        const int64_t r0 = range_lo(rg, used, n_out), r1 = range_lo(rg + 1, used, n_out);
        for (int c = 0; c < 4; ++c) { /* kernel columns (ex, ey) of the parent grid */
            const int64_t dcol = step * ((c & 1) * R * R + (c >> 1) * R);
            int64_t p = r0; /* a neighbour's key is >= its parent's: the search never looks before the range */
            for (int64_t r = r0; r < r1; ++r) {
                if ((need[r] & c) != c) continue; /* no child reaches this column: never read */
                const int64_t q = dst[r] + dcol;
                p = c ? seek(dst, n_out, p, q) : r;
                const int hit = p < n_out && dst[p] == q;
                const int64_t j = hit ? p + 1 : p; /* the z neighbour, if any, is the next key */
                nbr[8 * r + c] = hit ? p : -1;
                nbr[8 * r + c + 4] = j < n_out && dst[j] == q + step ? j : -1;
            }
        }
        int64_t mine[27] = {0};
        for (int64_t r = r0; r < r1; ++r) {
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
                        if (mine[k] == r1 - r0) { /* valid keys give an offset one pair per parent at most */
                            overfull = 1;
                            break;
                        }
                        const int64_t slot = k * n_out + r0 + mine[k]++;
                        seg_in[slot] = i;
                        seg_out[slot] = o;
                    }
                    if (e == 0) break;
                }
            }
        }
        for (int k = 0; k < 27; ++k) count[k * ranges + rg] = mine[k];
    }
    if (overfull) {
        total = -3;
        goto done;
    }
    total = 0;
    for (int64_t m = 0; m < 27 * ranges; ++m) total += count[m];
done:
    free(first);
    free(child);
    free(nbr);
    free(need);
    return total;
}

/* The exact-size pair list of a search (see sr3d_kernel_pairs_search): offset by offset, range by range; offsets in
 * parallel (each writes its own run of the output). */
SR3D_API void sr3d_kernel_pairs_pack(const int64_t *count, int64_t ks, int symmetric, int64_t n_out, int64_t ranges,
                                     int nthreads, const int64_t *seg_in, const int64_t *seg_out, int64_t *starts,
                                     int64_t *rows_in, int64_t *rows_out) {
    const int64_t plane = ks * ks, kvol = plane * ks, searched = symmetric ? plane / 2 + 1 : plane;
    int64_t m = 0;
    for (int64_t k = 0; k < kvol; ++k) {
        starts[k] = m;
        for (int64_t r = 0; r < ranges; ++r) m += count[k * ranges + r];
    }
    starts[kvol] = m;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) if (nthreads > 1 && kvol > 1)
    for (int64_t k = 0; k < kvol; ++k) {
        const int mirror = symmetric && k % plane >= searched;
        const int64_t from = mirror ? kvol - 1 - k : k;
        int64_t at = starts[k];
        for (int64_t r = 0; r < ranges; ++r) {
            const int64_t slot = from * n_out + range_lo(r, ranges, n_out), n = count[k * ranges + r];
            memcpy(rows_in + at, (mirror ? seg_out : seg_in) + slot, (size_t)n * sizeof(int64_t));
            memcpy(rows_out + at, (mirror ? seg_in : seg_out) + slot, (size_t)n * sizeof(int64_t));
            at += n;
        }
    }
}

/* The table of a pair list (the inverse of sr3d_pair_starts / sr3d_pair_fill): cols[k * n_out + o] = i for every
 * pair (i, o) of offset k, n_in elsewhere. Offsets in parallel (each owns its row of the table). Returns SR3D_OK,
 * SR3D_ERR_STARTS for starts that do not ascend from 0 to n_pairs (the length of rows_in and rows_out), or
 * SR3D_ERR_INDEX for a row outside its set. */
SR3D_API int sr3d_pairs_to_table(const int64_t *starts, const int64_t *rows_in, const int64_t *rows_out,
                                 int64_t n_pairs, int64_t kvol, int64_t n_in, int64_t n_out, int nthreads,
                                 int64_t *cols) {
    if (!sr3d_starts_valid(starts, kvol, n_pairs)) return SR3D_ERR_STARTS;
    int bad = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) reduction(| : bad) if (nthreads > 1 && kvol > 1)
    for (int64_t k = 0; k < kvol; ++k) {
        int64_t *row = cols + k * n_out;
        for (int64_t o = 0; o < n_out; ++o) row[o] = n_in;
        for (int64_t p = starts[k]; p < starts[k + 1]; ++p) {
            if ((uint64_t)rows_out[p] >= (uint64_t)n_out || (uint64_t)rows_in[p] >= (uint64_t)n_in) {
                bad = 1;
                continue;
            }
            row[rows_out[p]] = rows_in[p];
        }
    }
    return bad ? SR3D_ERR_INDEX : SR3D_OK;
}

/* The transposed table: t[k * n_in + cols[k * n_out + o]] = o for every existing pair, n_out elsewhere. Offsets
 * in parallel. */
SR3D_API void sr3d_transpose_map(const int64_t *cols, int64_t n_in, int64_t n_out, int64_t kvol, int nthreads,
                                 int64_t *t) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) if (nthreads > 1 && kvol > 1)
    for (int64_t k = 0; k < kvol; ++k) {
        const int64_t *row = cols + k * n_out;
        int64_t *trow = t + k * n_in;
        for (int64_t i = 0; i < n_in; ++i) trow[i] = n_out;
        for (int64_t o = 0; o < n_out; ++o) {
            if ((uint64_t)row[o] < (uint64_t)n_in) trow[row[o]] = o; /* negative: no pair either */
        }
    }
}

/* The existing pairs of a neighbour table, offset by offset (the convolution kernels' input): starts[k] is the
 * first pair of offset k, starts[kvol] the total, which is returned. */
SR3D_API int64_t sr3d_pair_starts(const int64_t *cols, int64_t kvol, int64_t n_out, int64_t n_in, int64_t *starts) {
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
SR3D_API void sr3d_pair_fill(const int64_t *cols, int64_t kvol, int64_t n_out, int64_t n_in, int64_t *rows_in,
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
 * highest priority in voxel v; returns m, or -1 when out of memory. order, tmp and dense are n-element scratch
 * buffers.
 * Threads: every phase gives each thread one contiguous chunk of the points. The radix sort counts each chunk's
 * digits apart and places chunk t's points of a digit after those of the chunks before it, so it stays stable and
 * gives the one-thread permutation; the last pass moves each chunk's start to the next voxel's first point, so no
 * voxel is split. The result does not depend on the thread count. */
static inline int64_t key_field(int64_t key, int f, int axis_bits) {
    /* Field 0: the bits above the three coordinate fields, signed (so any int64 keeps its order); 1-3: x, y, z. */
    if (f == 0) return key >> (3 * axis_bits); /* arithmetic shift */
    return (int64_t)(((uint64_t)key >> ((3 - f) * axis_bits)) & (((uint64_t)1 << axis_bits) - 1));
}

/* Points from which the sort-unique splits over the threads. */
#define MIN_UNIQUE_POINTS 8e3

enum { UNIQUE_DIGIT_BITS = 12, UNIQUE_BINS = 1 << UNIQUE_DIGIT_BITS };

/* The first index >= at that starts a run of equal dense keys in sorted order (n when none). */
static inline int64_t run_start(const int64_t *sorted, const int64_t *dense, int64_t n, int64_t at) {
    while (at > 0 && at < n && dense[sorted[at]] == dense[sorted[at - 1]]) ++at;
    return at;
}

SR3D_API SR3D_CLONES int64_t sr3d_unique_pick(const int64_t *keys, const int64_t *prio, int64_t n, int axis_bits,
                                              int nthreads, int64_t *order, int64_t *tmp, int64_t *dense,
                                              int64_t *ukeys, int64_t *inverse, int64_t *pick) {
    if (n <= 0) return 0;
    const int nt = sr3d_team(nthreads, (double)n, MIN_UNIQUE_POINTS);
    int64_t total = -1; /* out of memory, until the voxels are counted */
    int team = 1; /* the threads the region got (the runtime may give fewer than asked) */
    /* Per thread: its chunk's field minima, maxima and spreads, the OR of its dense keys, its digit counts and
     * its number of voxels (runs[t + 1]). */
    int64_t *lo_t = malloc((size_t)nt * 4 * sizeof(int64_t)), *hi_t = malloc((size_t)nt * 4 * sizeof(int64_t));
    uint64_t *spread_t = malloc((size_t)nt * 4 * sizeof(uint64_t)), *top_t = malloc((size_t)nt * sizeof(uint64_t));
    int64_t *hist = malloc((size_t)nt * UNIQUE_BINS * sizeof(int64_t));
    int64_t *runs = calloc((size_t)nt + 1, sizeof(int64_t));
    if (!lo_t || !hi_t || !spread_t || !top_t || !hist || !runs) goto done;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int t = sr3d_thread_num(), nt = sr3d_team_size();
        if (t == 0) team = nt;
        const int64_t a = chunk_lo(t, nt, n), b = chunk_lo(t + 1, nt, n);
        /* The sort runs on dense keys of the same order: each field minus its minimum, shifted past the low bits
         * that are zero in all of them (a stride), in mixed radix (at most 64 bits: the field widths never sum to
         * more). A frame's keys then span ~24 bits instead of reaching the top field: two passes of 12-bit digits
         * where the packed keys needed three or four. */
        int64_t lo[4], hi[4];
        uint64_t spread[4] = {0, 0, 0, 0};
        for (int f = 0; f < 4; ++f) {
            lo[f] = INT64_MAX;
            hi[f] = INT64_MIN;
        }
        for (int64_t i = a; i < b; ++i) {
            for (int f = 0; f < 4; ++f) {
                const int64_t v = key_field(keys[i], f, axis_bits);
                lo[f] = v < lo[f] ? v : lo[f];
                hi[f] = v > hi[f] ? v : hi[f];
            }
        }
        for (int f = 0; f < 4; ++f) {
            lo_t[4 * t + f] = lo[f];
            hi_t[4 * t + f] = hi[f];
        }
#pragma omp barrier
        for (int u = 0; u < nt; ++u) {
            for (int f = 0; f < 4; ++f) {
                lo[f] = lo_t[4 * u + f] < lo[f] ? lo_t[4 * u + f] : lo[f];
                hi[f] = hi_t[4 * u + f] > hi[f] ? hi_t[4 * u + f] : hi[f];
            }
        }
        for (int64_t i = a; i < b; ++i) /* the low bits every field's offset from its minimum leaves zero */
            for (int f = 0; f < 4; ++f) spread[f] |= (uint64_t)(key_field(keys[i], f, axis_bits) - lo[f]);
        for (int f = 0; f < 4; ++f) spread_t[4 * t + f] = spread[f];
#pragma omp barrier
        int shift[4];
        uint64_t width[4];
        for (int f = 0; f < 4; ++f) {
            for (int u = 0; u < nt; ++u) spread[f] |= spread_t[4 * u + f];
            shift[f] = spread[f] ? __builtin_ctzll(spread[f]) : 0;
            width[f] = ((uint64_t)(hi[f] - lo[f]) >> shift[f]) + 1;
        }
        uint64_t top = 0;
        for (int64_t i = a; i < b; ++i) {
            uint64_t d = 0;
            for (int f = 0; f < 4; ++f)
                d = d * width[f] + ((uint64_t)(key_field(keys[i], f, axis_bits) - lo[f]) >> shift[f]);
            dense[i] = (int64_t)d;
            order[i] = i;
            top |= d;
        }
        top_t[t] = top;
#pragma omp barrier
        for (int u = 0; u < nt; ++u) top |= top_t[u];
        const int used = top ? 64 - __builtin_clzll(top) : 0;
        /* LSD radix sort of the indices by dense key, in as few passes of at most 12 bits as cover the used bits. */
        const int passes = (used + UNIQUE_DIGIT_BITS - 1) / UNIQUE_DIGIT_BITS;
        const int digit = passes ? (used + passes - 1) / passes : 0;
        const int64_t bins = (int64_t)1 << digit;
        const uint64_t dmask = (uint64_t)bins - 1;
        int64_t *count = hist + (int64_t)t * UNIQUE_BINS;
        int64_t *src = order, *dst = tmp;
        for (int pass = 0; pass < passes; ++pass) {
            const int sh = pass * digit;
            for (int64_t d = 0; d < bins; ++d) count[d] = 0;
            /* A chunk's digits are those of its points in the current order. At the first pass that order is
             * the identity, and a lone thread's chunk is every point, whose digit counts do not depend on their
             * order: then the counts read dense in memory order instead of gathering through src. */
            if (pass == 0 || nt == 1) {
                for (int64_t i = a; i < b; ++i) ++count[((uint64_t)dense[i] >> sh) & dmask];
            } else {
                for (int64_t i = a; i < b; ++i) ++count[((uint64_t)dense[src[i]] >> sh) & dmask];
            }
#pragma omp barrier
            /* Chunk t's points of digit d go after every point of a smaller digit and after the chunks before t's
             * points of digit d. Every thread reads all counts here; none writes them before the next barrier. */
            int64_t place[UNIQUE_BINS];
            int64_t base = 0;
            for (int64_t d = 0; d < bins; ++d) {
                int64_t before = 0, all = 0;
                for (int u = 0; u < nt; ++u) {
                    const int64_t c = hist[(int64_t)u * UNIQUE_BINS + d];
                    before += u < t ? c : 0;
                    all += c;
                }
                place[d] = base + before;
                base += all;
            }
            for (int64_t i = a; i < b; ++i) {
                const int64_t j = src[i];
                dst[place[((uint64_t)dense[j] >> sh) & dmask]++] = j;
            }
            int64_t *swap = src;
            src = dst;
            dst = swap;
#pragma omp barrier
        }
        /* The voxels: runs of equal dense keys in sorted order; this thread's chunk starts at a run's start, so its
         * first point opens a voxel. A lone thread needs no count before it numbers them. */
        const int64_t first = run_start(src, dense, n, a), last = run_start(src, dense, n, b);
        int64_t prev = 0;
        if (nt > 1) {
            int64_t mine = 0;
            for (int64_t i = first; i < last; ++i) {
                const int64_t d = dense[src[i]];
                mine += i == first || d != prev;
                prev = d;
            }
            runs[t + 1] = mine;
        }
#pragma omp barrier
        int64_t m = -1;
        for (int u = 0; u <= t; ++u) m += runs[u];
        for (int64_t i = first; i < last; ++i) {
            const int64_t j = src[i], d = dense[j];
            if (i == first || d != prev) {
                ++m;
                ukeys[m] = keys[j];
                pick[m] = j;
            } else if (prio[j] > prio[pick[m]]) {
                pick[m] = j;
            }
            inverse[j] = m;
            prev = d;
        }
        if (nt == 1) runs[1] = m + 1;
    }
    total = 0;
    for (int u = 1; u <= team; ++u) total += runs[u];
done:
    free(lo_t);
    free(hi_t);
    free(spread_t);
    free(top_t);
    free(hist);
    free(runs);
    return total;
}

/* Packed voxel keys of float32 points: key = ((b * R + x + OFF) * R + y + OFF) * R + z + OFF, R = 2^axis_bits,
 * OFF = 2^(axis_bits - 1), with x = floor of px over the voxel size computed as the PyTorch path does for `mode`
 * (SR3D_QUANTIZE_*): in double; as a float32 quotient; or as a float32 product with the float32 reciprocal.
 * Point i's x, y, z are xyz[row_stride * i + 0, 1, 2] (a cloud's xyz columns read in place). Points split over
 * the thread team (each key depends on its point alone, so any split gives the same keys).
 * Returns 0, or 1 when a point is not finite or a coordinate lies outside [-limit, limit] (the caller then runs the
 * checked PyTorch path, which names the problem). */
enum { SR3D_QUANTIZE_FLOAT64 = 0, SR3D_QUANTIZE_FLOAT32 = 1, SR3D_QUANTIZE_FLOAT32_RECIPROCAL = 2 };

/* Points from which the quantization splits over the threads. */
#define MIN_KEY_POINTS 2e4

SR3D_API SR3D_CLONES int sr3d_voxel_keys(const float *xyz, int64_t n, int64_t row_stride, double voxel, int mode,
                                         int64_t batch, int axis_bits, int64_t limit, int nthreads, int64_t *keys) {
    const int64_t radix = (int64_t)1 << axis_bits, off = (int64_t)1 << (axis_bits - 1);
    const double lim = (double)limit;
    /* Both rounded to float32 as PyTorch rounds a Python number for a float32 tensor; no -ffast-math, so the
     * compiler keeps a float32 division a division. */
    const float voxel32 = (float)voxel, inverse32 = 1.0f / voxel32;
    const int nt = sr3d_team(nthreads, (double)n, MIN_KEY_POINTS);
    int bad = 0;
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : bad) if (nt > 1)
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
            if (!(q >= -lim && q <= lim)) { /* also catches NaN */
                bad = 1;
                q = 0;
            }
            key = key * radix + (int64_t)q + off;
        }
        keys[i] = key;
    }
    return bad;
}

SR3D_DEFINE_HANDSHAKE

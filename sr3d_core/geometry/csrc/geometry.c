/* The exported box geometry: the instruction-set choice, the thread split (pairs are independent: each one's result
 * is written by one thread, in the bits of a one-thread run) and the size checks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine.h"

typedef void (*IouFn)(const double *, const double *, int64_t, double *);
typedef int64_t (*NmsFn)(const double *, const int64_t *, int64_t, double, int, double *, uint8_t *);
typedef int (*ClipFn)(const double *, int64_t, const double *, int64_t, int64_t, double, double *, const double *,
                      double *, double *);

#define SR3D_DECLARE(isa)                                                                                     \
    void sr3d_geom_rotated_iou_bev_##isa(const double *, const double *, int64_t, double *);                  \
    int64_t sr3d_geom_nms_group_##isa(const double *, const int64_t *, int64_t, double, int, double *,          \
                                      uint8_t *);                                                         \
    int sr3d_geom_convex_clip_##isa(const double *, int64_t, const double *, int64_t, int64_t, double, double *, \
                                    const double *, double *, double *);
SR3D_DECLARE(base)
#ifdef SR3D_X86_VARIANTS
#define SR3D_HAVE_AVX2_VARIANT 1
SR3D_DECLARE(avx2)
#endif

static IouFn iou_fn = NULL;
static NmsFn nms_fn = NULL;
static ClipFn clip_fn = NULL;
static int isa_chosen = -1;

/* As the sparse engine's sr3d_select_isa: want < 0 the best, 0 the baseline, 1 AVX2 + FMA; returns the one in use
 * or -1 when the one asked for is not available here. */
SR3D_API int sr3d_select_isa(int want) {
    const int best = sr3d_cpu_has_avx2_fma() ? 1 : 0;
    const int isa = want < 0 ? best : want;
    if (isa > best) return -1;
#ifdef SR3D_HAVE_AVX2_VARIANT
    if (isa == 1) {
        iou_fn = sr3d_geom_rotated_iou_bev_avx2;
        nms_fn = sr3d_geom_nms_group_avx2;
        clip_fn = sr3d_geom_convex_clip_avx2;
        return isa_chosen = 1;
    }
#endif
    iou_fn = sr3d_geom_rotated_iou_bev_base;
    nms_fn = sr3d_geom_nms_group_base;
    clip_fn = sr3d_geom_convex_clip_base;
    return isa_chosen = 0;
}

SR3D_API int sr3d_isa(void) {
    if (isa_chosen < 0) sr3d_select_isa(-1);
    return isa_chosen;
}

enum { CHUNK = 256 }; /* pairs per task */

/* Bird's-eye-view IoU of the aligned box pairs (b1[p], b2[p]), boxes (x, y, z, dx, dy, dz, yaw) as 7 doubles. */
SR3D_API int sr3d_rotated_iou_bev(const double *b1, const double *b2, int64_t n, int nthreads, double *iou) {
    if (n < 0) return SR3D_ERR_SIZE;
    if (iou_fn == NULL) sr3d_select_isa(-1);
    const int64_t tasks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) if (nthreads > 1 && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
        const int64_t p = t * CHUNK, m = n - p < CHUNK ? n - p : CHUNK;
        iou_fn(b1 + 7 * p, b2 + 7 * p, m, iou + p);
    }
    return SR3D_OK;
}

static int by_label_then_index(const void *pa, const void *pb) {
    const int64_t *a = pa, *b = pb;
    return a[0] != b[0] ? (a[0] < b[0] ? -1 : 1) : (a[1] > b[1]) - (a[1] < b[1]);
}

/* The boxes' indices grouped by label, ascending within each group (score order kept): order (k), and the groups'
 * bounds first[0 .. groups] (k + 1 slots). A counting sort for labels within a small range, else a sort of (label,
 * index) pairs. Returns the number of groups, or -1 when out of memory. */
static int64_t group_by_label(const int64_t *labels, int64_t k, int64_t *order, int64_t *first) {
    int64_t lo = labels[0], hi = labels[0];
    for (int64_t i = 1; i < k; ++i) {
        lo = labels[i] < lo ? labels[i] : lo;
        hi = labels[i] > hi ? labels[i] : hi;
    }
    int64_t groups = 0;
    if ((uint64_t)hi - (uint64_t)lo < 65536) {
        const int64_t span = hi - lo + 1;
        int64_t *count = calloc((size_t)span + 1, sizeof(int64_t));
        if (!count) return -1;
        for (int64_t i = 0; i < k; ++i) ++count[labels[i] - lo + 1];
        for (int64_t v = 0; v < span; ++v) {
            if (count[v + 1]) first[groups++] = count[v];
            count[v + 1] += count[v];
        }
        for (int64_t i = 0; i < k; ++i) order[count[labels[i] - lo]++] = i;
        free(count);
    } else {
        int64_t *pairs = malloc((size_t)k * 2 * sizeof(int64_t));
        if (!pairs) return -1;
        for (int64_t i = 0; i < k; ++i) {
            pairs[2 * i] = labels[i];
            pairs[2 * i + 1] = i;
        }
        qsort(pairs, (size_t)k, 2 * sizeof(int64_t), by_label_then_index);
        for (int64_t i = 0; i < k; ++i) {
            order[i] = pairs[2 * i + 1];
            if (i == 0 || pairs[2 * i] != pairs[2 * i - 2]) first[groups++] = i;
        }
        free(pairs);
    }
    first[groups] = k;
    return groups;
}

/* Greedy per-class NMS of boxes in descending score order: keep[i] = 1 for the kept boxes; returns their number,
 * or -1 when out of memory. Labels never interact, so each label's boxes are one task of the threads (largest
 * first); within a label every decision depends on the earlier ones and runs in order, so the result is the one
 * of a single pass at any thread count, and each box is compared with its own label's boxes only. */
SR3D_API int64_t sr3d_nms_rotated_bev(const double *b, const int64_t *labels, int64_t k, double thr, int single,
                                      int nthreads, uint8_t *keep) {
    if (k < 0) return -1;
    if (k == 0) return 0;
    if (nms_fn == NULL) sr3d_select_isa(-1);
    int64_t *order = malloc((size_t)(3 * k + 2) * sizeof(int64_t));
    double *ext = malloc((size_t)k * 4 * sizeof(double));
    const int64_t groups = order && ext ? group_by_label(labels, k, order, order + k) : -1;
    if (groups < 0) {
        free(order);
        free(ext);
        return -1;
    }
    const int64_t *first = order + k;
    int64_t *task = order + 2 * k + 1; /* groups by size, largest first (insertion sort: labels are few) */
    for (int64_t g = 0; g < groups; ++g) {
        int64_t at = g;
        for (; at > 0 && first[task[at - 1] + 1] - first[task[at - 1]] < first[g + 1] - first[g]; --at)
            task[at] = task[at - 1];
        task[at] = g;
    }
    nthreads = sr3d_team(nthreads, (double)k, 256); /* a box costs ~1 us against its label's others */
    int64_t kept = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) reduction(+ : kept) \
    if (nthreads > 1 && groups > 1)
    for (int64_t t = 0; t < groups; ++t) {
        const int64_t g = task[t];
        kept += nms_fn(b, order + first[g], first[g + 1] - first[g], thr, single, ext + 4 * first[g], keep);
    }
    free(order);
    free(ext);
    return kept;
}

/* Intersection areas of convex polygon pairs (and with grad, their gradient), pairs split over the threads.
 * Returns 0, 1 when a polygon has no corners or more than 8, 2 when a clipped polygon outgrows the kernel's vertex
 * slots (the caller's PyTorch path then). */
SR3D_API int sr3d_convex_clip(const double *p1, int64_t n, const double *p2, int64_t m, int64_t k_pairs, double eps,
                              int nthreads, double *area, const double *grad, double *g1, double *g2) {
    if (n < 1 || m < 1 || n > 8 || m > 8 || k_pairs < 0) return 1;
    if (clip_fn == NULL) sr3d_select_isa(-1);
    const int64_t tasks = (k_pairs + CHUNK - 1) / CHUNK;
    int rc = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) reduction(max : rc) if (nthreads > 1 && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
        const int64_t p = t * CHUNK, c = k_pairs - p < CHUNK ? k_pairs - p : CHUNK;
        const int r = clip_fn(p1 + p * n * 2, n, p2 + p * m * 2, m, c, eps, area + p, grad ? grad + p : NULL,
                              g1 ? g1 + p * n * 2 : NULL, g2 ? g2 + p * m * 2 : NULL);
        rc = r > rc ? r : rc;
    }
    return rc;
}

SR3D_DEFINE_HANDSHAKE

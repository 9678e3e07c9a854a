/* What every compiled library of SR3D shares: the export macro, the ABI handshake and the thread helpers.
 *
 * The libraries are plain C shared objects loaded with ctypes (no Python or torch headers), built at install time
 * by setup.py. Python refuses a library whose ABI version differs from the one its bindings were written for
 * (SR3D_ABI_VERSION), and warns that a build is stale when its source digest (SR3D_SOURCE_DIGEST, set by the build)
 * differs from the sources next to it. */
#ifndef SR3D_ENGINE_H
#define SR3D_ENGINE_H

#include <stdint.h>

#define SR3D_API __attribute__((visibility("default")))

/* x86 builds add AVX2 + FMA variants of the arithmetic, chosen at run time. With -DSR3D_PORTABLE (e.g. CC="cc
 * -DSR3D_PORTABLE") only the portable code is built, as on every other architecture (AArch64): the tests build it so
 * on x86 to keep that path compiling and correct. */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(SR3D_PORTABLE)
#define SR3D_X86_VARIANTS 1
#endif

/* Bump on any change of an exported function's arguments or meaning: the Python bindings check it. */
#define SR3D_ABI_VERSION 7

#ifndef SR3D_SOURCE_DIGEST
#define SR3D_SOURCE_DIGEST "unknown"
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

/* The ABI handshake every library exports (each library is loaded privately, so the names may repeat), and the
 * scale of its parallel-work thresholds (see sr3d_team). */
#define SR3D_DEFINE_HANDSHAKE                                                                                 \
    SR3D_API int sr3d_abi_version(void) { return SR3D_ABI_VERSION; }                                          \
    SR3D_API const char *sr3d_source_digest(void) { return SR3D_SOURCE_DIGEST; }                              \
    SR3D_API int sr3d_openmp(void) { return sr3d_openmp_version(); }                                          \
    double sr3d_parallel_scale = 1.0;                                                                         \
    SR3D_API double sr3d_set_parallel_scale(double scale) {                                                   \
        const double was = sr3d_parallel_scale;                                                               \
        sr3d_parallel_scale = scale >= 0 ? scale : 0;                                                         \
        return was;                                                                                           \
    }

/* Multiplies every threshold of sr3d_team: 1 by default, 0 in the tests (every region then splits, whatever its
 * size), other values to measure where the thresholds should lie. */
extern double sr3d_parallel_scale;

/* The threads a parallel region of `work` units gets: all of nthreads from min_work units up, else one. Starting a
 * region and meeting at its end costs some 10-40 us (more when the workers sleep, as OMP_WAIT_POLICY=PASSIVE or a
 * busy machine makes them), about the time of a small layer's whole convolution: below the threshold a split
 * costs more than it saves. The split never changes a result, only who computes it. */
static inline int sr3d_team(int nthreads, double work, double min_work) {
#ifdef _OPENMP
    return nthreads > 1 && work >= min_work * sr3d_parallel_scale ? nthreads : 1;
#else
    (void)nthreads, (void)work, (void)min_work;
    return 1; /* built without OpenMP: every region runs on the calling thread */
#endif
}

/* Inside a parallel region: this thread's number and the size of its team (the runtime may give fewer threads than
 * asked, so code that splits work by thread reads the team it got). */
static inline int sr3d_thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int sr3d_team_size(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* The OpenMP version the library was built with (0: built without OpenMP, every call runs on one thread). */
static inline int sr3d_openmp_version(void) {
#ifdef _OPENMP
    return _OPENMP;
#else
    return 0;
#endif
}

/* The first index p in [lo, hi) with a[p] >= v (hi when none); a ascending on [lo, hi). */
static inline int64_t sr3d_lower_bound(const int64_t *a, int64_t lo, int64_t hi, int64_t v) {
    while (lo < hi) {
        const int64_t mid = lo + ((hi - lo) >> 1);
        if (a[mid] < v) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* Whether a pair list's starts (kvol + 1 of them) run from 0 to n_pairs without going down: the one check of a
 * pair list's layout, before any of its rows is read. */
static inline int sr3d_starts_valid(const int64_t *starts, int64_t kvol, int64_t n_pairs) {
    if (starts[0] != 0 || starts[kvol] != n_pairs) return 0;
    for (int64_t k = 0; k < kvol; ++k)
        if (starts[k + 1] < starts[k]) return 0;
    return 1;
}

/* Whether the CPU runs AVX2 + FMA and the library has the variants for it: each library's ISA choice. */
static inline int sr3d_cpu_has_avx2_fma(void) {
#if defined(SR3D_X86_VARIANTS) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* Error codes of the exported functions (the bindings turn them into Python exceptions). */
enum {
    SR3D_OK = 0,
    SR3D_ERR_CHANNELS = 1,   /* output channels not a multiple of 8 */
    SR3D_ERR_NOMEM = 2,      /* out of memory */
    SR3D_ERR_STARTS = 3,     /* a pair list's starts are not 0 .. n_pairs ascending */
    SR3D_ERR_INDEX = 4,      /* a row index outside its set */
    SR3D_ERR_SIZE = 5        /* a negative or inconsistent size */
};

#endif

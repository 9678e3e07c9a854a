/* The arguments of the convolution's tasks, shared by conv.c and the per-instruction-set kernels. */
#ifndef SR3D_CONV_TYPES_H
#define SR3D_CONV_TYPES_H

#include <stdint.h>

#include "engine.h"

enum { SR3D_OBLOCK = 512 }; /* output rows per cache block of the convolution */

typedef struct {
    const float *x;  /* (n_in, c_in) features, or (n_out, c_in) gradient when transpose */
    const float *w;  /* (kvol, c_in, c_out) weights, row-major (the narrow forward reads them) */
    const float *wt; /* the same, packed by pack_tiles (the group tiles read them) */
    float *out;
    const int64_t *starts, *rows_in, *rows_out;
    int64_t kvol, c_in, c_out;
    int transpose;
} ConvArgs;

typedef struct {
    const float *x, *g;
    float *gw;
    const int64_t *starts, *rows_in, *rows_out;
    int64_t kvol, c_in, c_out, chunk;
} WgradArgs;

typedef void (*ConvTaskFn)(const ConvArgs *, int64_t, int64_t, int64_t *, const int64_t *, int64_t *, float *);
typedef void (*WgradTaskFn)(const WgradArgs *, int64_t, int64_t, int64_t, float *, float *);

void sr3d_conv_task_base(const ConvArgs *, int64_t, int64_t, int64_t *, const int64_t *, int64_t *, float *);
void sr3d_wgrad_task_base(const WgradArgs *, int64_t, int64_t, int64_t, float *, float *);
#ifdef SR3D_X86_VARIANTS
#define SR3D_HAVE_AVX2_VARIANT 1
void sr3d_conv_task_avx2(const ConvArgs *, int64_t, int64_t, int64_t *, const int64_t *, int64_t *, float *);
void sr3d_wgrad_task_avx2(const WgradArgs *, int64_t, int64_t, int64_t, float *, float *);
#endif

#endif

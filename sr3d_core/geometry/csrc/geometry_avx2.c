/* The box geometry for x86-64 CPUs with AVX2 and FMA (fused multiply-adds round as a -march=native build on such
 * a CPU did), chosen at run time by geometry.c. Elsewhere, and in a portable build, it is empty. */
#include "engine.h"
#ifdef SR3D_X86_VARIANTS
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#define SR3D_ISA(name) sr3d_geom_##name##_avx2
#include "box_geometry.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
typedef int sr3d_geometry_avx2_unused; /* ISO C: no empty translation unit */
#endif

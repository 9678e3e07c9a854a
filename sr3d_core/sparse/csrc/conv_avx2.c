/* The convolution kernels for x86-64 CPUs with AVX2 and FMA, chosen at run time by conv.c (the rest of the library
 * stays at the baseline, so one build runs on any x86-64 CPU). Elsewhere, and in a portable build, it is empty. */
#include "engine.h"
#ifdef SR3D_X86_VARIANTS
#include <stdint.h>
#include <string.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#define SR3D_ISA(name) sr3d_##name##_avx2
#include "conv_kernels.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
typedef int sr3d_conv_avx2_unused; /* ISO C: no empty translation unit */
#endif

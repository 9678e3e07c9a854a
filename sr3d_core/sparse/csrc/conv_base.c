/* The convolution kernels for the portable baseline (x86-64's SSE2, AArch64's NEON): what runs on any CPU. */
#define SR3D_ISA(name) sr3d_##name##_base
#include "conv_kernels.h"

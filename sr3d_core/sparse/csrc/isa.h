/* Run-time instruction-set clones of the sparse engine's integer and rounding loops.
 *
 * The library is built for the portable baseline (x86-64: SSE2), where a 64-bit min / max / compare has no vector
 * instruction and floor() is a libm call. SR3D_CLONES compiles a function a second time for AVX2 and lets the
 * dynamic loader pick the copy the CPU runs (GCC / Clang target_clones, an ifunc): voxelization's sort-unique and
 * key quantization then run at the speed of a -march=native build (the sort-unique ~1.2x, the keys ~2x) and one
 * build still runs on any x86-64 CPU. AVX2 does not include FMA, so no float expression is contracted differently:
 * the clones give the baseline's bits. Elsewhere (other architectures, no ifunc) the macro is empty.
 *
 * GCC clones a cloned function's `omp parallel` bodies with it (the outlined `<name>._omp_fn.N` gets its own .avx2
 * copy and resolver; `nm` on the library shows them), so loops inside a region keep the AVX2 speed. Moving them
 * out into cloned helpers instead measured slower (lost inlining), not faster. */
#ifndef SR3D_ISA_H
#define SR3D_ISA_H

#include <stdint.h> /* defines __GLIBC__ where it applies */

#include "engine.h"

#if defined(SR3D_X86_VARIANTS) && defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && \
    defined(__has_attribute)
#if __has_attribute(target_clones)
#define SR3D_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef SR3D_CLONES
#define SR3D_CLONES
#endif

#endif

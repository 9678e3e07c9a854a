/* The box geometry for the portable baseline: what runs on any CPU. */
#define SR3D_ISA(name) sr3d_geom_##name##_base
#include "box_geometry.h"

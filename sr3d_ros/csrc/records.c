/* The decoding of a sensor_msgs/PointCloud2's point records for the ROS node (sr3d_ros.conversions' compiled
 * path, bound in sr3d_ros/native_records.py): one pass that gathers, drops non-finite points, transforms and
 * unpacks colour. Built by setup.py with the engine's other libraries; portable (no instruction-set variants: the
 * pass is memory-bound). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"

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
 * Writes (kept, 3 or 6) floats to out and returns kept, or -1 (nothing read) when a row lies outside the
 * n_records records or a size is negative. */
SR3D_API SR3D_NO_FMA_ATTR int64_t sr3d_decode_records(const uint8_t *data, int64_t width, int64_t step,
                                                      int64_t row_stride, int64_t n_records, const int64_t *rows,
                                                      int64_t n, const int32_t *off, int32_t off_color,
                                                      const int32_t *color_bytes, float scale, const float *affine,
                                                      float *out) {
    SR3D_NO_FMA_BODY
    if (width <= 0 || n < 0) return -1;
    if (rows)
        for (int64_t i = 0; i < n; ++i)
            if (rows[i] < 0 || rows[i] >= n_records) return -1;
    if (!rows && n > n_records) return -1;
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


SR3D_DEFINE_HANDSHAKE

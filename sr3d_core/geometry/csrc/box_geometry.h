/* Box geometry of sr3d_core.geometry (its compiled path, geometry/native.py): the rotated bird's-eye-view IoU and
 * non-maximum suppression, and the clipped intersection area of convex polygons with its gradient. Compiled once
 * per instruction set (geometry_base.c, geometry_avx2.c) with SR3D_ISA(name) naming the copies; geometry.c picks
 * one at run time (the FMA build rounds as a -march=native build on such a CPU did) and runs it on the threads. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Convex polygons of up to CLIP_MAX vertices, clipped by Sutherland-Hodgman steps: the rotated IoU below (no
 * gradient) and the clipped area with its gradient (sr3d_convex_clip) share them. */
enum { CLIP_MAX = 24, CLIP_EDGES = 8 };

typedef struct {
    int n;
    double x[CLIP_MAX], y[CLIP_MAX];
} Poly;

typedef struct { /* how an output vertex of one clipping stage came about */
    int kind;    /* 0: input vertex a kept; 1: the crossing of the input edge a -> b */
    int a, b;
    double ds, d, t;
} Step;

/* One Sutherland-Hodgman step: clip in by the half-plane left of q0 -> q1; distances within tol of the line count
 * as on it (no sliver vertices from coincident edges). steps (may be NULL) records where each output vertex came
 * from. Returns the output's vertex count, or -1 when it would outgrow CLIP_MAX. */
static int clip_stage(const Poly *in, double q0x, double q0y, double q1x, double q1y, double tol, Poly *out,
                      Step *steps) {
    const double ex = q1x - q0x, ey = q1y - q0y;
    double d[CLIP_MAX];
    for (int v = 0; v < in->n; ++v) {
        const double dv = ex * (in->y[v] - q0y) - ey * (in->x[v] - q0x); /* > 0: inside (left) */
        d[v] = fabs(dv) <= tol ? 0.0 : dv;
    }
    int k = 0;
    for (int v = 0; v < in->n; ++v) {
        if (k + 2 > CLIP_MAX) return -1;
        const int s = (v + in->n - 1) % in->n; /* edge s -> v */
        if ((d[s] > 0 && d[v] < 0) || (d[s] < 0 && d[v] > 0)) {
            const double t = d[s] / (d[s] - d[v]);
            out->x[k] = in->x[s] + t * (in->x[v] - in->x[s]);
            out->y[k] = in->y[s] + t * (in->y[v] - in->y[s]);
            if (steps) steps[k] = (Step){1, s, v, d[s], d[v], t};
            ++k;
        }
        if (d[v] >= 0) {
            out->x[k] = in->x[v];
            out->y[k] = in->y[v];
            if (steps) steps[k] = (Step){0, v, v, 0, 0, 0};
            ++k;
        }
    }
    out->n = k;
    return k;
}

static void bev_rect(const double *b, double mx, double my, double *px, double *py) {
    static const double SX[4] = {-0.5, 0.5, 0.5, -0.5}, SY[4] = {-0.5, -0.5, 0.5, 0.5};
    const double c = cos(b[6]), s = sin(b[6]);
    for (int v = 0; v < 4; ++v) {
        const double lx = SX[v] * b[3], ly = SY[v] * b[4];
        px[v] = c * lx - s * ly + (b[0] - mx);
        py[v] = s * lx + c * ly + (b[1] - my);
    }
}

static double shoelace(const double *x, const double *y, int n) {
    double a = 0.0;
    for (int v = 0; v < n; ++v) a += x[v] * y[(v + 1) % n] - y[v] * x[(v + 1) % n];
    return 0.5 * a;
}

/* Bird's-eye-view IoU of rotated box pairs, for non-maximum suppression (no gradient needed there).
 *
 * The same geometry as sr3d_core.geometry.iou (its PyTorch twin and reference): both footprints as
 * counter-clockwise rectangles about the pair's mid-centre, one clipped by the other's four edges
 * (Sutherland-Hodgman), the shoelace area capped by either area, IoU = inter / union (0 for an empty union). In
 * double, per pair, in registers: a few hundred nanoseconds where the batched tensor version costs a few hundred
 * small tensor operations whatever the number of pairs. Boxes are (x, y, z, dx, dy, dz, yaw) rows of 7 doubles. */
void SR3D_ISA(rotated_iou_bev)(const double *b1, const double *b2, int64_t n, double *iou) {
    for (int64_t p = 0; p < n; ++p) {
        const double *a = b1 + 7 * p, *b = b2 + 7 * p;
        const double mx = 0.5 * (a[0] + b[0]), my = 0.5 * (a[1] + b[1]);
        double ax[4], ay[4], cx[4], cy[4];
        bev_rect(a, mx, my, ax, ay);
        bev_rect(b, mx, my, cx, cy);
        Poly buf[2], *cur = &buf[0], *next = &buf[1];
        cur->n = 4;
        double scale = 0.0;
        for (int v = 0; v < 4; ++v) {
            cur->x[v] = ax[v];
            cur->y[v] = ay[v];
            scale = fmax(scale, fmax(fmax(fabs(ax[v]), fabs(ay[v])), fmax(fabs(cx[v]), fabs(cy[v]))));
        }
        for (int e = 0; e < 4 && cur->n > 0; ++e) {
            const int e1 = (e + 1) % 4;
            const double tol = 32.0 * 2.220446049250313e-16 * scale * (fabs(cx[e1] - cx[e]) + fabs(cy[e1] - cy[e]));
            clip_stage(cur, cx[e], cy[e], cx[e1], cy[e1], tol, next, NULL); /* 4 + 4 vertices at most: fits */
            Poly *swap = cur;
            cur = next;
            next = swap;
        }
        const double area1 = a[3] * a[4], area2 = b[3] * b[4];
        double inter = cur->n > 0 ? shoelace(cur->x, cur->y, cur->n) : 0.0;
        inter = fmin(fmax(inter, 0.0), fmax(fmin(area1, area2), 0.0));
        const double uni = area1 + area2 - inter;
        iou[p] = uni > 0 ? inter / uni : 0.0;
    }
}

/* Greedy NMS on the rotated BEV IoU above among the boxes idx[0 .. n) of one label (ascending: score order), boxes
 * b (x 7): box idx[r] is suppressed by the first kept box idx[q], q < r, with IoU > thr. The IoU is compared as the
 * caller's dtype would hold it (single: rounded to float, against the float threshold). Boxes whose axis-aligned
 * footprints (ext: 4 n doubles of scratch) do not overlap are skipped (their IoU is 0). Writes keep[idx[q]] (1:
 * kept) and returns the number kept. */
int64_t SR3D_ISA(nms_group)(const double *b, const int64_t *idx, int64_t n, double thr, int single, double *ext,
                            uint8_t *keep) {
    for (int64_t q = 0; q < n; ++q) {
        const double *p = b + 7 * idx[q], c = fabs(cos(p[6])), s = fabs(sin(p[6]));
        const double hx = 0.5 * (c * p[3] + s * p[4]), hy = 0.5 * (s * p[3] + c * p[4]);
        const double pad = 1e-9 * (fabs(p[0]) + fabs(p[1]) + hx + hy); /* the footprint test only skips */
        ext[4 * q + 0] = p[0] - hx - pad;
        ext[4 * q + 1] = p[0] + hx + pad;
        ext[4 * q + 2] = p[1] - hy - pad;
        ext[4 * q + 3] = p[1] + hy + pad;
        keep[idx[q]] = 1;
    }
    const float thr_f = (float)thr;
    int64_t kept = 0;
    for (int64_t q = 0; q < n; ++q) {
        const int64_t i = idx[q];
        if (!keep[i]) continue;
        ++kept;
        const double *ei = ext + 4 * q;
        for (int64_t r = q + 1; r < n; ++r) {
            const double *ej = ext + 4 * r;
            const int64_t j = idx[r];
            if (!keep[j] || ej[0] >= ei[1] || ei[0] >= ej[1] || ej[2] >= ei[3] || ei[2] >= ej[3]) continue;
            double iou;
            SR3D_ISA(rotated_iou_bev)(b + 7 * i, b + 7 * j, 1, &iou);
            if (single ? (float)iou > thr_f : iou > thr) keep[j] = 0;
        }
    }
    return kept;
}

/* The gradient g of a distance dist = ex (vy - q0y) - ey (vx - q0x) of vertex v from the clipping line q0 -> q1
 * (e = q1 - q0), added to v's and the line's ends' gradients. */
static inline void back_distance(double g, double vx, double vy, double q0x, double q0y, double ex, double ey,
                                 double *gvx, double *gvy, double *g0x, double *g0y, double *g1x, double *g1y) {
    *gvx += g * (-ey);
    *gvy += g * ex;
    *g0x += g * (ey - (vy - q0y)); /* through q0 itself and through e = q1 - q0 */
    *g0y += g * (-ex + (vx - q0x));
    *g1x += g * (vy - q0y);
    *g1y += g * (-(vx - q0x));
}

/* The intersection area of convex polygon pairs (the rotated IoU's bird's-eye-view overlap) and its gradient, as
 * geometry.iou.convex_intersection_area computes it: Sutherland-Hodgman clipping of poly1 (K x n corners) by the
 * half-planes of poly2 (K x m), counter-clockwise, with the same snapping of near-zero distances (|d| <= 32 eps
 * scale (|edge| + eps scale), eps the caller's float type's) and the shoelace area, clamped at 0. Coordinates are
 * taken about each pair's mean corner (translation leaves the area unchanged), in double.
 * With grad (K) given, the clipping is run again and its steps are walked back: an output vertex is a kept input
 * vertex or s + t (p - s) with t = ds / (ds - d), ds and d the distances of the edge s -> p's ends from the
 * clipping line; g1 (K x n x 2) and g2 (K x m x 2) receive grad times the area's derivatives. */
int SR3D_ISA(convex_clip)(const double *p1, int64_t n, const double *p2, int64_t m, int64_t k_pairs, double eps,
                     double *area, const double *grad, double *g1, double *g2) {
    if (n < 1 || m < 1 || n > CLIP_EDGES || m > CLIP_EDGES) return 1;
    for (int64_t p = 0; p < k_pairs; ++p) {
        const double *a = p1 + p * n * 2, *b = p2 + p * m * 2;
        double sx1 = 0, sy1 = 0, sx2 = 0, sy2 = 0, scale = 0;
        for (int64_t v = 0; v < n; ++v) {
            sx1 += a[2 * v];
            sy1 += a[2 * v + 1];
        }
        for (int64_t v = 0; v < m; ++v) {
            sx2 += b[2 * v];
            sy2 += b[2 * v + 1];
        }
        const double ox = 0.5 * (sx1 / (double)n + sx2 / (double)m), oy = 0.5 * (sy1 / (double)n + sy2 / (double)m);
        Poly stage[CLIP_EDGES + 1];
        Step steps[CLIP_EDGES][CLIP_MAX];
        double qx[CLIP_EDGES], qy[CLIP_EDGES];
        stage[0].n = (int)n;
        for (int64_t v = 0; v < n; ++v) {
            stage[0].x[v] = a[2 * v] - ox;
            stage[0].y[v] = a[2 * v + 1] - oy;
            scale = fmax(scale, fmax(fabs(stage[0].x[v]), fabs(stage[0].y[v])));
        }
        for (int64_t v = 0; v < m; ++v) {
            qx[v] = b[2 * v] - ox;
            qy[v] = b[2 * v + 1] - oy;
            scale = fmax(scale, fmax(fabs(qx[v]), fabs(qy[v])));
        }
        int e = 0;
        for (; e < m; ++e) {
            const int e1 = (int)((e + 1) % m);
            const double tol = 32.0 * eps * scale * (fabs(qx[e1] - qx[e]) + fabs(qy[e1] - qy[e]) + eps * scale);
            if (stage[e].n == 0) {
                stage[e + 1].n = 0;
                continue;
            }
            if (clip_stage(&stage[e], qx[e], qy[e], qx[e1], qy[e1], tol, &stage[e + 1], steps[e]) < 0)
                return 2; /* more vertices than a slot holds (not convex enough): the caller's PyTorch path */
        }
        const Poly *fin = &stage[m];
        const double ar = shoelace(fin->x, fin->y, fin->n);
        area[p] = ar > 0 ? ar : 0;
        if (!grad) continue;
        double *ga = g1 + p * n * 2, *gb = g2 + p * m * 2;
        for (int64_t v = 0; v < 2 * n; ++v) ga[v] = 0;
        for (int64_t v = 0; v < 2 * m; ++v) gb[v] = 0;
        if (!(ar > 0) || grad[p] == 0) continue; /* the clamp: no gradient where the area is 0 */
        /* d area / d vertex of the final polygon (shoelace), times grad */
        double gx[CLIP_MAX], gy[CLIP_MAX];
        for (int v = 0; v < fin->n; ++v) {
            const int prev = (v + fin->n - 1) % fin->n, next = (v + 1) % fin->n;
            gx[v] = 0.5 * grad[p] * (fin->y[next] - fin->y[prev]);
            gy[v] = 0.5 * grad[p] * (fin->x[prev] - fin->x[next]);
        }
        double gqx[CLIP_EDGES] = {0}, gqy[CLIP_EDGES] = {0};
        for (e = (int)m - 1; e >= 0; --e) { /* stage e maps stage[e] to stage[e + 1] with clipping edge e */
            const Poly *in = &stage[e], *out = &stage[e + 1];
            const int e1 = (int)((e + 1) % m);
            const double q0x = qx[e], q0y = qy[e], ex = qx[e1] - q0x, ey = qy[e1] - q0y;
            double hx[CLIP_MAX] = {0}, hy[CLIP_MAX] = {0};
            for (int j = 0; j < out->n; ++j) {
                const Step *st = &steps[e][j];
                if (st->kind == 0) {
                    hx[st->a] += gx[j];
                    hy[st->a] += gy[j];
                    continue;
                }
                const int si = st->a, pi = st->b;
                const double sx = in->x[si], sy = in->y[si], px = in->x[pi], py = in->y[pi], t = st->t;
                /* X = s + t (p - s) */
                hx[si] += (1 - t) * gx[j];
                hy[si] += (1 - t) * gy[j];
                hx[pi] += t * gx[j];
                hy[pi] += t * gy[j];
                const double gt = gx[j] * (px - sx) + gy[j] * (py - sy); /* dL/dt */
                const double den = st->ds - st->d;
                const double gds = gt * (-st->d) / (den * den), gd = gt * st->ds / (den * den);
                /* Snapped distances are constants. */
                if (st->ds != 0) back_distance(gds, sx, sy, q0x, q0y, ex, ey, &hx[si], &hy[si], &gqx[e], &gqy[e],
                                               &gqx[e1], &gqy[e1]);
                if (st->d != 0) back_distance(gd, px, py, q0x, q0y, ex, ey, &hx[pi], &hy[pi], &gqx[e], &gqy[e],
                                              &gqx[e1], &gqy[e1]);
            }
            for (int v = 0; v < in->n; ++v) {
                gx[v] = hx[v];
                gy[v] = hy[v];
            }
        }
        for (int64_t v = 0; v < n; ++v) {
            ga[2 * v] = gx[v];
            ga[2 * v + 1] = gy[v];
        }
        for (int64_t v = 0; v < m; ++v) {
            gb[2 * v] = gqx[v];
            gb[2 * v + 1] = gqy[v];
        }
    }
    return 0;
}

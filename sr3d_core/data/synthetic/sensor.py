"""A simulated RGB-D camera: pinhole rays cast with open3d's RaycastingScene.

Frames: the optical frame has z forward, x right, y down (REP 103 `_optical`); the room frame is
z up. A pose is position + yaw (heading of the optical axis about +z) + tilt (down positive) +
roll about the optical axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics and noise of a Kinect / RealSense-like depth camera.

    Attributes:
        width: Image width in pixels.
        height: Image height in pixels.
        fx: Focal length x (px).
        fy: Focal length y (px).
        cx: Principal point x (px).
        cy: Principal point y (px).
        min_depth: Closest valid return (m).
        max_depth: Farthest valid return (m).
        noise_base: Depth noise std at `min_depth` (m).
        noise_quad: Growth of the std with (depth - min_depth)^2 (Kinect-style axial noise).
        dropout: Fraction of returns lost at random.
        grazing_cos: Below this |cos(incidence)| returns start to drop (edges, grazing walls).
        color_noise: Std of per-point colour noise.
        name: Which real sensor this models ("ideal" for the plain Kinect-like default).
        noise_lin: Extra depth noise std growing linearly with depth (m per m; time-of-flight).
        noise_z2: Extra depth noise std growing with depth squared (1/m; structured light, stereo).
        baseline: Projector-camera or stereo baseline (m), for the disparity quantization.
        disparity_step: Disparity quantization step (px; 0 = none): depth = fx * baseline / disparity.
        flying_pixels: Probability that a pixel at a depth edge returns a depth between the two surfaces.
        dark_dropout: Extra dropout on dark surfaces (at black; fades out by 25 % luminance).
        material_dropout: Dropout per surface material (matte, glass, mirror, screen, metal; see mesh.py).
        thin_dropout: Dropout of thin structures (a pixel whose neighbours on both sides are much farther).
        misregistration_px: Std of the per-frame offset between the colour and the depth image (px).
    """

    width: int = 640
    height: int = 480
    fx: float = 525.0
    fy: float = 525.0
    cx: float = 319.5
    cy: float = 239.5
    min_depth: float = 0.4
    max_depth: float = 6.0
    noise_base: float = 0.0012
    noise_quad: float = 0.0019
    dropout: float = 0.02
    grazing_cos: float = 0.2
    color_noise: float = 0.02
    name: str = "ideal"
    noise_lin: float = 0.0
    noise_z2: float = 0.0
    baseline: float = 0.075
    disparity_step: float = 0.0
    flying_pixels: float = 0.0
    dark_dropout: float = 0.0
    material_dropout: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    thin_dropout: float = 0.0
    misregistration_px: float = 0.0

    @property
    def realistic(self) -> bool:
        """True when any effect beyond the plain noise and dropout model is on."""
        return bool(
            self.flying_pixels
            or self.dark_dropout
            or any(self.material_dropout)
            or self.thin_dropout
            or self.misregistration_px
            or self.disparity_step
            or self.noise_lin
            or self.noise_z2
        )

    def intrinsic_matrix(self) -> np.ndarray:
        """3x3 K."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])


# Real RGB-D sensors (published specifications and noise studies): Kinect v1 / Asus Xtion (structured light:
# noise ~1.4e-3 z^2, 1/8-pixel disparity steps over a 7.5 cm baseline), Kinect v2 (time of flight, 512x424,
# wide field of view, strong mixed pixels at edges, weak on black), RealSense D435 (active stereo, 5 cm
# baseline, 0.08 px subpixel error, loses thin structures). The synthetic frame draws one per capture.
SENSORS: dict[str, CameraModel] = {
    "kinect_v1": CameraModel(
        640,
        480,
        525.0,
        525.0,
        319.5,
        239.5,
        0.5,
        5.0,
        0.0,
        0.0,
        0.01,
        0.25,
        0.03,
        name="kinect_v1",
        noise_z2=1.425e-3,
        baseline=0.075,
        disparity_step=0.125,
        flying_pixels=0.25,
        dark_dropout=0.5,
        material_dropout=(0.0, 0.85, 0.9, 0.5, 0.25),
        thin_dropout=0.3,
        misregistration_px=2.0,
    ),
    "xtion": CameraModel(
        640,
        480,
        570.3,
        570.3,
        319.5,
        239.5,
        0.6,
        4.5,
        0.0,
        0.0,
        0.01,
        0.25,
        0.03,
        name="xtion",
        noise_z2=1.6e-3,
        baseline=0.075,
        disparity_step=0.125,
        flying_pixels=0.25,
        dark_dropout=0.5,
        material_dropout=(0.0, 0.85, 0.9, 0.5, 0.25),
        thin_dropout=0.3,
        misregistration_px=2.0,
    ),
    "kinect_v2": CameraModel(
        512,
        424,
        365.0,
        365.0,
        255.5,
        211.5,
        0.5,
        4.5,
        0.0015,
        0.0,
        0.005,
        0.2,
        0.03,
        name="kinect_v2",
        noise_lin=0.0015,
        flying_pixels=0.6,
        dark_dropout=0.6,
        material_dropout=(0.0, 0.8, 0.9, 0.6, 0.2),
        thin_dropout=0.1,
        misregistration_px=3.0,
    ),
    "realsense_d435": CameraModel(
        640,
        480,
        385.0,
        385.0,
        319.5,
        239.5,
        0.3,
        6.0,
        0.001,
        0.0,
        0.02,
        0.25,
        0.04,
        name="realsense_d435",
        noise_z2=4.2e-3,
        baseline=0.05,
        disparity_step=1 / 32,
        flying_pixels=0.15,
        dark_dropout=0.2,
        material_dropout=(0.0, 0.7, 0.85, 0.4, 0.35),
        thin_dropout=0.6,
        misregistration_px=1.5,
    ),
}


@dataclass(frozen=True)
class Lighting:
    """Per-frame colour conditions: exposure gain, white balance and one light source (room frame).

    Attributes:
        gain: Exposure relative to auto exposure (which brings the median brightness to 0.45).
        white_balance: Per-channel RGB gain.
        light: (3,) position of the main light.
        ambient: Share of light that does not depend on the surface's angle to the light.
        falloff: Brightness loss per metre of distance from the light.
    """

    gain: float
    white_balance: tuple[float, float, float]
    light: tuple[float, float, float]
    ambient: float
    falloff: float

    @staticmethod
    def draw(rng: np.random.Generator, light: np.ndarray) -> "Lighting":
        """Random conditions around a light at `light`."""
        wb = np.clip(rng.normal(1.0, 0.07, 3), 0.8, 1.2)
        return Lighting(
            float(rng.uniform(0.7, 1.25)),
            (float(wb[0]), float(wb[1]), float(wb[2])),
            tuple(float(v) for v in light),
            float(rng.uniform(0.35, 0.7)),
            float(rng.uniform(0.0, 0.12)),
        )


def camera_rotation(yaw: float, tilt: float, roll: float) -> np.ndarray:
    """Rotation R_wc whose columns are the optical x (right), y (down), z (forward) axes in the room frame."""
    f = np.array([np.cos(yaw) * np.cos(tilt), np.sin(yaw) * np.cos(tilt), -np.sin(tilt)])
    r = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    d = np.cross(f, r)
    c, s = np.cos(roll), np.sin(roll)
    r, d = c * r + s * d, -s * r + c * d
    return np.stack([r, d, f], 1)


_RAY_CACHE: dict[tuple[CameraModel, int], tuple[np.ndarray, np.ndarray]] = {}


def _pixel_rays(cam: CameraModel, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Optical-frame ray directions (z = 1) of the pixel grid and their inverse norms (cached)."""
    key = (cam, stride)
    if key not in _RAY_CACHE:
        u, v = np.meshgrid(np.arange(0, cam.width, stride), np.arange(0, cam.height, stride))
        d = np.stack([(u.ravel() - cam.cx) / cam.fx, (v.ravel() - cam.cy) / cam.fy, np.ones(u.size)], 1)
        _RAY_CACHE[key] = (d.astype(np.float32), (1.0 / np.linalg.norm(d, axis=1)).astype(np.float32))
    return _RAY_CACHE[key]


class RayCaster:
    """One RaycastingScene per room, plus the per-triangle colour and object id tables."""

    def __init__(
        self,
        vertices: np.ndarray,
        triangles: np.ndarray,
        tri_colors: np.ndarray,
        tri_object: np.ndarray,
        tri_material: np.ndarray | None = None,
    ) -> None:
        self.scene = o3d.t.geometry.RaycastingScene()
        self.scene.add_triangles(
            o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(triangles.astype(np.uint32))
        )
        self.tri_colors = tri_colors.astype(np.float32)
        self.tri_object = tri_object.astype(np.int32)
        self.tri_material = np.zeros(len(triangles), np.int8) if tri_material is None else tri_material.astype(np.int8)

    def capture(
        self,
        cam: CameraModel,
        position: np.ndarray,
        R_wc: np.ndarray,
        rng: np.random.Generator,
        stride: int = 1,
        lighting: Lighting | None = None,
    ) -> dict[str, np.ndarray]:
        """Render one depth frame and back-project it.

        Args:
            cam: Camera model.
            position: (3,) optical centre in the room frame.
            R_wc: (3, 3) camera-to-room rotation (see `camera_rotation`).
            rng: Noise generator.
            stride: Pixel stride (>1 renders a sub-sampled image, for fused scans).
            lighting: Colour conditions of the frame (None: shading from the camera, no exposure change).

        Returns:
            dict with `points_cam` (N, 3) in the optical frame, `colors` (N, 3) in [0, 1] and
            `object_id` (N,) (-1 for the room shell, -2 for the ceiling).
        """
        d_cam, inv_norm = _pixel_rays(cam, stride)
        d_w = d_cam @ R_wc.T.astype(np.float32)
        rays = np.empty((len(d_w), 6), np.float32)
        rays[:, :3] = position
        rays[:, 3:] = d_w
        hit = self.scene.cast_rays(o3d.core.Tensor(rays), nthreads=1)
        depth = hit["t_hit"].numpy()  # = z depth, since d_cam has z = 1
        prim = hit["primitive_ids"].numpy()
        normal = hit["primitive_normals"].numpy()
        if cam.realistic or lighting is not None:
            return self._capture_real(cam, position, d_cam, d_w, inv_norm, depth, prim, normal, rng, stride, lighting)
        ok = np.isfinite(depth) & (depth > cam.min_depth) & (depth < cam.max_depth)
        cosang = np.abs(np.einsum("ij,ij->i", normal, d_w)) * inv_norm
        p_drop = cam.dropout + np.clip((cam.grazing_cos - cosang) / cam.grazing_cos, 0, 1) * 0.9
        ok &= rng.random(len(depth), dtype=np.float32) >= p_drop
        depth, prim, d_c, cosang = depth[ok].astype(np.float64), prim[ok], d_cam[ok], cosang[ok]
        sigma = cam.noise_base + cam.noise_quad * (depth - cam.min_depth) ** 2
        depth = depth + rng.normal(0.0, 1.0, len(depth)) * sigma
        pts = d_c * depth[:, None]
        # Colour: material colour of the hit triangle, Lambert-like shading from the camera, noise.
        col = self.tri_colors[prim] * (0.6 + 0.4 * cosang[:, None]).astype(np.float32)
        col = np.clip(col + rng.normal(0.0, cam.color_noise, col.shape).astype(np.float32), 0.0, 1.0)
        return {"points_cam": pts, "colors": col, "object_id": self.tri_object[prim]}

    def _capture_real(
        self,
        cam: CameraModel,
        position: np.ndarray,
        d_cam: np.ndarray,
        d_w: np.ndarray,
        inv_norm: np.ndarray,
        depth: np.ndarray,
        prim: np.ndarray,
        normal: np.ndarray,
        rng: np.random.Generator,
        stride: int,
        lighting: Lighting | None,
    ) -> dict[str, np.ndarray]:
        """`capture` with a real sensor's effects, worked on the organized image (see CameraModel's fields)."""
        h, w = len(range(0, cam.height, stride)), len(range(0, cam.width, stride))
        n = h * w
        hit = np.isfinite(depth)
        prim_s = np.where(hit, prim, 0).astype(np.int64)
        z = np.where(hit, depth, np.inf).astype(np.float64)
        cosang = np.abs(np.einsum("ij,ij->i", normal, d_w)) * inv_norm
        base_col = self.tri_colors[prim_s]
        mat = self.tri_material[prim_s]
        # Colour: the surface's colour lit by the frame's light (or from the camera), before the sensor's view.
        if lighting is not None:
            pts_w = position + d_w * np.where(hit, depth, 0.0)[:, None]
            to_l = np.asarray(lighting.light) - pts_w
            dist = np.linalg.norm(to_l, axis=1) + 1e-6
            cos_l = np.abs(np.einsum("ij,ij->i", normal, to_l)) / dist
            shade_ = (lighting.ambient + (1 - lighting.ambient) * cos_l) / (1 + lighting.falloff * dist**2)
            col = base_col * shade_[:, None] * np.asarray(lighting.white_balance, np.float32)
            # Auto exposure: the camera brings the frame's median brightness to a mid level, times the gain.
            lum = col[hit] @ np.array([0.299, 0.587, 0.114], np.float32)
            col = col * (lighting.gain * 0.45 / max(float(np.median(lum)) if len(lum) else 0.45, 0.02))
        else:
            col = base_col * (0.6 + 0.4 * cosang[:, None])
        col = col.astype(np.float32)
        # Which pixels return a depth.
        ok = hit & (z > cam.min_depth) & (z < cam.max_depth)
        p_drop = np.full(n, cam.dropout)
        if cam.grazing_cos > 0:
            p_drop += np.clip((cam.grazing_cos - cosang) / cam.grazing_cos, 0, 1) * 0.9
        p_drop = p_drop + np.asarray(cam.material_dropout, np.float64)[mat]
        if cam.dark_dropout:
            lum = base_col @ np.array([0.299, 0.587, 0.114], np.float32)
            p_drop = p_drop + cam.dark_dropout * np.clip((0.25 - lum) / 0.25, 0, 1)
        Z = np.where(ok, z, np.inf).reshape(h, w)
        if cam.thin_dropout:  # a thin part: both horizontal (or both vertical) neighbours far behind it
            gap = 0.1
            thin = np.zeros((h, w), bool)
            thin[:, 1:-1] |= (Z[:, :-2] > Z[:, 1:-1] + gap) & (Z[:, 2:] > Z[:, 1:-1] + gap)
            thin[1:-1, :] |= (Z[:-2, :] > Z[1:-1, :] + gap) & (Z[2:, :] > Z[1:-1, :] + gap)
            p_drop = p_drop + cam.thin_dropout * thin.ravel()
        ok &= rng.random(n) >= p_drop
        zf = np.where(ok, z, np.nan)
        if cam.flying_pixels:  # mixed pixels at depth edges: a depth between the two surfaces
            Zi = zf.reshape(h, w)
            nb = np.full((h, w), np.nan)
            nb[:, 1:] = Zi[:, :-1]
            right = np.full((h, w), np.nan)
            right[:, :-1] = Zi[:, 1:]
            pick = np.where(rng.random((h, w)) < 0.5, nb, right)
            edge = np.abs(pick - Zi) > 0.04 + 0.03 * Zi
            fly = edge & (rng.random((h, w)) < cam.flying_pixels)
            a = rng.uniform(0.1, 0.9, (h, w))
            Zi = np.where(fly, Zi + a * (pick - Zi), Zi)
            zf = Zi.ravel()
        keep = np.isfinite(zf)
        zk = zf[keep]
        sigma = cam.noise_base + cam.noise_quad * (zk - cam.min_depth) ** 2 + cam.noise_lin * zk + cam.noise_z2 * zk**2
        zk = zk + rng.normal(0.0, 1.0, len(zk)) * sigma
        if cam.disparity_step:  # structured light / stereo: depth from a quantized disparity
            fb = cam.fx / stride * cam.baseline
            disp = np.maximum(np.round(fb / np.maximum(zk, 1e-3) / cam.disparity_step), 1) * cam.disparity_step
            zk = fb / disp
        if cam.misregistration_px:  # the colour image sits a few pixels off the depth image
            du, dv = np.rint(rng.normal(0.0, cam.misregistration_px / stride, 2)).astype(int)
            C = col.reshape(h, w, 3)
            vv = np.clip(np.arange(h) + dv, 0, h - 1)
            uu = np.clip(np.arange(w) + du, 0, w - 1)
            col = C[vv][:, uu].reshape(n, 3)
        col = col[keep]
        col = np.clip(col + rng.normal(0.0, cam.color_noise, col.shape).astype(np.float32), 0.0, 1.0)
        pts = d_cam[keep].astype(np.float64) * zk[:, None]
        return {"points_cam": pts, "colors": col, "object_id": np.where(hit, self.tri_object[prim_s], -1)[keep]}


def organize(cam: CameraModel, points_cam: np.ndarray, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Put a full-resolution capture back on its pixel grid, as an RGB-D driver publishes it.

    Every captured point was cast through one pixel and its noise is along that ray, so projecting it with the
    intrinsics gives back its pixel; pixels without a return (dropouts, beyond range) become NaN.

    Args:
        cam: The camera of the capture (rendered with stride 1).
        points_cam: (N, 3) points in the optical frame.
        colors: (N, 3) colours in [0, 1].

    Returns:
        `xyz` (H*W, 3) float32 with NaN holes and `rgb` (H*W, 3) uint8, row-major.

    Raises:
        ValueError: the points do not map one-to-one onto the pixel grid (not a stride-1 capture).
    """
    h, w = cam.height, cam.width
    u = np.rint(cam.fx * points_cam[:, 0] / points_cam[:, 2] + cam.cx).astype(np.int64)
    v = np.rint(cam.fy * points_cam[:, 1] / points_cam[:, 2] + cam.cy).astype(np.int64)
    idx = v * w + u
    if len(idx) and (u.min() < 0 or v.min() < 0 or u.max() >= w or v.max() >= h or len(np.unique(idx)) != len(idx)):
        raise ValueError(f"points do not map one-to-one onto the {w}x{h} pixel grid (render with stride 1)")
    xyz = np.full((h * w, 3), np.nan, np.float32)
    rgb = np.zeros((h * w, 3), np.uint8)
    xyz[idx] = points_cam
    rgb[idx] = np.rint(np.clip(colors, 0, 1) * 255).astype(np.uint8)
    return xyz, rgb

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

    def intrinsic_matrix(self) -> np.ndarray:
        """3x3 K."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])


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

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray, tri_colors: np.ndarray,
                 tri_object: np.ndarray) -> None:
        self.scene = o3d.t.geometry.RaycastingScene()
        self.scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)),
                                 o3d.core.Tensor(triangles.astype(np.uint32)))
        self.tri_colors = tri_colors.astype(np.float32)
        self.tri_object = tri_object.astype(np.int32)

    def capture(self, cam: CameraModel, position: np.ndarray, R_wc: np.ndarray, rng: np.random.Generator,
                stride: int = 1) -> dict[str, np.ndarray]:
        """Render one depth frame and back-project it.

        Args:
            cam: Camera model.
            position: (3,) optical centre in the room frame.
            R_wc: (3, 3) camera-to-room rotation (see `camera_rotation`).
            rng: Noise generator.
            stride: Pixel stride (>1 renders a sub-sampled image, for fused scans).

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

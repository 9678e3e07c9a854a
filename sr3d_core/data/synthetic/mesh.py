"""Triangle-mesh primitives kept as plain numpy arrays, so a room is a few concatenations.

A `PartList` collects parts (boxes, cylinders) with one RGB colour each; `finish()` returns
vertices, triangles and a per-triangle colour, which is all the ray caster and the colour
lookup need.
"""

from __future__ import annotations

import numpy as np

# Unit cube [-0.5, 0.5]^3, triangles wound outward.
_CUBE_V = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], dtype=np.float64)
_CUBE_F = np.array(
    [
        [0, 1, 3],
        [0, 3, 2],
        [4, 6, 7],
        [4, 7, 5],
        [0, 4, 5],
        [0, 5, 1],
        [2, 3, 7],
        [2, 7, 6],
        [0, 2, 6],
        [0, 6, 4],
        [1, 5, 7],
        [1, 7, 3],
    ],
    dtype=np.int32,
)


# Surface materials: what a depth sensor does with a surface depends on them (see sensor.py).
MATTE, GLASS, MIRROR, SCREEN, METAL = 0, 1, 2, 3, 4


def _cylinder_template(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit cylinder (radius 1, z in [-0.5, 0.5]) with n sides and capped ends."""
    a = np.arange(n) * (2 * np.pi / n)
    ring = np.stack([np.cos(a), np.sin(a)], 1)
    v = np.concatenate([np.c_[ring, np.full(n, -0.5)], np.c_[ring, np.full(n, 0.5)], [[0, 0, -0.5], [0, 0, 0.5]]])
    i = np.arange(n)
    j = (i + 1) % n
    side = np.concatenate([np.stack([i, j, j + n], 1), np.stack([i, j + n, i + n], 1)])
    bottom = np.stack([np.full(n, 2 * n), j, i], 1)
    top = np.stack([np.full(n, 2 * n + 1), i + n, j + n], 1)
    return v, np.concatenate([side, bottom, top]).astype(np.int32)


_CYL = {n: _cylinder_template(n) for n in (6, 8, 12, 16)}


def rot_z(yaw: float) -> np.ndarray:
    """3x3 rotation about +z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class PartList:
    """Accumulates coloured parts of one object (or of the room shell) in a local frame."""

    def __init__(self) -> None:
        self._v: list[np.ndarray] = []
        self._f: list[np.ndarray] = []
        self._c: list[np.ndarray] = []
        self._m: list[np.ndarray] = []
        self._nv = 0

    def _add(self, v: np.ndarray, f: np.ndarray, color: np.ndarray, material: int = MATTE) -> None:
        self._v.append(v)
        self._f.append(f + self._nv)
        self._c.append(np.broadcast_to(np.asarray(color, dtype=np.float32), (len(f), 3)))
        self._m.append(np.full(len(f), material, np.int8))
        self._nv += len(v)

    def box(self, center, size, color, yaw: float = 0.0, material: int = MATTE) -> None:
        """Add a box with `center` (x, y, z), full `size` (dx, dy, dz), optional yaw and material."""
        v = _CUBE_V * np.asarray(size, dtype=np.float64)
        if yaw:
            v = v @ rot_z(yaw).T
        self._add(v + np.asarray(center, dtype=np.float64), _CUBE_F, color, material)

    def box_minmax(self, lo, hi, color, material: int = MATTE) -> None:
        """Add an axis-aligned box from its min and max corners."""
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        self.box((lo + hi) / 2, hi - lo, color, material=material)

    def cylinder(
        self,
        center,
        radius: float,
        height: float,
        color,
        sides: int = 12,
        radius_y: float | None = None,
        material: int = MATTE,
    ) -> None:
        """Add a z-axis cylinder (elliptic when `radius_y` is given) centred at `center`."""
        v, f = _CYL[sides]
        ry = radius if radius_y is None else radius_y
        self._add(v * np.array([radius, ry, height]) + np.asarray(center, dtype=np.float64), f, color, material)

    def rod(self, p0, p1, radius: float, color, sides: int = 6) -> None:
        """Add a cylinder between two points (for tilted legs, rails)."""
        p0 = np.asarray(p0, dtype=np.float64)
        p1 = np.asarray(p1, dtype=np.float64)
        d = p1 - p0
        length = float(np.linalg.norm(d))
        v, f = _CYL[sides]
        v = v * np.array([radius, radius, length])
        z = d / length
        tmp = np.array([1.0, 0, 0]) if abs(z[0]) < 0.9 else np.array([0, 1.0, 0])
        x = np.cross(tmp, z)
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        self._add(v @ np.stack([x, y, z]) + (p0 + p1) / 2, f, color)

    def scale(self, factors) -> None:
        """Stretch every part by (sx, sy, sz) about the local origin (centred on x, y; floor at z = 0)."""
        f = np.asarray(factors, dtype=np.float64)
        self._v = [v * f for v in self._v]

    def extend(self, other: "PartList") -> None:
        """Append the parts of another list (same local frame)."""
        v, f, c = other.finish()
        if len(f):
            self._v.append(v)
            self._f.append(f + self._nv)
            self._c.append(c)
            self._m.append(other.materials())
            self._nv += len(v)

    def materials(self) -> np.ndarray:
        """(F,) int8 material of each triangle (see MATTE, GLASS, MIRROR, SCREEN, METAL)."""
        return np.concatenate(self._m) if self._m else np.zeros(0, np.int8)

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return `(vertices (V,3) float64, triangles (F,3) int32, colours (F,3) float32)`."""
        if not self._v:
            return np.zeros((0, 3)), np.zeros((0, 3), np.int32), np.zeros((0, 3), np.float32)
        return (
            np.concatenate(self._v),
            np.concatenate(self._f).astype(np.int32),
            np.concatenate(self._c).astype(np.float32),
        )

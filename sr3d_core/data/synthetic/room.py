"""Rooms: a rectilinear shell with door and window openings, furnished without interpenetration.

Placement works on a 5 cm occupancy grid of the floor: cells outside the room are occupied from
the start, every placed object marks its (slightly dilated) footprint, and a candidate pose is
accepted only when its footprint cells are all free. Objects are built first (furniture.py), so
the footprint used is the real extent of the mesh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib.path import Path

from sr3d_core.boxes import wrap_angle
from sr3d_core.data.synthetic import extras as X
from sr3d_core.data.synthetic import furniture as F
from sr3d_core.data.synthetic.mesh import PartList, rot_z
from sr3d_core.data.synthetic.world import LEGACY_WORLD, WorldConfig

CELL = 0.05  # occupancy grid cell (m)
WALL_T = 0.1  # wall thickness (m)


def _posed_rect(xy: np.ndarray, rot: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """World (4, 2) corners of the local rectangle [lo, hi] rotated by the 2x2 ``rot`` and moved to ``xy``."""
    corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    return corners @ rot.T + xy


@dataclass
class PlacedObject:
    """One object in the room, in the room frame.

    Attributes:
        kind: Object kind (a key of furniture.BUILDERS, or "door" / "window").
        vertices: (V, 3) world vertices.
        triangles: (F, 3) indices into `vertices`.
        colors: (F, 3) per-triangle RGB.
        box: (7,) tight oriented box (x, y, z, dx, dy, dz, yaw), gravity centre.
        wall: The wall it stands against, if any (groups place partners relative to it).
        wall_t: Position of its centre along that wall (m from wall.p0).
    """

    kind: str
    vertices: np.ndarray
    triangles: np.ndarray
    colors: np.ndarray
    box: np.ndarray
    wall: "Wall | None" = None
    wall_t: float = 0.0
    materials: np.ndarray | None = None


@dataclass
class Wall:
    """A straight wall from p0 to p1; `n` points into the room."""

    p0: np.ndarray
    p1: np.ndarray
    openings: list[tuple[float, float, float, float]] = field(default_factory=list)  # (t0, t1, z0, z1)
    used: list[tuple[float, float, float]] = field(default_factory=list)  # (t0, t1, top z) wall-side use

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.p1 - self.p0))

    @property
    def u(self) -> np.ndarray:
        return (self.p1 - self.p0) / self.length

    @property
    def n(self) -> np.ndarray:
        u = self.u
        return np.array([-u[1], u[0]])

    @property
    def yaw(self) -> float:
        """Yaw of the inward normal: the heading of furniture standing against this wall."""
        n = self.n
        return float(np.arctan2(n[1], n[0]))

    def at(self, t: float) -> np.ndarray:
        return self.p0 + self.u * t

    def free(self, t0: float, t1: float, z0: float, z1: float, clear: float = 0.1) -> bool:
        """True if [t0, t1] x [z0, z1] touches no opening and no used wall interval."""
        if t0 < 0.05 or t1 > self.length - 0.05:
            return False
        for a, b, za, zb in self.openings:
            if t0 < b + clear and t1 > a - clear and z0 < zb and z1 > za:
                return False
        for a, b, top in self.used:
            if t0 < b + clear and t1 > a - clear and z0 < top:
                return False
        return True


class Room:
    """Shell + furniture of one room; build with `make_room`."""

    def __init__(
        self,
        rng: np.random.Generator,
        room_type: str,
        size: tuple[float, float],
        height: float,
        l_cut: tuple[float, float] | None,
        world: WorldConfig = LEGACY_WORLD,
    ) -> None:
        self.rng = rng
        self.world = world
        self.room_type = room_type
        W, D = size
        self.height = height
        if l_cut is None:
            poly = [(0, 0), (W, 0), (W, D), (0, D)]
        else:
            a, b = l_cut
            poly = [(0, 0), (W, 0), (W, D - b), (W - a, D - b), (W - a, D), (0, D)]
        self.polygon = np.asarray(poly, dtype=np.float64)
        self.walls = [Wall(self.polygon[i], self.polygon[(i + 1) % len(poly)]) for i in range(len(poly))]
        self.nx, self.ny = int(np.ceil(W / CELL)), int(np.ceil(D / CELL))
        gx, gy = np.meshgrid((np.arange(self.nx) + 0.5) * CELL, (np.arange(self.ny) + 0.5) * CELL, indexing="ij")
        self._cells = np.stack([gx.ravel(), gy.ravel()], 1)
        inside = Path(self.polygon).contains_points(self._cells).reshape(self.nx, self.ny)
        self.occ = ~inside
        self.objects: list[PlacedObject] = []
        self.shell = PartList()
        self.floor_color = F.color(rng, "floor", 0.03)
        self.wall_color = F.color(rng, "paint", 0.02)

    # ---- objects -------------------------------------------------------------------------------
    def build(self, kind: str, *args) -> PartList:
        """Build one object of `kind` (a key of furniture.BUILDERS) as this room's world asks: at real sizes and
        with its parts when those factors are on (otherwise exactly the builder's own object)."""
        rng = self.rng
        if kind == "bed":
            parts = F.bed(rng, X.bed_parts if self.world.parts else None)
        else:
            parts = F.BUILDERS[kind](rng, *args)
        if self.world.sizes and kind in X.SUNRGBD_MEAN_SIZE and _resizable(kind, parts):
            lo, hi = X.extent(parts)
            target = X.draw_size(kind, rng)
            if kind == "bed":  # the height of a bed is its headboard's: keep the one its parts gave it
                target[2] = hi[2] - lo[2]
            X.fit_size(parts, target)
        if self.world.parts and kind == "dresser" and rng.random() < 0.35:
            X.dresser_mirror(rng, parts)
        return parts

    # ---- occupancy ---------------------------------------------------------------------------
    def _footprint(self, xy: np.ndarray, yaw: float, lo: np.ndarray, hi: np.ndarray, margin: float) -> np.ndarray:
        """Grid cell indices covered by a local rectangle [lo, hi] (xy) posed at (xy, yaw)."""
        rot = rot_z(yaw)[:2, :2]
        w = _posed_rect(xy, rot, lo, hi)
        i0 = max(int(np.floor((w[:, 0].min() - margin) / CELL)), 0)
        i1 = min(int(np.ceil((w[:, 0].max() + margin) / CELL)), self.nx)
        j0 = max(int(np.floor((w[:, 1].min() - margin) / CELL)), 0)
        j1 = min(int(np.ceil((w[:, 1].max() + margin) / CELL)), self.ny)
        if i0 >= i1 or j0 >= j1:
            return np.zeros((0, 2), np.int64)
        ii, jj = np.meshgrid(np.arange(i0, i1), np.arange(j0, j1), indexing="ij")
        pts = (np.stack([ii.ravel(), jj.ravel()], 1) + 0.5) * CELL - xy
        loc = pts @ rot  # back to the object frame
        m = ((loc >= lo - margin) & (loc <= hi + margin)).all(1)
        return np.stack([ii.ravel()[m], jj.ravel()[m]], 1)

    def _inside_bounds(self, xy: np.ndarray, yaw: float, lo: np.ndarray, hi: np.ndarray) -> bool:
        w = _posed_rect(xy, rot_z(yaw)[:2, :2], lo, hi)
        return bool(
            Path(self.polygon).contains_points(w, radius=1e-6).all()
            or Path(self.polygon).contains_points(w, radius=-1e-6).all()
        )

    def try_place(
        self, kind: str, parts: PartList, xy, yaw: float, z: float = 0.0, margin: float = 0.03, check: bool = True
    ) -> PlacedObject | None:
        """Place `parts` at (xy, z) with `yaw` if its footprint is free; returns the object or None."""
        v, f, col = parts.finish()
        lo, hi = v.min(0), v.max(0)
        xy = np.asarray(xy, dtype=np.float64)
        if check:
            cells = self._footprint(xy, yaw, lo[:2], hi[:2], margin)
            if len(cells) == 0 or self.occ[cells[:, 0], cells[:, 1]].any():
                return None
            if not self._inside_bounds(xy, yaw, lo[:2], hi[:2]):
                return None
            self.occ[cells[:, 0], cells[:, 1]] = True
        R = rot_z(yaw)
        t = np.array([xy[0], xy[1], z])
        centre_local = (lo + hi) / 2
        box = np.concatenate([R @ centre_local + t, hi - lo, [float(wrap_angle(np.float64(yaw)))]])
        obj = PlacedObject(kind, v @ R.T + t, f, col, box, materials=parts.materials())
        self.objects.append(obj)
        return obj

    def block(self, xy, yaw: float, lo, hi) -> None:
        """Mark a local rectangle as occupied without placing anything (door swing, walkways)."""
        cells = self._footprint(np.asarray(xy, float), yaw, np.asarray(lo, float), np.asarray(hi, float), 0.0)
        if len(cells):
            self.occ[cells[:, 0], cells[:, 1]] = True

    def random_free_xy(self, margin: float = 0.3) -> np.ndarray | None:
        """A random free cell centre at least `margin` from occupied cells (None if none)."""
        free = ~self.occ
        k = int(np.ceil(margin / CELL))
        if k > 0:  # erode the free mask by k cells
            pad = np.pad(free, k, constant_values=False)
            er = np.ones_like(free)
            for dx in (-k, 0, k):
                for dy in (-k, 0, k):
                    er &= pad[k + dx : k + dx + self.nx, k + dy : k + dy + self.ny]
            free = er
        idx = np.flatnonzero(free.ravel())
        if len(idx) == 0:
            return None
        return self._cells[idx[self.rng.integers(len(idx))]].copy()

    # ---- placement helpers -------------------------------------------------------------------
    def against_wall(
        self,
        kind: str,
        parts: PartList,
        tries: int = 30,
        gap: tuple[float, float] = (0.01, 0.05),
        wall: Wall | None = None,
    ) -> PlacedObject | None:
        """Stand an object with its back to a wall (heading into the room)."""
        v, _, _ = parts.finish()
        lo, hi = v.min(0), v.max(0)
        width = hi[1] - lo[1]
        walls = [wall] if wall is not None else self.walls
        lengths = np.array([w.length for w in walls])
        for _ in range(tries):
            w = walls[self.rng.choice(len(walls), p=lengths / lengths.sum())]
            if w.length < width + 0.2:
                continue
            t = self.rng.uniform(width / 2 + 0.05, w.length - width / 2 - 0.05)
            if not w.free(t - width / 2, t + width / 2, 0.0, hi[2], clear=0.0):
                continue
            yaw = w.yaw + self.rng.normal(0, 0.02)
            xy = w.at(t) + w.n * (-lo[0] + self.rng.uniform(*gap))
            obj = self.try_place(kind, parts, xy, yaw)
            if obj is not None:
                if hi[2] > 0.8:
                    w.used.append((t - width / 2, t + width / 2, hi[2]))
                obj.wall, obj.wall_t = w, t
                return obj
        return None

    def free_standing(
        self, kind: str, parts: PartList, tries: int = 30, aligned: float = 0.7, margin: float = 0.4
    ) -> PlacedObject | None:
        """Place an object in open floor space, mostly aligned with the walls."""
        for _ in range(tries):
            xy = self.random_free_xy(margin)
            if xy is None:
                return None
            if self.rng.random() < aligned:
                yaw = self.rng.integers(4) * np.pi / 2 + self.rng.normal(0, 0.03)
            else:
                yaw = self.rng.uniform(-np.pi, np.pi)
            obj = self.try_place(kind, parts, xy, yaw)
            if obj is not None:
                return obj
        return None


def _resizable(kind: str, parts: PartList) -> bool:
    """Whether an object's style follows its class's size statistics (coffee, round and conference tables and
    armchairs keep the sizes of their style)."""
    lo, hi = X.extent(parts)
    dx, dy, dz = hi - lo
    if kind == "table":
        return dz > 0.6 and abs(dx - dy) > 0.02 and dy < 2.1
    if kind == "chair":
        return dy < 0.65
    return True


def _chairs_around(room: Room, table: PlacedObject, max_chairs: int) -> None:
    """Chairs facing a table, on its long sides (and sometimes its ends)."""
    rng = room.rng
    cx, cy, _, dx, dy, _, yaw = table.box
    R = rot_z(yaw)[:2, :2]
    slots = []
    if abs(dx - dy) < 0.02 and dx > 0.75:  # round (or square) table: a ring of chairs
        r = dx / 2
        for k in range(rng.integers(3, 6)):
            a = yaw + 2 * np.pi * k / 5
            slots.append((np.array([np.cos(a), np.sin(a)]), r))
    else:
        n_side = max(1, int(dy / 0.62))
        for s in (-1, 1):
            for k in range(n_side):
                off = (k + 0.5) * dy / n_side - dy / 2
                slots.append(((R @ np.array([s, 0.0])), dx / 2, R @ np.array([0.0, off])))
        if dy > 1.5 and rng.random() < 0.5:
            for s in (-1, 1):
                slots.append(((R @ np.array([0.0, s])), dy / 2, np.zeros(2)))
    rng.shuffle(slots)
    placed = 0
    for slot in slots:
        if placed >= max_chairs or rng.random() < 0.2:
            continue
        normal, half = slot[0], slot[1]
        along = slot[2] if len(slot) > 2 else np.zeros(2)
        parts = room.build("chair")
        v, _, _ = parts.finish()
        d = v[:, 0].max() - v[:, 0].min()
        xy = np.array([cx, cy]) + along + normal * (half + d / 2 + rng.uniform(0.05, 0.25))
        yaw = float(np.arctan2(-normal[1], -normal[0])) + rng.normal(0, 0.15)
        if room.try_place("chair", parts, xy, yaw, margin=0.01) is not None:
            placed += 1


def _chair_at_desk(room: Room, desk: PlacedObject) -> None:
    w = desk.wall
    parts = room.build("chair")
    v, _, _ = parts.finish()
    xy = desk.box[:2] + w.n * (desk.box[3] / 2 + (v[:, 0].max() - v[:, 0].min()) / 2 + room.rng.uniform(0.05, 0.3))
    room.try_place(
        "chair", parts, xy + w.u * room.rng.normal(0, 0.1), w.yaw + np.pi + room.rng.normal(0, 0.3), margin=0.01
    )


def _bed_group(room: Room) -> None:
    bed = room.against_wall("bed", room.build("bed"), gap=(0.0, 0.02))
    if bed is None:
        return
    w, t = bed.wall, bed.wall_t
    for s in (-1, 1):
        if room.rng.random() < 0.7:
            parts = room.build("night_stand")
            v, _, _ = parts.finish()
            ns_w = v[:, 1].max() - v[:, 1].min()
            tt = t + s * (bed.box[4] / 2 + ns_w / 2 + room.rng.uniform(0.03, 0.1))
            if ns_w / 2 < tt < w.length - ns_w / 2:
                room.try_place("night_stand", parts, w.at(tt) + w.n * (-v[:, 0].min() + 0.02), w.yaw, margin=0.01)


def _bath_group(room: Room) -> None:
    tub = room.against_wall("bathtub", room.build("bathtub"), gap=(0.0, 0.01))
    if tub is not None and room.rng.random() < 0.75:
        w = tub.wall
        xy = tub.box[:2] + w.n * (tub.box[3] / 2 - 0.06)
        room.try_place(
            "showercurtain",
            F.showercurtain(room.rng, width=tub.box[4] - 0.05, z0=tub.box[5] + 0.08),
            xy,
            w.yaw,
            check=False,
        )


def _sofa_group(room: Room) -> None:
    sofa = room.against_wall("sofa", room.build("sofa"), gap=(0.02, 0.1))
    if sofa is not None and room.rng.random() < 0.7:
        w = sofa.wall
        parts = room.build("table", "coffee")
        v, _, _ = parts.finish()
        xy = sofa.box[:2] + w.n * (sofa.box[3] / 2 + (v[:, 0].max() - v[:, 0].min()) / 2 + room.rng.uniform(0.3, 0.5))
        room.try_place("table", parts, xy, w.yaw + room.rng.normal(0, 0.05), margin=0.05)


def _dining_group(room: Room, style: str | None = None, max_chairs: int = 6) -> None:
    t = room.free_standing("table", room.build("table", style), margin=0.9 if style == "conference" else 0.7)
    if t is not None:
        _chairs_around(room, t, max_chairs)


def _desk_group(room: Room) -> None:
    d = room.against_wall("desk", room.build("desk"))
    if d is not None and room.rng.random() < 0.85:
        _chair_at_desk(room, d)


def _wall_single(kind: str):
    def f(room: Room) -> None:
        room.against_wall(kind, room.build(kind))

    return f


def _free_single(kind: str):
    def f(room: Room) -> None:
        parts = room.build(kind)
        if room.rng.random() < 0.6:
            room.against_wall(kind, parts, gap=(0.02, 0.2))
        else:
            room.free_standing(kind, parts, margin=0.2, aligned=0.3)

    return f


GROUPS = {
    "bed": _bed_group,
    "bath": _bath_group,
    "sofa": _sofa_group,
    "desk": _desk_group,
    "dining": lambda r: _dining_group(r, None),
    "conference": lambda r: _dining_group(r, "conference", 12),
    "cabinet": _wall_single("cabinet"),
    "dresser": _wall_single("dresser"),
    "bookshelf": _wall_single("bookshelf"),
    "counter": _wall_single("counter"),
    "refrigerator": _wall_single("refrigerator"),
    "toilet": _wall_single("toilet"),
    "sink": _wall_single("sink"),
    "garbagebin": _free_single("garbagebin"),
    "chair": _free_single("chair"),
    "night_stand": _wall_single("night_stand"),
}

# Room type -> (size range (m), [(group, min count, max count)]), groups placed in this order.
ROOM_TYPES: dict[str, tuple[tuple[float, float], list[tuple[str, int, int]]]] = {
    "bedroom": (
        (3.0, 5.5),
        [
            ("bed", 1, 1),
            ("dresser", 0, 2),
            ("desk", 0, 1),
            ("cabinet", 0, 1),
            ("bookshelf", 0, 1),
            ("chair", 0, 1),
            ("garbagebin", 0, 1),
        ],
    ),
    "living": (
        (3.5, 7.0),
        [
            ("sofa", 1, 2),
            ("dresser", 0, 1),
            ("bookshelf", 0, 2),
            ("cabinet", 0, 2),
            ("chair", 0, 2),
            ("dining", 0, 1),
            ("garbagebin", 0, 1),
        ],
    ),
    "office": (
        (3.0, 7.0),
        [
            ("desk", 1, 4),
            ("bookshelf", 0, 2),
            ("cabinet", 0, 2),
            ("dining", 0, 1),
            ("garbagebin", 0, 2),
            ("sofa", 0, 1),
        ],
    ),
    "kitchen": (
        (2.8, 6.0),
        [
            ("counter", 1, 2),
            ("refrigerator", 1, 1),
            ("cabinet", 0, 2),
            ("dining", 0, 1),
            ("garbagebin", 0, 1),
            ("sink", 0, 1),
        ],
    ),
    "bathroom": (
        (2.0, 3.6),
        [("bath", 1, 1), ("toilet", 1, 1), ("sink", 1, 2), ("cabinet", 0, 1), ("garbagebin", 0, 1)],
    ),
    "conference": ((4.5, 8.0), [("conference", 1, 1), ("cabinet", 0, 2), ("bookshelf", 0, 1), ("garbagebin", 0, 1)]),
    "study": (
        (3.0, 6.0),
        [
            ("bookshelf", 1, 3),
            ("desk", 1, 2),
            ("dining", 0, 1),
            ("night_stand", 0, 1),
            ("sofa", 0, 1),
            ("garbagebin", 0, 1),
        ],
    ),
}


# How often each room type is drawn (bedrooms and bathrooms carry the rarer classes).
ROOM_WEIGHTS: dict[str, float] = {
    "bedroom": 0.2,
    "living": 0.14,
    "office": 0.14,
    "kitchen": 0.12,
    "bathroom": 0.16,
    "conference": 0.09,
    "study": 0.15,
}


def _openings(room: Room) -> None:
    """Cut one door and a few windows into the walls and put door/window objects into them."""
    rng = room.rng
    H = room.height
    walls = [w for w in room.walls if w.length > 1.3]
    dw = walls[rng.integers(len(walls))]
    width, height = rng.uniform(0.78, 0.95), rng.uniform(2.0, 2.1)
    t = rng.uniform(width / 2 + 0.15, dw.length - width / 2 - 0.15)
    dw.openings.append((t - width / 2, t + width / 2, 0.0, height))
    # door leaf: closed or swung into the room about a hinge on one jamb
    alpha = 0.0 if rng.random() < 0.4 else rng.uniform(0.3, 1.5)
    leaf = F.door(rng, width, height)
    hinge = dw.at(t + width / 2) - dw.n * 0.03
    centre_closed = dw.at(t) - dw.n * 0.03
    yaw = dw.yaw - alpha
    R = rot_z(-alpha)[:2, :2]
    room.try_place("door", leaf, hinge + R @ (centre_closed - hinge), yaw, check=False)
    room.block(dw.at(t), dw.yaw, (0.0, -width / 2 - 0.1), (width + 0.3, width / 2 + 0.1))
    for w in room.walls:
        if w.length < 1.2 or rng.random() > 0.45:
            continue
        for _ in range(int(rng.integers(1, 3))):
            ww = rng.uniform(0.6, min(1.8, w.length - 0.5))
            z0, z1 = rng.uniform(0.75, 1.0), min(H - 0.15, rng.uniform(1.9, 2.3))
            tt = rng.uniform(ww / 2 + 0.2, w.length - ww / 2 - 0.2)
            if not w.free(tt - ww / 2, tt + ww / 2, z0, z1, clear=0.25):
                continue
            w.openings.append((tt - ww / 2, tt + ww / 2, z0, z1))
            room.try_place(
                "window", F.window(rng, ww, z1 - z0, WALL_T), w.at(tt) - w.n * (WALL_T / 2), w.yaw, z=z0, check=False
            )
            if rng.random() < 0.3:  # curtains beside the window
                for s in (-1, 1):
                    cw = rng.uniform(0.35, 0.7)
                    ct = tt + s * (ww / 2 + cw / 2 - rng.uniform(0.0, 0.25))
                    if cw / 2 < ct < w.length - cw / 2:
                        parts = F.curtain(
                            rng, cw, z0=rng.choice([z0 - 0.05, rng.uniform(0.02, 0.2)]), z1=min(H - 0.05, z1 + 0.15)
                        )
                        obj = room.try_place("curtain", parts, w.at(ct) + w.n * 0.09, w.yaw, margin=0.0)
                        if obj is not None:
                            w.used.append((ct - cw / 2, ct + cw / 2, H))


def _pictures(room: Room) -> None:
    rng = room.rng
    for _ in range(int(rng.integers(0, 4))):
        w = room.walls[rng.integers(len(room.walls))]
        parts = F.picture(rng)
        v, _, _ = parts.finish()
        width, h = v[:, 1].max() - v[:, 1].min(), v[:, 2].max()
        if w.length < width + 0.4:
            continue
        t = rng.uniform(width / 2 + 0.1, w.length - width / 2 - 0.1)
        z0 = rng.uniform(1.1, min(1.9, room.height - h - 0.1))
        if not w.free(t - width / 2, t + width / 2, z0 - 0.3, z0 + h):
            continue
        # pictures may hang above low furniture; only openings and tall items stop them
        room.try_place("picture", parts, w.at(t) + w.n * (-v[:, 0].min() + 0.002), w.yaw, z=z0, check=False)
        w.used.append((t - width / 2, t + width / 2, z0 + h))


def _shell(room: Room) -> None:
    """Floor, ceiling and the walls with their openings cut out."""
    rng = room.rng
    H = room.height
    p = room.shell
    W, D = room.polygon.max(0)
    # floor / ceiling as slabs over the polygon's rectangles (1 for a box room, 2 for an L)
    rects = (
        [(0.0, 0.0, W, D)]
        if len(room.polygon) == 4
        else [(0.0, 0.0, W, room.polygon[2, 1]), (0.0, room.polygon[2, 1], room.polygon[3, 0], D)]
    )
    ceil_c = F.color(rng, "white", 0.02)
    for x0, y0, x1, y1 in rects:
        p.box_minmax((x0, y0, -0.05), (x1, y1, 0.0), room.floor_color)
        p.box_minmax((x0, y0, H), (x1, y1, H + 0.05), ceil_c)
    trim = F.shade(room.wall_color, 0.8)
    for w in room.walls:
        cuts = sorted(w.openings)
        pieces = []
        t = 0.0
        for a, b, z0, z1 in cuts:
            pieces.append((t, a, 0.0, H))
            if z0 > 0:
                pieces.append((a, b, 0.0, z0))
            pieces.append((a, b, z1, H))
            t = b
        pieces.append((t, w.length, 0.0, H))
        for a, b, z0, z1 in pieces:
            if b - a < 1e-4 or z1 - z0 < 1e-4:
                continue
            c = w.at((a + b) / 2) - w.n * (WALL_T / 2)
            p.box(
                (c[0], c[1], (z0 + z1) / 2),
                (b - a, WALL_T, z1 - z0),
                room.wall_color,
                yaw=float(np.arctan2(w.u[1], w.u[0])),
            )
        # skirting board
        if w.length > 0.2:
            c = w.at(w.length / 2) + w.n * 0.006
            p.box((c[0], c[1], 0.04), (w.length, 0.012, 0.08), trim, yaw=float(np.arctan2(w.u[1], w.u[0])))


def make_room(rng: np.random.Generator, room_type: str | None = None, world: WorldConfig = LEGACY_WORLD) -> Room:
    """Draw and furnish one room.

    Args:
        rng: Generator that determines everything about the room.
        room_type: A key of ROOM_TYPES, or None to draw one.
        world: Realism factors (all off: the original world, drawn from the same random numbers).

    Returns:
        A furnished `Room` (shell in `room.shell`, objects in `room.objects`).
    """
    if room_type is None:
        names = list(ROOM_TYPES)
        w = np.array([ROOM_WEIGHTS[n] for n in names])
        room_type = str(names[rng.choice(len(names), p=w / w.sum())])
    (smin, smax), menu = ROOM_TYPES[room_type]
    W, D = rng.uniform(smin, smax), rng.uniform(smin, smax)
    l_cut = None
    if min(W, D) > 3.5 and rng.random() < 0.3:
        l_cut = (rng.uniform(0.25, 0.45) * W, rng.uniform(0.25, 0.45) * D)
    room = Room(rng, room_type, (W, D), rng.uniform(2.4, 3.0), l_cut, world)
    _openings(room)
    if world.sizes:
        menu = menu + REAL_LAYOUT_EXTRA.get(room_type, [])
    for group, lo, hi in menu:
        for _ in range(int(rng.integers(lo, hi + 1))):
            GROUPS[group](room)
    if world.parts:
        _lookalikes(room)
    _pictures(room)
    if world.walls:
        _wall_dressing(room)
    if world.clutter:
        _clutter(room)
    _shell(room)
    return room


# Room type -> groups added when the world follows real layouts (bedrooms hold more than a bed and a dresser).
REAL_LAYOUT_EXTRA: dict[str, list[tuple[str, int, int]]] = {
    "bedroom": [("night_stand", 0, 1), ("chair", 0, 2), ("dresser", 0, 1)],
    "living": [("chair", 0, 2), ("dining", 0, 1)],
    "office": [("chair", 0, 3), ("bookshelf", 0, 1)],
    "study": [("chair", 0, 2)],
    "kitchen": [("chair", 0, 2)],
}

# Room type -> [(look-alike kind, min, max)] placed against the walls when the world has furniture parts.
LOOKALIKES: dict[str, list[tuple[str, int, int]]] = {
    "bedroom": [("wardrobe", 0, 1), ("tv_stand", 0, 1), ("ottoman", 0, 1), ("shoe_rack", 0, 1)],
    "living": [("tv_stand", 0, 1), ("ottoman", 0, 2), ("cabinet", 0, 1), ("shoe_rack", 0, 1)],
    "office": [("filing_cabinet", 0, 3), ("wardrobe", 0, 1)],
    "study": [("filing_cabinet", 0, 2), ("tv_stand", 0, 1)],
    "kitchen": [("counter", 0, 1)],
    "bathroom": [("cabinet", 0, 1)],
    "conference": [("tv_stand", 0, 1), ("filing_cabinet", 0, 1)],
}
LOOKALIKE_BUILDERS = {
    "wardrobe": X.wardrobe,
    "tv_stand": X.tv_stand,
    "ottoman": X.ottoman,
    "shoe_rack": X.shoe_rack,
    "filing_cabinet": X.filing_cabinet,
    "bench": X.bench,
    "cabinet": F.cabinet,
    "counter": F.counter,
}


def _lookalikes(room: Room) -> None:
    """Unlabelled furniture that looks like the labelled classes, a bench at the bed's foot and wall cabinets
    above kitchen counters."""
    rng = room.rng
    for kind, lo, hi in LOOKALIKES.get(room.room_type, []):
        for _ in range(int(rng.integers(lo, hi + 1))):
            parts = LOOKALIKE_BUILDERS[kind](rng)
            if kind == "ottoman" or (kind == "filing_cabinet" and rng.random() < 0.3):
                room.free_standing(kind, parts, margin=0.2, aligned=0.5)
            else:
                room.against_wall(kind, parts)
    for ob in list(room.objects):
        if ob.kind == "bed" and ob.wall is not None and rng.random() < 0.35:
            parts = X.bench(rng)
            lo, hi = X.extent(parts)
            w = ob.wall
            xy = ob.box[:2] + w.n * (ob.box[3] / 2 + (hi[0] - lo[0]) / 2 + rng.uniform(0.02, 0.15))
            room.try_place("bench", parts, xy, w.yaw + rng.normal(0, 0.03), margin=0.01)
        if ob.kind == "counter" and ob.wall is not None and rng.random() < 0.7:
            w = ob.wall
            parts = X.kitchen_wall_cabinets(rng, ob.box[4])
            lo, hi = X.extent(parts)
            room.try_place(
                "wall_cabinet",
                parts,
                w.at(ob.wall_t) + w.n * (-lo[0] + 0.005),
                w.yaw,
                z=rng.uniform(1.4, 1.55),
                check=False,
            )


# Kinds whose top holds clutter, with the clutter menu and the number of items (min, max).
CLUTTER_HOSTS: dict[str, tuple[dict, int, int]] = {
    "table": (X.TOP_CLUTTER, 0, 3),
    "desk": (X.DESK_CLUTTER, 1, 3),
    "dresser": (X.TOP_CLUTTER, 0, 3),
    "night_stand": (X.TOP_CLUTTER, 0, 2),
    "counter": (X.TOP_CLUTTER, 0, 3),
    "cabinet": (X.TOP_CLUTTER, 0, 2),
    "tv_stand": (X.TOP_CLUTTER, 0, 2),
    "bookshelf": (X.TOP_CLUTTER, 0, 2),
    "filing_cabinet": (X.TOP_CLUTTER, 0, 2),
    "bed": ({"laundry": X.laundry, "bag": X.bag, "books": X.books}, 0, 2),
}


def _top_surface(ob: PlacedObject) -> float:
    """Height of an object's top in its front half (a mirror or TV at the back does not count)."""
    R = rot_z(ob.box[6])[:2, :2]
    loc = (ob.vertices[:, :2] - ob.box[:2]) @ R
    front = loc[:, 0] > -ob.box[3] / 4
    return float(ob.vertices[front, 2].max()) if front.any() else float(ob.vertices[:, 2].max())


def _on_top(room: Room, host: PlacedObject, kind: str, parts: PartList) -> None:
    """Set a small object on a host's top, inside its footprint (front three quarters)."""
    rng = room.rng
    lo, hi = X.extent(parts)
    size = hi - lo
    dx, dy = host.box[3], host.box[4]
    if size[0] > 0.75 * dx - 0.02 or size[1] > dy - 0.04:
        return
    lx = rng.uniform(-dx / 4 + size[0] / 2, dx / 2 - size[0] / 2 - 0.01)
    ly = rng.uniform(-dy / 2 + size[1] / 2 + 0.02, dy / 2 - size[1] / 2 - 0.02)
    if host.kind == "bed":
        lx = rng.uniform(-dx / 4, dx / 2 - size[0] / 2 - 0.05)
    xy = host.box[:2] + rot_z(host.box[6])[:2, :2] @ np.array([lx, ly])
    room.try_place(kind, parts, xy, host.box[6] + rng.normal(0, 0.3), z=_top_surface(host), check=False)


def _clutter(room: Room) -> None:
    """Small objects on tops (a lamp on most night stands, a monitor on most desks) and on the floor, and a rug."""
    rng = room.rng
    for host in list(room.objects):
        if host.kind not in CLUTTER_HOSTS:
            continue
        menu, lo, hi = CLUTTER_HOSTS[host.kind]
        names = list(menu)
        if host.kind == "night_stand" and rng.random() < 0.65:
            _on_top(room, host, "lamp", X.lamp(rng))
        if host.kind == "desk" and rng.random() < 0.6:
            _on_top(room, host, "monitor", X.monitor(rng))
        for _ in range(int(rng.integers(lo, hi + 1))):
            name = names[rng.integers(len(names))]
            _on_top(room, host, name, menu[name](rng))
    for _ in range(int(rng.integers(0, 5))):
        names = list(X.FLOOR_CLUTTER)
        name = names[rng.integers(len(names))]
        parts = X.FLOOR_CLUTTER[name](rng)
        if rng.random() < 0.5:
            room.against_wall(name, parts, gap=(0.0, 0.1))
        else:
            room.free_standing(name, parts, margin=0.05, aligned=0.2)
    if rng.random() < 0.35:
        xy = room.random_free_xy(0.3)
        if xy is not None:
            room.try_place("rug", X.rug(rng), xy, rng.uniform(-np.pi, np.pi), check=False)


def _hang(
    room: Room, kind: str, parts: PartList, z0: tuple[float, float], wall: Wall | None = None, t: float | None = None
) -> bool:
    """Hang an item on a wall (on a free stretch of it, or at `t` on `wall`) with its bottom at a height in z0."""
    rng = room.rng
    lo, hi = X.extent(parts)
    width, h = hi[1] - lo[1], hi[2] - lo[2]
    w = wall if wall is not None else room.walls[rng.integers(len(room.walls))]
    if w.length < width + 0.3:
        return False
    if t is None:
        t = rng.uniform(width / 2 + 0.1, w.length - width / 2 - 0.1)
    z = rng.uniform(*z0)
    if z + h > room.height - 0.05:
        return False
    if wall is None and not w.free(t - width / 2, t + width / 2, z - 0.05, z + h):
        return False
    room.try_place(kind, parts, w.at(t) + w.n * (-lo[0] + 0.003), w.yaw, z=z - lo[2], check=False)
    w.used.append((t - width / 2, t + width / 2, z + h))
    return True


def _distance_to_wall(xy: np.ndarray, wall: Wall) -> float:
    """Distance from a floor point to a wall's segment."""
    t = float(np.clip((xy - wall.p0) @ wall.u, 0.0, wall.length))
    return float(np.linalg.norm(xy - wall.at(t)))


def _wall_dressing(room: Room) -> None:
    """More pictures, wall shelves, a mounted TV, a wall mirror, radiators under windows and ceiling lamps."""
    rng = room.rng
    for _ in range(int(rng.integers(1, 4))):
        _hang(room, "picture", F.picture(rng), (1.1, 1.8))
    for _ in range(int(rng.integers(0, 3))):
        _hang(room, "wall_shelf", X.wall_shelf(rng), (1.2, 1.9))
    if rng.random() < 0.3:
        _hang(room, "tv", X.wall_tv(rng), (1.0, 1.5))
    if rng.random() < 0.3:
        _hang(room, "mirror", X.wall_mirror(rng), (0.9, 1.4))
    for ob in [o for o in room.objects if o.kind == "window"]:
        if rng.random() < 0.4:
            w = min(room.walls, key=lambda wl: _distance_to_wall(ob.box[:2], wl))
            tt = float(np.clip((ob.box[:2] - w.p0) @ w.u, 0.3, w.length - 0.3))
            _hang(room, "radiator", X.radiator(rng, min(ob.box[4], 1.2)), (0.1, 0.12), wall=w, t=tt)
    for _ in range(int(rng.integers(0, 3))):
        xy = room.random_free_xy(0.0)
        if xy is not None:
            room.try_place("ceiling_lamp", X.ceiling_lamp(rng), xy, 0.0, z=room.height, check=False)

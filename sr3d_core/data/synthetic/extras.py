"""What makes the synthetic rooms look like real ones: real sizes, the parts and look-alikes of real furniture,
clutter and wall dressing. Each group is used only when its `WorldConfig` factor is on (room.py decides).

Every builder follows furniture.py's conventions: local frame, floor (or the supporting surface) at z = 0,
centred on x and y, front facing +x, width along y.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from sr3d_core.data.synthetic.furniture import _front_panels, _legs, color, shade
from sr3d_core.data.synthetic.mesh import GLASS, MATTE, METAL, MIRROR, SCREEN, PartList

# SUN RGB-D class mean sizes (dx along the heading, dy, dz; metres), as published with VoteNet and used by
# mmdet3d's SUN RGB-D VoteNet config.
SUNRGBD_MEAN_SIZE: dict[str, tuple[float, float, float]] = {
    "bed": (2.114256, 1.620300, 0.927272),
    "table": (0.791118, 1.279516, 0.718182),
    "sofa": (0.923508, 1.867419, 0.845495),
    "chair": (0.591958, 0.552978, 0.827272),
    "toilet": (0.699104, 0.454178, 0.756250),
    "desk": (0.695190, 1.346299, 0.736364),
    "dresser": (0.528526, 1.002642, 1.172878),
    "night_stand": (0.500618, 0.632163, 0.683424),
    "bookshelf": (0.404671, 1.071108, 1.688889),
    "bathtub": (0.765840, 1.398258, 0.472728),
}

# Spread of the log size around the mean (the means are published, the spreads are not: these are assumptions,
# wider across the width of beds (single to king) and sofas (two to four seats)).
SIZE_LOG_STD: dict[str, tuple[float, float, float]] = {
    "bed": (0.08, 0.22, 0.22),
    "table": (0.18, 0.25, 0.08),
    "sofa": (0.12, 0.22, 0.1),
    "chair": (0.15, 0.15, 0.1),
    "toilet": (0.08, 0.1, 0.08),
    "desk": (0.15, 0.2, 0.06),
    "dresser": (0.15, 0.22, 0.18),
    "night_stand": (0.15, 0.18, 0.15),
    "bookshelf": (0.2, 0.3, 0.2),
    "bathtub": (0.1, 0.12, 0.12),
}


def draw_size(kind: str, rng: np.random.Generator) -> np.ndarray:
    """(dx, dy, dz) of one object of a class, log-normal around the published mean, within [0.6, 1.6] x mean."""
    mean = np.asarray(SUNRGBD_MEAN_SIZE[kind])
    z = np.clip(rng.normal(0.0, 1.0, 3), -2.2, 2.2) * np.asarray(SIZE_LOG_STD[kind])
    return mean * np.clip(np.exp(z), 0.6, 1.6)


def fit_size(parts: PartList, size: np.ndarray) -> None:
    """Stretch an object's mesh so its bounding box has the given (dx, dy, dz)."""
    v, _, _ = parts.finish()
    ext = np.maximum(v.max(0) - v.min(0), 1e-3)
    parts.scale(np.asarray(size) / ext)


def extent(parts: PartList) -> tuple[np.ndarray, np.ndarray]:
    """(min corner, max corner) of a part list."""
    v, _, _ = parts.finish()
    return v.min(0), v.max(0)


# ---- parts of labelled furniture ---------------------------------------------------------------------------
def dresser_mirror(rng: np.random.Generator, parts: PartList) -> None:
    """A framed mirror standing on the back of a dresser's top (part of the dresser, as annotated)."""
    lo, hi = extent(parts)
    w = (hi[1] - lo[1]) * rng.uniform(0.5, 0.9)
    h = rng.uniform(0.5, 1.0)
    f = color(rng, "wood")
    x = lo[0] + 0.03
    parts.box((x, 0, hi[2] + h / 2), (0.03, w, h), f)
    parts.box((x + 0.017, 0, hi[2] + h / 2), (0.005, w - 0.08, h - 0.08), np.array([0.7, 0.75, 0.78]), material=MIRROR)


def bed_parts(rng: np.random.Generator, L: float, w: float, fh: float, top: float, c) -> PartList:
    """The parts a real bed adds to the basic frame: a taller, framed headboard, footboard, posts, draped blanket
    and extra pillows (bed frame: x in [-L/2, L/2], width w, mattress top at `top`)."""
    p = PartList()
    style = rng.choice(4)
    hb = rng.uniform(1.0, 1.6)
    t = rng.uniform(0.06, 0.14)
    if style == 0:  # upholstered panel, thick
        p.box_minmax((-L / 2, -w / 2 - 0.04, 0.0), (-L / 2 + t, w / 2 + 0.04, hb), color(rng, "fabric"))
    elif style == 1:  # framed panel with two posts
        p.box_minmax((-L / 2, -w / 2, 0.2), (-L / 2 + 0.04, w / 2, hb - 0.08), shade(c, 0.9))
        for s in (-1, 1):
            p.box((-L / 2 + 0.04, s * (w / 2 + 0.02), hb / 2), (0.08, 0.08, hb), c)
        p.box((-L / 2 + 0.04, 0, hb - 0.04), (0.08, w + 0.12, 0.08), c)
    elif style == 2:  # slatted headboard
        n = int(rng.integers(5, 11))
        for k in range(n):
            y = -w / 2 + (k + 0.5) * w / n
            p.box((-L / 2 + 0.02, y, (fh + hb) / 2), (0.03, w / n * 0.5, hb - fh), c)
        p.box((-L / 2 + 0.02, 0, hb - 0.03), (0.05, w + 0.05, 0.06), c)
    if rng.random() < 0.45:  # footboard, sometimes as tall as a sleigh bed's
        fb = rng.uniform(top - 0.1, top + 0.45)
        p.box_minmax((L / 2 - 0.06, -w / 2, 0.0), (L / 2, w / 2, fb), shade(c, 0.88))
    if rng.random() < 0.15:  # four posts
        ph = rng.uniform(1.6, 2.1)
        for sx in (-1, 1):
            for sy in (-1, 1):
                p.box((sx * (L / 2 - 0.04), sy * (w / 2 + 0.02), ph / 2), (0.07, 0.07, ph), c)
    bl = color(rng, "fabric")
    drop = rng.uniform(0.1, max(0.12, top - 0.1))
    x0 = -L / 2 + rng.uniform(0.45, 0.7)
    for s in (-1, 1):  # blanket hanging over both sides
        p.box_minmax(
            (x0, s * (w / 2 + 0.005) - 0.01, top - drop),
            (L / 2 - 0.04, s * (w / 2 + 0.005) + 0.01, top),
            shade(bl, 0.95),
        )
    p.box_minmax((x0, -w / 2 - 0.01, top - 0.02), (L / 2 - 0.04, w / 2 + 0.01, top + 0.06), bl)
    for k in range(int(rng.integers(2, 5))):  # pillows leaning on the headboard
        y = rng.uniform(-w / 2 + 0.3, w / 2 - 0.3) if w > 0.7 else 0.0
        p.box(
            (-L / 2 + rng.uniform(0.15, 0.35), y, top + rng.uniform(0.06, 0.16)),
            (rng.uniform(0.12, 0.3), rng.uniform(0.4, 0.7), rng.uniform(0.12, 0.4)),
            color(rng, "linen" if rng.random() < 0.6 else "fabric", 0.04),
        )
    return p


# ---- unlabelled look-alikes -----------------------------------------------------------------------------
def wardrobe(rng: np.random.Generator) -> PartList:
    """Tall wardrobe with two or three doors on a plinth."""
    p = PartList()
    w, d, h = rng.uniform(0.8, 2.0), rng.uniform(0.5, 0.65), rng.uniform(1.8, 2.3)
    c = color(rng, "wood" if rng.random() < 0.6 else "white")
    p.box_minmax((-d / 2, -w / 2, 0.06), (d / 2, w / 2, h), c)
    p.box_minmax((-d / 2, -w / 2 + 0.02, 0.0), (d / 2 - 0.03, w / 2 - 0.02, 0.06), shade(c, 0.6))
    _front_panels(p, d, w, 0.07, h - 0.01, int(np.clip(round(w / 0.5), 2, 4)), 1, shade(c, 1.05), color(rng, "metal"))
    if rng.random() < 0.3:
        p.box(
            (d / 2 + 0.018, -w / 4, h * 0.55), (0.005, w * 0.3, h * 0.6), np.array([0.7, 0.75, 0.78]), material=MIRROR
        )
    return p


def tv_stand(rng: np.random.Generator) -> PartList:
    """Low media unit with open bays and drawers, often a TV on top."""
    p = PartList()
    w, d, h = rng.uniform(1.0, 2.0), rng.uniform(0.35, 0.5), rng.uniform(0.4, 0.65)
    c = color(rng, "wood" if rng.random() < 0.5 else ("white" if rng.random() < 0.5 else "metal"))
    p.box_minmax((-d / 2, -w / 2, 0.05), (d / 2, w / 2, 0.08), c)
    p.box_minmax((-d / 2, -w / 2, h - 0.03), (d / 2, w / 2, h), c)
    p.box_minmax((-d / 2, -w / 2, 0.05), (-d / 2 + 0.02, w / 2, h), shade(c, 0.8))
    for y in np.linspace(-w / 2 + 0.015, w / 2 - 0.015, int(rng.integers(2, 5))):
        p.box((0, y, (h + 0.05) / 2), (d, 0.03, h - 0.05), c)
    _legs(p, d, w, 0.05, 0.04, shade(c, 0.6))
    if rng.random() < 0.5:
        _front_panels(p, d, w / 2, 0.09, h - 0.04, 1, 2, shade(c, 1.05), color(rng, "metal"))
    if rng.random() < 0.75:
        p.extend(television(rng, h))
    return p


def television(rng: np.random.Generator, z0: float = 0.0) -> PartList:
    """A flat TV on a foot, standing at height z0."""
    p = PartList()
    tw = rng.uniform(0.7, 1.4)
    th = tw * 0.58
    p.box((0, 0, z0 + 0.01), (0.22, 0.3, 0.02), color(rng, "metal"))
    p.box((0, 0, z0 + 0.06), (0.05, 0.06, 0.1), color(rng, "metal"))
    p.box((0, 0, z0 + 0.1 + th / 2), (0.05, tw, th), np.array([0.08, 0.08, 0.09]))
    p.box((0.027, 0, z0 + 0.1 + th / 2), (0.004, tw - 0.03, th - 0.03), np.array([0.05, 0.05, 0.06]), material=SCREEN)
    return p


def kitchen_wall_cabinets(rng: np.random.Generator, w: float) -> PartList:
    """Upper kitchen cabinets (0.3-0.35 deep), bottom at z = 0 of the part list (placement lifts them)."""
    p = PartList()
    d, h = rng.uniform(0.3, 0.36), rng.uniform(0.6, 0.8)
    c = color(rng, "white" if rng.random() < 0.5 else "wood")
    p.box_minmax((-d / 2, -w / 2, 0.0), (d / 2, w / 2, h), c)
    _front_panels(p, d, w, 0.01, h - 0.01, max(1, int(round(w / 0.5))), 1, shade(c, 1.05), color(rng, "metal"))
    return p


def bench(rng: np.random.Generator) -> PartList:
    """Upholstered bench or chest at the foot of a bed."""
    p = PartList()
    w, d, h = rng.uniform(0.9, 1.6), rng.uniform(0.35, 0.5), rng.uniform(0.4, 0.52)
    c = color(rng, "fabric" if rng.random() < 0.6 else "wood")
    if rng.random() < 0.5:
        _legs(p, d, w, h - 0.12, 0.05, color(rng, "wood"), inset=0.02)
        p.box_minmax((-d / 2, -w / 2, h - 0.12), (d / 2, w / 2, h), c)
    else:
        p.box_minmax((-d / 2, -w / 2, 0.0), (d / 2, w / 2, h), c)
        p.box_minmax((-d / 2 - 0.01, -w / 2 - 0.01, h - 0.04), (d / 2 + 0.01, w / 2 + 0.01, h), shade(c, 0.9))
    return p


def ottoman(rng: np.random.Generator) -> PartList:
    """Pouf or footstool."""
    p = PartList()
    c = color(rng, "fabric")
    if rng.random() < 0.5:
        p.cylinder((0, 0, 0.22), rng.uniform(0.22, 0.35), rng.uniform(0.35, 0.45), c, sides=12)
    else:
        a = rng.uniform(0.45, 0.8)
        p.box((0, 0, 0.21), (a, a * rng.uniform(0.8, 1.2), 0.42), c)
    return p


def filing_cabinet(rng: np.random.Generator) -> PartList:
    """Office drawer unit: a metal or wooden box with drawers (a night-stand and dresser look-alike)."""
    p = PartList()
    w, d, h = rng.uniform(0.4, 0.5), rng.uniform(0.5, 0.65), rng.uniform(0.6, 1.35)
    c = color(rng, "metal" if rng.random() < 0.6 else "wood")
    p.box_minmax((-d / 2, -w / 2, 0.02), (d / 2, w / 2, h), c)
    _front_panels(p, d, w, 0.03, h - 0.01, 1, int(np.clip(round(h / 0.3), 2, 5)), shade(c, 1.05), shade(c, 0.5))
    return p


def shoe_rack(rng: np.random.Generator) -> PartList:
    """Open low rack with shoes."""
    p = PartList()
    w, d, h = rng.uniform(0.6, 1.0), rng.uniform(0.25, 0.35), rng.uniform(0.4, 0.8)
    c = color(rng, "wood" if rng.random() < 0.5 else "metal")
    for s in (-1, 1):
        p.box((0, s * (w / 2 - 0.01), h / 2), (d, 0.02, h), c)
    for z in np.linspace(0.05, h - 0.01, int(rng.integers(2, 4))):
        p.box((0, 0, z), (d, w - 0.04, 0.02), c)
        for y in np.arange(-w / 2 + 0.12, w / 2 - 0.1, 0.18):
            p.box((0, y, z + 0.05), (0.26, 0.09, 0.08), color(rng, "fabric"))
    return p


# ---- clutter ------------------------------------------------------------------------------------------------
def lamp(rng: np.random.Generator) -> PartList:
    """Table lamp: base, stem and a shade."""
    p = PartList()
    h = rng.uniform(0.35, 0.7)
    c = color(rng, "ceramic" if rng.random() < 0.5 else "metal")
    p.cylinder((0, 0, 0.03), rng.uniform(0.06, 0.1), 0.06, c, sides=8)
    p.cylinder((0, 0, h * 0.4), 0.015, h * 0.7, c, sides=6)
    r = rng.uniform(0.12, 0.22)
    p.cylinder((0, 0, h - r * 0.6), r, r * 1.2, color(rng, "linen", 0.05), sides=12)
    return p


def books(rng: np.random.Generator) -> PartList:
    """A stack of books lying flat."""
    p = PartList()
    z = 0.0
    for _ in range(int(rng.integers(1, 6))):
        t = rng.uniform(0.015, 0.05)
        centre = (rng.normal(0, 0.01), rng.normal(0, 0.01), z + t / 2)
        size = (rng.uniform(0.15, 0.25), rng.uniform(0.2, 0.3), t)
        p.box(centre, size, np.clip(rng.uniform(0.05, 0.95, 3), 0, 1), yaw=float(rng.normal(0, 0.15)))
        z += t
    return p


def small_box(rng: np.random.Generator) -> PartList:
    """Cardboard or storage box."""
    p = PartList()
    a, b, h = rng.uniform(0.12, 0.5), rng.uniform(0.12, 0.45), rng.uniform(0.08, 0.4)
    c = np.array([0.62, 0.48, 0.3]) + rng.normal(0, 0.05, 3) if rng.random() < 0.5 else color(rng, "plastic")
    p.box((0, 0, h / 2), (a, b, h), np.clip(c, 0, 1))
    return p


def bottles(rng: np.random.Generator) -> PartList:
    """A few bottles, cups or vases."""
    p = PartList()
    for _ in range(int(rng.integers(1, 4))):
        h, r = rng.uniform(0.08, 0.32), rng.uniform(0.03, 0.05)
        x, y = rng.uniform(-0.1, 0.1, 2)
        mat = GLASS if rng.random() < 0.3 else MATTE
        p.cylinder(
            (x, y, h / 2), r, h, color(rng, "plastic" if rng.random() < 0.5 else "ceramic"), sides=8, material=mat
        )
    return p


def monitor(rng: np.random.Generator) -> PartList:
    """Computer monitor or open laptop."""
    if rng.random() < 0.4:
        p = PartList()
        w = rng.uniform(0.3, 0.38)
        c = color(rng, "metal")
        p.box((0, 0, 0.01), (0.23, w, 0.02), c)
        p.box((-0.12, 0, 0.12), (0.015, w, 0.21), c, yaw=0.0)
        p.box((-0.11, 0, 0.12), (0.003, w - 0.02, 0.19), np.array([0.06, 0.06, 0.07]), material=SCREEN)
        return p
    return _monitor(rng)


def _monitor(rng: np.random.Generator) -> PartList:
    p = PartList()
    tw = rng.uniform(0.45, 0.7)
    th = tw * rng.uniform(0.55, 0.65)
    p.box((0, 0, 0.01), (0.2, 0.25, 0.02), color(rng, "metal"))
    p.box((-0.03, 0, 0.1), (0.03, 0.05, 0.18), color(rng, "metal"))
    p.box((0, 0, 0.12 + th / 2), (0.04, tw, th), np.array([0.08, 0.08, 0.09]))
    p.box((0.022, 0, 0.12 + th / 2), (0.003, tw - 0.02, th - 0.02), np.array([0.05, 0.05, 0.06]), material=SCREEN)
    return p


def plant(rng: np.random.Generator) -> PartList:
    """Pot plant: a pot and a bushy crown of small boxes."""
    p = PartList()
    r, h = rng.uniform(0.06, 0.2), rng.uniform(0.1, 0.35)
    p.cylinder((0, 0, h / 2), r, h, color(rng, "ceramic" if rng.random() < 0.5 else "plastic"), sides=8)
    green = np.array([0.2, 0.45, 0.15])
    crown = rng.uniform(0.15, 0.8)
    for _ in range(int(rng.integers(6, 16))):
        s = rng.uniform(0.05, 0.15)
        c = np.clip(green + rng.normal(0, 0.06, 3), 0, 1)
        p.box(
            (rng.normal(0, r), rng.normal(0, r), h + rng.uniform(0, crown)),
            (s, s, s),
            c,
            yaw=float(rng.uniform(0, np.pi)),
        )
    return p


def bag(rng: np.random.Generator) -> PartList:
    """A bag or backpack: a soft lump."""
    p = PartList()
    a, b, h = rng.uniform(0.25, 0.45), rng.uniform(0.12, 0.3), rng.uniform(0.25, 0.5)
    c = color(rng, "fabric")
    p.box((0, 0, h * 0.45), (a, b, h * 0.9), c)
    p.box((0, 0, h * 0.93), (a * 0.8, b * 0.8, h * 0.14), shade(c, 0.9))
    return p


def laundry(rng: np.random.Generator) -> PartList:
    """A pile of clothes: a few overlapping flat lumps."""
    p = PartList()
    for _ in range(int(rng.integers(2, 6))):
        a = rng.uniform(0.2, 0.5)
        t = rng.uniform(0.03, 0.1)
        p.box(
            (rng.normal(0, 0.1), rng.normal(0, 0.1), t / 2 + rng.uniform(0, 0.05)),
            (a, a * rng.uniform(0.5, 1), t),
            color(rng, "fabric", 0.1),
            yaw=float(rng.uniform(0, np.pi)),
        )
    return p


def rug(rng: np.random.Generator) -> PartList:
    """A thin rug on the floor."""
    p = PartList()
    p.box((0, 0, 0.005), (rng.uniform(0.8, 2.5), rng.uniform(0.6, 2.0), 0.01), color(rng, "fabric", 0.1))
    return p


# Clutter on tops and shelves, and on the floor.
TOP_CLUTTER: dict[str, Callable[[np.random.Generator], PartList]] = {
    "books": books,
    "box": small_box,
    "bottles": bottles,
    "lamp": lamp,
    "plant": plant,
    "bag": bag,
    "laundry": laundry,
}
DESK_CLUTTER: dict[str, Callable[[np.random.Generator], PartList]] = {
    "monitor": monitor,
    "books": books,
    "lamp": lamp,
    "bottles": bottles,
    "box": small_box,
}
FLOOR_CLUTTER: dict[str, Callable[[np.random.Generator], PartList]] = {
    "box": small_box,
    "bag": bag,
    "laundry": laundry,
    "plant": plant,
}


# ---- wall dressing -------------------------------------------------------------------------------------------
def wall_shelf(rng: np.random.Generator) -> PartList:
    """A wall-mounted shelf with books or objects; back at -x, bottom at z = 0 (placement lifts it)."""
    p = PartList()
    w, d = rng.uniform(0.5, 1.3), rng.uniform(0.18, 0.3)
    c = color(rng, "wood" if rng.random() < 0.6 else "white")
    p.box((0, 0, 0.01), (d, w, 0.02), c)
    y = -w / 2 + 0.02
    while y < w / 2 - 0.08:
        if rng.random() < 0.6:
            bw, bh = rng.uniform(0.02, 0.05), rng.uniform(0.15, 0.28)
            p.box((-d / 2 + 0.09, y + bw / 2, 0.02 + bh / 2), (0.16, bw, bh), np.clip(rng.uniform(0.05, 0.95, 3), 0, 1))
            y += bw + 0.003
        else:
            y += rng.uniform(0.08, 0.3)
    return p


def wall_mirror(rng: np.random.Generator) -> PartList:
    """A framed wall mirror; back at -x, bottom at z = 0."""
    p = PartList()
    w, h = rng.uniform(0.4, 1.0), rng.uniform(0.5, 1.2)
    f = color(rng, "wood" if rng.random() < 0.5 else "metal")
    p.box((0, 0, h / 2), (0.03, w, h), f)
    p.box((0.017, 0, h / 2), (0.005, w - 0.08, h - 0.08), np.array([0.7, 0.75, 0.78]), material=MIRROR)
    return p


def radiator(rng: np.random.Generator, w: float) -> PartList:
    """A ribbed radiator under a window; back at -x."""
    p = PartList()
    h = rng.uniform(0.4, 0.6)
    c = color(rng, "white", 0.02)
    for y in np.arange(-w / 2 + 0.03, w / 2 - 0.02, 0.06):
        p.box((0, y, 0.15 + h / 2), (0.08, 0.04, h), c, material=METAL)
    return p


def wall_tv(rng: np.random.Generator) -> PartList:
    """A wall-mounted flat TV; back at -x, bottom at z = 0."""
    p = PartList()
    tw = rng.uniform(0.8, 1.5)
    th = tw * 0.58
    p.box((0, 0, th / 2), (0.05, tw, th), np.array([0.08, 0.08, 0.09]))
    p.box((0.027, 0, th / 2), (0.004, tw - 0.03, th - 0.03), np.array([0.05, 0.05, 0.06]), material=SCREEN)
    return p


def ceiling_lamp(rng: np.random.Generator) -> PartList:
    """A pendant lamp: cord and shade; top at z = 0 (placement hangs it from the ceiling)."""
    p = PartList()
    cord = rng.uniform(0.2, 0.8)
    p.cylinder((0, 0, -cord / 2), 0.006, cord, color(rng, "metal"), sides=6)
    r = rng.uniform(0.15, 0.3)
    p.cylinder((0, 0, -cord - r * 0.4), r, r * 0.8, color(rng, "linen" if rng.random() < 0.5 else "metal"), sides=12)
    return p

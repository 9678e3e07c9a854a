"""Parametric furniture: every ScanNet (18) and SUN RGB-D (10) class built from boxes and cylinders.

Each builder draws its own dimensions from ranges close to real furniture and returns a
`PartList` in the object's local frame: floor at z = 0, centred on x and y, front facing +x
(the heading), width along y. Placement (room.py) rotates and moves the finished mesh.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from sr3d_core.data.synthetic.mesh import GLASS, PartList

# Base colours per material (RGB in [0, 1]); each object draws one and adds noise.
PALETTES: dict[str, np.ndarray] = {
    "wood": np.array(
        [
            [0.55, 0.36, 0.20],
            [0.70, 0.50, 0.30],
            [0.40, 0.26, 0.15],
            [0.82, 0.68, 0.48],
            [0.30, 0.20, 0.12],
            [0.62, 0.45, 0.32],
        ]
    ),
    "white": np.array([[0.92, 0.92, 0.90], [0.85, 0.85, 0.83], [0.95, 0.93, 0.88]]),
    "fabric": np.array(
        [
            [0.30, 0.35, 0.50],
            [0.60, 0.20, 0.20],
            [0.50, 0.50, 0.50],
            [0.75, 0.70, 0.60],
            [0.20, 0.40, 0.30],
            [0.15, 0.15, 0.17],
            [0.80, 0.60, 0.40],
            [0.45, 0.30, 0.45],
        ]
    ),
    "metal": np.array([[0.60, 0.60, 0.62], [0.30, 0.30, 0.32], [0.12, 0.12, 0.12], [0.75, 0.75, 0.76]]),
    "ceramic": np.array([[0.96, 0.96, 0.96], [0.90, 0.90, 0.87], [0.93, 0.95, 0.97]]),
    "plastic": np.array(
        [[0.20, 0.20, 0.20], [0.10, 0.30, 0.60], [0.70, 0.70, 0.70], [0.20, 0.50, 0.20], [0.80, 0.75, 0.30]]
    ),
    "paint": np.array(
        [
            [0.90, 0.88, 0.82],
            [0.80, 0.84, 0.86],
            [0.88, 0.82, 0.72],
            [0.75, 0.80, 0.70],
            [0.95, 0.95, 0.95],
            [0.70, 0.72, 0.78],
        ]
    ),
    "floor": np.array(
        [
            [0.55, 0.40, 0.25],
            [0.45, 0.45, 0.45],
            [0.70, 0.62, 0.50],
            [0.30, 0.30, 0.35],
            [0.80, 0.78, 0.72],
            [0.50, 0.30, 0.20],
        ]
    ),
    "linen": np.array(
        [[0.95, 0.95, 0.95], [0.80, 0.85, 0.95], [0.90, 0.80, 0.70], [0.60, 0.70, 0.60], [0.85, 0.60, 0.60]]
    ),
}


def color(rng: np.random.Generator, material: str, jitter: float = 0.05) -> np.ndarray:
    """Draw one colour of a material with per-object noise."""
    pal = PALETTES[material]
    c = pal[rng.integers(len(pal))] + rng.normal(0.0, jitter, 3)
    return np.clip(c, 0.0, 1.0)


def shade(c: np.ndarray, f: float) -> np.ndarray:
    """Darken (f < 1) or lighten a colour, e.g. for trims and handles."""
    return np.clip(c * f, 0.0, 1.0)


def _legs(p: PartList, dx: float, dy: float, h: float, t: float, c, inset: float = 0.0, round_: bool = False) -> None:
    """Four legs of height h and thickness t at the corners of a dx x dy footprint."""
    for sx in (-1, 1):
        for sy in (-1, 1):
            x = sx * (dx / 2 - t / 2 - inset)
            y = sy * (dy / 2 - t / 2 - inset)
            if round_:
                p.cylinder((x, y, h / 2), t / 2, h, c, sides=8)
            else:
                p.box((x, y, h / 2), (t, t, h), c)


def _sheet(p: PartList, width: float, z0: float, z1: float, c, rng: np.random.Generator, depth: float = 0.08) -> None:
    """A pleated hanging sheet along y (curtains): a zig-zag of thin panels between x=0 and x=depth."""
    n = max(4, int(width / 0.09))
    ys = np.linspace(-width / 2, width / 2, n + 1)
    xs = np.where(np.arange(n + 1) % 2 == 0, -depth / 2, depth / 2) + rng.normal(0, 0.005, n + 1)
    h = z1 - z0
    for i in range(n):
        a = np.array([xs[i], ys[i]])
        b = np.array([xs[i + 1], ys[i + 1]])
        d = b - a
        p.box(
            ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, z0 + h / 2),
            (np.hypot(*d) + 0.004, 0.012, h),
            c,
            yaw=float(np.arctan2(d[1], d[0])),
        )


def chair(rng: np.random.Generator) -> PartList:
    """Dining chair, office swivel chair or upholstered armchair."""
    p = PartList()
    style = rng.choice(3, p=[0.5, 0.3, 0.2])
    if style == 2:  # armchair
        w, d = rng.uniform(0.70, 0.90), rng.uniform(0.72, 0.90)
        seat, back, arm = rng.uniform(0.40, 0.46), rng.uniform(0.80, 0.98), rng.uniform(0.55, 0.66)
        c = color(rng, "fabric")
        aw, bd = rng.uniform(0.12, 0.18), rng.uniform(0.15, 0.22)
        _legs(p, d, w, 0.08, 0.05, color(rng, "wood"), inset=0.02)
        p.box_minmax((-d / 2, -w / 2 + aw, 0.08), (d / 2, w / 2 - aw, seat - 0.1), shade(c, 0.9))
        p.box_minmax((-d / 2 + bd, -w / 2 + aw, seat - 0.1), (d / 2, w / 2 - aw, seat), c)  # cushion
        p.box_minmax((-d / 2, -w / 2 + aw, 0.08), (-d / 2 + bd, w / 2 - aw, back), shade(c, 0.95))
        for s in (-1, 1):
            p.box_minmax(
                (-d / 2, -w / 2 if s < 0 else w / 2 - aw, 0.08),
                (d / 2, -w / 2 + aw if s < 0 else w / 2, arm),
                shade(c, 0.92),
            )
        return p
    w, d = rng.uniform(0.42, 0.52), rng.uniform(0.42, 0.52)
    seat, back = rng.uniform(0.43, 0.49), rng.uniform(0.80, 1.00)
    if style == 1:  # office chair: star base, column, thick seat, back on a post
        m = color(rng, "metal")
        c = color(rng, "fabric" if rng.random() < 0.6 else "plastic")
        r = rng.uniform(0.27, 0.32)
        for k in range(5):
            a = 2 * np.pi * k / 5 + rng.uniform(0, 0.3)
            p.rod((0, 0, 0.07), (r * np.cos(a), r * np.sin(a), 0.05), 0.018, m)
            p.cylinder((r * np.cos(a), r * np.sin(a), 0.025), 0.025, 0.05, shade(m, 0.5), sides=6)
        p.cylinder((0, 0, (seat - 0.07) / 2 + 0.04), 0.025, seat - 0.11, m, sides=8)
        p.box((0, 0, seat - 0.04), (d, w, 0.08), c)
        p.box((-d / 2 + 0.02, 0, seat + 0.1), (0.04, 0.06, 0.2), m)
        p.box((-d / 2 + 0.03, 0, (seat + 0.18 + back) / 2), (0.07, w * 0.95, back - seat - 0.18), c)
        if rng.random() < 0.6:
            for s in (-1, 1):
                p.box((0.0, s * (w / 2 + 0.02), seat + 0.2), (0.26, 0.05, 0.03), shade(m, 0.6))
                p.box((-0.02, s * (w / 2 + 0.02), seat + 0.09), (0.03, 0.03, 0.2), shade(m, 0.6))
        return p
    # dining chair: four legs, slab seat, two back posts and a panel or slats
    c = color(rng, "wood" if rng.random() < 0.7 else "metal")
    seat_c = c if rng.random() < 0.6 else color(rng, "fabric")
    t = rng.uniform(0.03, 0.045)
    round_ = bool(rng.random() < 0.4)
    _legs(p, d, w, seat - 0.035, t, c, round_=round_)
    p.box((0, 0, seat - 0.02), (d, w, 0.04), seat_c)
    for s in (-1, 1):
        p.box((-d / 2 + t / 2, s * (w / 2 - t / 2), (seat + back) / 2), (t, t, back - seat), c)
    if rng.random() < 0.6:
        ph = rng.uniform(0.15, 0.3)
        p.box((-d / 2 + 0.015, 0, back - ph / 2 - 0.02), (0.025, w - 2 * t, ph), seat_c)
    else:
        for k in range(3):
            p.box((-d / 2 + 0.015, -w / 4 + k * w / 4, (seat + back) / 2 + 0.03), (0.02, 0.03, back - seat - 0.06), c)
        p.box((-d / 2 + 0.015, 0, back - 0.03), (0.03, w - 2 * t, 0.06), c)
    return p


def table(rng: np.random.Generator, kind: str | None = None) -> PartList:
    """Dining / round / coffee / conference table; `kind` forces a style."""
    p = PartList()
    kind = kind or rng.choice(["rect", "rect", "round", "coffee"])
    c = color(rng, "wood" if rng.random() < 0.75 else "white")
    legc = c if rng.random() < 0.7 else color(rng, "metal")
    th = rng.uniform(0.03, 0.05)
    if kind == "round":
        r, h = rng.uniform(0.4, 0.6), rng.uniform(0.72, 0.76)
        p.cylinder((0, 0, h - th / 2), r, th, c, sides=16)
        p.cylinder((0, 0, h / 2), 0.05, h - th, legc, sides=8)
        p.cylinder((0, 0, 0.02), r * 0.55, 0.04, legc, sides=12)
        return p
    if kind == "coffee":
        d, w, h = rng.uniform(0.45, 0.7), rng.uniform(0.8, 1.3), rng.uniform(0.38, 0.48)
    elif kind == "conference":
        d, w, h = rng.uniform(1.0, 1.4), rng.uniform(2.2, 3.6), rng.uniform(0.72, 0.76)
    else:
        d, w, h = rng.uniform(0.7, 1.0), rng.uniform(0.9, 1.8), rng.uniform(0.72, 0.77)
    p.box((0, 0, h - th / 2), (d, w, th), c)
    t = rng.uniform(0.05, 0.08)
    _legs(p, d, w, h - th, t, legc, inset=0.04, round_=bool(rng.random() < 0.3))
    if kind != "coffee" and rng.random() < 0.6:  # apron under the top
        for s in (-1, 1):
            p.box((0, s * (w / 2 - 0.06), h - th - 0.05), (d - 0.12, 0.02, 0.1), shade(c, 0.9))
            p.box((s * (d / 2 - 0.06), 0, h - th - 0.05), (0.02, w - 0.12, 0.1), shade(c, 0.9))
    if kind == "coffee" and rng.random() < 0.5:  # lower shelf
        p.box((0, 0, 0.12), (d - 0.1, w - 0.1, 0.02), shade(c, 0.9))
    return p


def desk(rng: np.random.Generator) -> PartList:
    """Writing desk: top, a drawer pedestal or panel legs, a modesty panel at the back."""
    p = PartList()
    d, w, h = rng.uniform(0.55, 0.8), rng.uniform(1.0, 1.6), rng.uniform(0.72, 0.77)
    c = color(rng, "wood" if rng.random() < 0.6 else "white")
    th = 0.03
    p.box((0, 0, h - th / 2), (d, w, th), c)
    side = rng.choice([-1, 1])
    pw = rng.uniform(0.38, 0.45)
    if rng.random() < 0.6:  # drawer pedestal on one side, panel on the other
        p.box((0, side * (w / 2 - pw / 2), (h - th) / 2), (d - 0.02, pw, h - th), shade(c, 0.95))
        for k in range(3):
            z = 0.1 + k * (h - th - 0.1) / 3
            p.box(
                (d / 2 - 0.005, side * (w / 2 - pw / 2), z + 0.1),
                (0.015, pw - 0.04, (h - 0.2) / 3 - 0.02),
                shade(c, 1.05),
            )
            p.box((d / 2 + 0.01, side * (w / 2 - pw / 2), z + 0.18), (0.02, 0.1, 0.02), color(rng, "metal"))
        p.box((0, -side * (w / 2 - 0.015), (h - th) / 2), (d - 0.02, 0.03, h - th), c)
    else:
        m = color(rng, "metal") if rng.random() < 0.5 else c
        _legs(p, d, w, h - th, 0.05, m, inset=0.02)
    p.box((-d / 2 + 0.1, 0, h - th - 0.2), (0.015, w - 0.1, 0.35), shade(c, 0.9))
    return p


BedParts = Callable[[np.random.Generator, float, float, float, float, np.ndarray], PartList]


def bed(rng: np.random.Generator, parts: BedParts | None = None) -> PartList:
    """Bed: frame, mattress, blanket, pillows and a headboard at the back (-x, against the wall).

    Args:
        rng: Generator.
        parts: Builds the detailed parts instead of the plain headboard, from (rng, length, width, frame
            height, mattress top, colour); None for the plain bed.
    """
    p = PartList()
    L, w = rng.uniform(1.95, 2.2), rng.choice([rng.uniform(0.9, 1.1), rng.uniform(1.35, 1.9)])
    fh, mh = rng.uniform(0.22, 0.38), rng.uniform(0.18, 0.26)
    hb = rng.uniform(0.85, 1.25)
    c = color(rng, "wood" if rng.random() < 0.6 else "fabric")
    p.box_minmax((-L / 2, -w / 2, 0.06), (L / 2, w / 2, fh), c)
    _legs(p, L, w, 0.06, 0.06, shade(c, 0.7))
    if parts is None:
        p.box_minmax((-L / 2, -w / 2, 0.0), (-L / 2 + 0.07, w / 2, hb), shade(c, 0.92))  # headboard
    if rng.random() < 0.5:
        p.box_minmax((L / 2 - 0.05, -w / 2, 0.0), (L / 2, w / 2, fh + 0.2), shade(c, 0.92))  # footboard
    top = fh + mh
    p.box_minmax((-L / 2 + 0.08, -w / 2 + 0.02, fh), (L / 2 - 0.06, w / 2 - 0.02, top), color(rng, "linen", 0.02))
    bl = color(rng, "fabric")
    x0 = -L / 2 + rng.uniform(0.5, 0.8)
    p.box_minmax((x0, -w / 2 - 0.005, top - 0.12), (L / 2 - 0.055, w / 2 + 0.005, top + 0.04), bl)
    npil = 1 if w < 1.2 else 2
    for k in range(npil):
        y = 0.0 if npil == 1 else (k - 0.5) * w / 2
        p.box((-L / 2 + 0.3, y, top + 0.07), (0.38, min(0.65, w / npil - 0.08), 0.14), color(rng, "linen", 0.02))
    if parts is not None:
        p.extend(parts(rng, L, w, fh, top, c))
    return p


def sofa(rng: np.random.Generator) -> PartList:
    """Sofa: plinth, seat cushions, back and two arms; back at -x."""
    p = PartList()
    w, d, h = rng.uniform(1.5, 2.4), rng.uniform(0.8, 0.98), rng.uniform(0.75, 0.92)
    seat, arm = rng.uniform(0.40, 0.46), rng.uniform(0.55, 0.68)
    aw, bd = rng.uniform(0.12, 0.22), rng.uniform(0.18, 0.25)
    c = color(rng, "fabric")
    _legs(p, d, w, 0.07, 0.05, color(rng, "wood"), inset=0.03)
    p.box_minmax((-d / 2, -w / 2, 0.07), (d / 2, w / 2, seat - 0.12), shade(c, 0.85))
    n = 2 if w < 1.9 else 3
    cw = (w - 2 * aw) / n
    for k in range(n):
        y0 = -w / 2 + aw + k * cw
        p.box_minmax((-d / 2 + bd, y0 + 0.005, seat - 0.12), (d / 2 - 0.01, y0 + cw - 0.005, seat), c)
        p.box_minmax((-d / 2 + bd - 0.12, y0 + 0.005, seat), (-d / 2 + bd, y0 + cw - 0.005, h - 0.05), shade(c, 1.05))
    p.box_minmax((-d / 2, -w / 2, 0.07), (-d / 2 + bd, w / 2, h), shade(c, 0.95))
    for s in (-1, 1):
        y0, y1 = (-w / 2, -w / 2 + aw) if s < 0 else (w / 2 - aw, w / 2)
        p.box_minmax((-d / 2, y0, 0.07), (d / 2, y1, arm), shade(c, 0.92))
    return p


def _front_panels(
    p: PartList, d: float, w: float, z0: float, z1: float, cols: int, rows: int, c, handle_c, gap: float = 0.008
) -> None:
    """Doors or drawer fronts on the +x face of a carcass, with small handles."""
    cw, rh = w / cols, (z1 - z0) / rows
    for i in range(cols):
        for j in range(rows):
            y = -w / 2 + (i + 0.5) * cw
            z = z0 + (j + 0.5) * rh
            p.box((d / 2 + 0.008, y, z), (0.016, cw - gap, rh - gap), c)
            if rows > 1:
                p.box((d / 2 + 0.025, y, z + rh * 0.2), (0.02, min(0.12, cw * 0.4), 0.02), handle_c)
            else:
                hy = y + (cw / 2 - 0.05) * (1 if i % 2 == 0 else -1)
                p.box((d / 2 + 0.025, hy, z + rh * 0.25), (0.02, 0.02, min(0.15, rh * 0.3)), handle_c)


def cabinet(rng: np.random.Generator) -> PartList:
    """Low or tall storage cabinet with doors."""
    p = PartList()
    tall = rng.random() < 0.35
    w, d = rng.uniform(0.4, 1.4), rng.uniform(0.35, 0.6)
    h = rng.uniform(1.5, 2.05) if tall else rng.uniform(0.55, 1.05)
    c = color(rng, "wood" if rng.random() < 0.5 else ("white" if rng.random() < 0.6 else "metal"))
    p.box_minmax((-d / 2, -w / 2, 0.08), (d / 2, w / 2, h), c)
    p.box_minmax((-d / 2, -w / 2 + 0.03, 0.0), (d / 2 - 0.05, w / 2 - 0.03, 0.08), shade(c, 0.6))
    cols = 1 if w < 0.55 else 2
    _front_panels(p, d, w, 0.09, h - 0.01, cols, rng.choice([1, 2]) if tall else 1, shade(c, 1.06), color(rng, "metal"))
    return p


def dresser(rng: np.random.Generator) -> PartList:
    """Chest of drawers."""
    p = PartList()
    w, d, h = rng.uniform(0.8, 1.6), rng.uniform(0.4, 0.55), rng.uniform(0.72, 1.15)
    c = color(rng, "wood" if rng.random() < 0.7 else "white")
    p.box_minmax((-d / 2, -w / 2, 0.1), (d / 2, w / 2, h - 0.03), c)
    p.box_minmax((-d / 2, -w / 2 - 0.01, h - 0.03), (d / 2 + 0.015, w / 2 + 0.01, h), shade(c, 0.9))
    _legs(p, d, w, 0.1, 0.05, shade(c, 0.8), inset=0.02)
    _front_panels(
        p, d, w, 0.11, h - 0.04, 1 if w < 1.1 else 2, int(rng.integers(3, 6)), shade(c, 1.05), color(rng, "metal")
    )
    return p


def night_stand(rng: np.random.Generator) -> PartList:
    """Bedside table with one or two drawers and an open shelf."""
    p = PartList()
    w, d, h = rng.uniform(0.38, 0.6), rng.uniform(0.33, 0.48), rng.uniform(0.45, 0.66)
    c = color(rng, "wood" if rng.random() < 0.7 else "white")
    leg = rng.uniform(0.05, 0.15)
    _legs(p, d, w, leg, 0.035, shade(c, 0.8))
    p.box_minmax((-d / 2, -w / 2, leg), (d / 2, w / 2, h), c)
    nd = int(rng.integers(1, 3))
    _front_panels(p, d, w, h - 0.16 * nd, h - 0.01, 1, nd, shade(c, 1.06), color(rng, "metal"))
    return p


def bookshelf(rng: np.random.Generator) -> PartList:
    """Open shelving unit with books on its shelves."""
    p = PartList()
    w, d, h = rng.uniform(0.6, 1.3), rng.uniform(0.26, 0.4), rng.uniform(1.0, 2.1)
    c = color(rng, "wood" if rng.random() < 0.7 else "white")
    t = 0.02
    for s in (-1, 1):
        p.box((0, s * (w / 2 - t / 2), h / 2), (d, t, h), c)
    p.box((-d / 2 + 0.005, 0, h / 2), (0.01, w - 2 * t, h), shade(c, 0.85))
    n = max(2, int(round(h / rng.uniform(0.3, 0.4))))
    zs = np.linspace(0.06, h - t / 2, n + 1)
    p.box((0.0, 0, 0.03), (d, w - 2 * t, 0.06), shade(c, 0.9))
    for z in zs[1:]:
        p.box((0, 0, z), (d, w - 2 * t, t), c)
    for a, b in zip(zs[:-1], zs[1:]):
        gap = b - a - t
        y = -w / 2 + t + rng.uniform(0, 0.05)
        while True:
            bw = rng.uniform(0.02, 0.05)
            if y + bw > w / 2 - t - 0.01:
                break
            if rng.random() < 0.8:
                bh, bd = gap * rng.uniform(0.55, 0.9), rng.uniform(0.15, min(0.25, d - 0.03))
                p.box(
                    (-d / 2 + 0.01 + bd / 2, y + bw / 2, a + t / 2 + bh / 2),
                    (bd, bw, bh),
                    np.clip(rng.uniform(0.1, 0.9, 3), 0, 1),
                )
                y += bw + 0.002
            else:
                y += rng.uniform(0.05, 0.2)
    return p


def picture(rng: np.random.Generator) -> PartList:
    """Framed picture, back against the wall at x = -dx/2, bottom at z = 0 (placement lifts it)."""
    p = PartList()
    w, h, t = rng.uniform(0.3, 1.2), rng.uniform(0.3, 0.9), rng.uniform(0.02, 0.04)
    f = color(rng, "wood" if rng.random() < 0.5 else "metal")
    b = rng.uniform(0.025, 0.06)
    for s in (-1, 1):
        p.box((0, s * (w / 2 - b / 2), h / 2), (t, b, h), f)
        p.box((0, 0, h / 2 + s * (h / 2 - b / 2)), (t, w - 2 * b, b), f)
    nx, nz = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    cw, ch = (w - 2 * b) / nx, (h - 2 * b) / nz
    for i in range(nx):
        for j in range(nz):
            p.box(
                (-t / 2 + 0.006, -w / 2 + b + (i + 0.5) * cw, b + (j + 0.5) * ch),
                (0.012, cw, ch),
                np.clip(rng.uniform(0.05, 0.95, 3), 0, 1),
            )
    return p


def counter(rng: np.random.Generator) -> PartList:
    """Kitchen counter: base cabinets with doors under an overhanging worktop."""
    p = PartList()
    w, d, h = rng.uniform(1.2, 3.0), rng.uniform(0.55, 0.65), rng.uniform(0.88, 0.94)
    c = color(rng, "white" if rng.random() < 0.5 else "wood")
    top_c = color(rng, "metal" if rng.random() < 0.3 else ("plastic" if rng.random() < 0.5 else "white"))
    tt = rng.uniform(0.03, 0.045)
    p.box_minmax((-d / 2, -w / 2, 0.1), (d / 2 - 0.04, w / 2, h - tt), c)
    p.box_minmax((-d / 2, -w / 2 + 0.02, 0.0), (d / 2 - 0.1, w / 2 - 0.02, 0.1), shade(c, 0.5))
    p.box_minmax((-d / 2, -w / 2, h - tt), (d / 2, w / 2, h), top_c)
    cols = max(1, int(round(w / 0.5)))
    # doors sit on the carcass front, which is recessed 4 cm under the worktop
    _front_panels(p, d - 0.08, w, 0.11, h - tt - 0.01, cols, 1, shade(c, 1.05), color(rng, "metal"))
    return p


def refrigerator(rng: np.random.Generator) -> PartList:
    """Fridge: tall box, freezer split, vertical handles."""
    p = PartList()
    w, d, h = rng.uniform(0.6, 0.92), rng.uniform(0.62, 0.78), rng.uniform(1.45, 1.95)
    c = color(rng, "white" if rng.random() < 0.6 else "metal", 0.03)
    p.box_minmax((-d / 2, -w / 2, 0.02), (d / 2 - 0.05, w / 2, h), c)
    split = h * rng.uniform(0.3, 0.7)
    hc = color(rng, "metal")
    p.box_minmax((d / 2 - 0.05, -w / 2, 0.05), (d / 2, w / 2, split - 0.01), shade(c, 1.02))
    p.box_minmax((d / 2 - 0.05, -w / 2, split + 0.01), (d / 2, w / 2, h - 0.01), shade(c, 1.02))
    hy = w / 2 - 0.06
    p.box((d / 2 + 0.025, hy, split - 0.25), (0.03, 0.025, 0.3), hc)
    p.box((d / 2 + 0.025, hy, split + 0.3), (0.03, 0.025, 0.35), hc)
    return p


def toilet(rng: np.random.Generator) -> PartList:
    """Toilet: pedestal, bowl, seat and a tank at the back (-x, against the wall)."""
    p = PartList()
    c = color(rng, "ceramic", 0.02)
    L = rng.uniform(0.62, 0.75)
    tw, td, th = rng.uniform(0.38, 0.5), rng.uniform(0.16, 0.22), rng.uniform(0.7, 0.82)
    seat = rng.uniform(0.38, 0.43)
    bx = -L / 2 + td + (L - td) / 2 - 0.02
    rx, ry = (L - td) / 2, rng.uniform(0.17, 0.2)
    p.cylinder((bx - 0.03, 0, 0.12), rx * 0.55, 0.24, c, sides=12, radius_y=ry * 0.6)
    p.cylinder((bx, 0, (0.2 + seat - 0.03) / 2), rx, seat - 0.23, c, sides=16, radius_y=ry)
    p.cylinder(
        (bx, 0, seat - 0.015),
        rx,
        0.03,
        color(rng, "ceramic" if rng.random() < 0.7 else "plastic", 0.02),
        sides=16,
        radius_y=ry,
    )
    p.box_minmax((-L / 2, -tw / 2, seat - 0.05), (-L / 2 + td, tw / 2, th), c)
    p.box_minmax((-L / 2 + 0.04, -0.08, 0.0), (-L / 2 + td, 0.08, seat - 0.05), c)
    return p


def sink(rng: np.random.Generator) -> PartList:
    """Bathroom sink: a basin on a pedestal or on a small vanity, with a tap."""
    p = PartList()
    c = color(rng, "ceramic", 0.02)
    d, w, h = rng.uniform(0.4, 0.55), rng.uniform(0.5, 0.7), rng.uniform(0.8, 0.9)
    bt = rng.uniform(0.12, 0.18)
    if rng.random() < 0.5:
        p.cylinder((-d / 2 + 0.12, 0, (h - bt) / 2), 0.09, h - bt, c, sides=12, radius_y=0.11)
    else:
        v = color(rng, "wood" if rng.random() < 0.5 else "white")
        p.box_minmax((-d / 2, -w / 2 + 0.02, 0.0), (d / 2 - 0.03, w / 2 - 0.02, h - bt), v)
        _front_panels(p, d - 0.03, w - 0.04, 0.05, h - bt - 0.01, 2, 1, shade(v, 1.05), color(rng, "metal"))
    # basin: a rim of four slabs around a lowered bottom, so the bowl is visible from above
    r = 0.05
    p.box_minmax((-d / 2, -w / 2, h - bt), (d / 2, w / 2, h - bt + 0.03), c)
    p.box_minmax((-d / 2, -w / 2, h - bt), (-d / 2 + r + 0.05, w / 2, h), c)
    p.box_minmax((d / 2 - r, -w / 2, h - bt), (d / 2, w / 2, h), c)
    p.box_minmax((-d / 2, -w / 2, h - bt), (d / 2, -w / 2 + r, h), c)
    p.box_minmax((-d / 2, w / 2 - r, h - bt), (d / 2, w / 2, h), c)
    m = color(rng, "metal")
    p.cylinder((-d / 2 + 0.05, 0, h + 0.06), 0.015, 0.12, m, sides=6)
    p.box((-d / 2 + 0.09, 0, h + 0.11), (0.09, 0.025, 0.02), m)
    return p


def bathtub(rng: np.random.Generator) -> PartList:
    """Bathtub: an open box (four walls on a floor slab); length along y."""
    p = PartList()
    w, d, h = rng.uniform(1.4, 1.8), rng.uniform(0.68, 0.82), rng.uniform(0.48, 0.6)
    c = color(rng, "ceramic", 0.02)
    t = rng.uniform(0.06, 0.1)
    p.box_minmax((-d / 2, -w / 2, 0.0), (d / 2, w / 2, 0.15), c)
    p.box_minmax((-d / 2, -w / 2, 0.0), (-d / 2 + t, w / 2, h), c)
    p.box_minmax((d / 2 - t, -w / 2, 0.0), (d / 2, w / 2, h), shade(c, 0.97))
    p.box_minmax((-d / 2, -w / 2, 0.0), (d / 2, -w / 2 + t, h), c)
    p.box_minmax((-d / 2, w / 2 - t, 0.0), (d / 2, w / 2, h), c)
    return p


def garbagebin(rng: np.random.Generator) -> PartList:
    """Round or square bin with a rim."""
    p = PartList()
    c = color(rng, "plastic" if rng.random() < 0.6 else "metal")
    h = rng.uniform(0.28, 0.7)
    if rng.random() < 0.5:
        r = rng.uniform(0.11, 0.2)
        p.cylinder((0, 0, h / 2), r, h, c, sides=12)
        p.cylinder((0, 0, h + 0.01), r * 1.05, 0.02, shade(c, 0.7), sides=12)
    else:
        a, b = rng.uniform(0.22, 0.4), rng.uniform(0.2, 0.35)
        p.box((0, 0, h / 2), (a, b, h), c)
        p.box((0, 0, h + 0.01), (a + 0.01, b + 0.01, 0.02), shade(c, 0.7))
    return p


def curtain(
    rng: np.random.Generator, width: float | None = None, z0: float | None = None, z1: float | None = None
) -> PartList:
    """Pleated curtain panel with a rail on top; hangs in front of a wall (back at -x)."""
    p = PartList()
    w = width if width is not None else rng.uniform(0.5, 1.4)
    z0 = z0 if z0 is not None else rng.uniform(0.02, 0.3)
    z1 = z1 if z1 is not None else rng.uniform(2.05, 2.35)
    _sheet(p, w, z0, z1 - 0.04, color(rng, "fabric", 0.08), rng, depth=rng.uniform(0.06, 0.1))
    p.cylinder((0, 0, z1 - 0.02), 0.015, 0.03, color(rng, "metal"), sides=6)
    p.rod((0, -w / 2, z1 - 0.02), (0, w / 2, z1 - 0.02), 0.012, color(rng, "metal"))
    return p


def showercurtain(rng: np.random.Generator, width: float | None = None, z0: float = 0.6) -> PartList:
    """Shower curtain hanging from a rod, usually along the front edge of a bathtub."""
    p = PartList()
    w = width if width is not None else rng.uniform(0.8, 1.6)
    top = rng.uniform(1.95, 2.1)
    c = color(rng, "plastic" if rng.random() < 0.5 else "linen", 0.08)
    _sheet(p, w, z0, top - 0.05, c, rng, depth=rng.uniform(0.05, 0.09))
    p.rod((0, -w / 2, top - 0.02), (0, w / 2, top - 0.02), 0.015, color(rng, "metal"))
    return p


def door(rng: np.random.Generator, width: float, height: float) -> PartList:
    """Door leaf of a given opening size, hinge side at y = -width/2, handle on +x face near +y."""
    p = PartList()
    c = color(rng, "wood" if rng.random() < 0.6 else "white")
    t = 0.04
    p.box((0, 0, height / 2), (t, width - 0.01, height - 0.01), c)
    if rng.random() < 0.5:  # raised panels
        for zc in (height * 0.3, height * 0.72):
            p.box((t / 2 + 0.005, 0, zc), (0.01, width * 0.7, height * 0.33), shade(c, 0.95))
    m = color(rng, "metal")
    for s in (-1, 1):
        p.box((s * (t / 2 + 0.03), width / 2 - 0.08, 1.0), (0.02, 0.12, 0.02), m)
        p.box((s * (t / 2 + 0.015), width / 2 - 0.04, 1.0), (0.03, 0.02, 0.02), m)
    return p


def window(rng: np.random.Generator, width: float, height: float, wall_t: float) -> PartList:
    """Window in a wall opening: frame, mullions, sill; glass only sometimes (sensors often see through)."""
    p = PartList()
    c = color(rng, "white" if rng.random() < 0.6 else "wood", 0.03)
    f = rng.uniform(0.04, 0.07)
    d = wall_t
    for s in (-1, 1):
        p.box((0, s * (width / 2 - f / 2), height / 2), (d, f, height), c)
        p.box((0, 0, height / 2 + s * (height / 2 - f / 2)), (d, width - 2 * f, f), c)
    nm = int(rng.integers(0, 3)) if width > 0.8 else 0
    for k in range(nm):
        y = -width / 2 + (k + 1) * width / (nm + 1)
        p.box((0, y, height / 2), (0.05, 0.04, height - 2 * f), c)
    if rng.random() < 0.4:
        p.box((0, 0, height * 0.55), (0.05, width - 2 * f, 0.04), c)
    p.box((d / 2 + 0.04, 0, -0.015), (0.1, width + 0.1, 0.03), shade(c, 0.95))  # sill into the room
    if rng.random() < 0.4:
        p.box((0, 0, height / 2), (0.008, width - 2 * f, height - 2 * f), np.array([0.6, 0.7, 0.75]), material=GLASS)
    return p


# Explicit name -> builder for free-standing builders with the signature (rng) -> PartList.
BUILDERS: dict[str, Callable[[np.random.Generator], PartList]] = {
    "chair": chair,
    "table": table,
    "desk": desk,
    "bed": bed,
    "sofa": sofa,
    "cabinet": cabinet,
    "dresser": dresser,
    "night_stand": night_stand,
    "bookshelf": bookshelf,
    "picture": picture,
    "counter": counter,
    "refrigerator": refrigerator,
    "toilet": toilet,
    "sink": sink,
    "bathtub": bathtub,
    "garbagebin": garbagebin,
    "curtain": curtain,
    "showercurtain": showercurtain,
}

# Every object kind the world can build (door and window need their opening, so they are not above).
ALL_KINDS: tuple[str, ...] = tuple(BUILDERS) + ("door", "window")

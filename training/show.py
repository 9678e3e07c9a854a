"""Render one sample (real or synthetic) with its GT boxes: bird's-eye view + perspective view.

Example:
    python training/show.py --data-root data/synth_sunrgbd --info sunrgbd_infos_train.pkl --index 0 --out a.png
"""

from __future__ import annotations

import argparse
import sys

import matplotlib

matplotlib.use("Agg")  # headless: we only write files
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sr3d_core.boxes import box_corners  # noqa: E402
from sr3d_core.data.info_scenes import DatasetConfig, InfoScenes  # noqa: E402
from sr3d_core.data.infos import load_infos  # noqa: E402
from sr3d_core.evaluation.bev import draw_boxes, save_png, scatter_points  # noqa: E402

_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]


def render(
    points: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    out: str,
    title: str = "",
    max_points: int = 40_000,
    seed: int = 0,
) -> None:
    """Write a PNG with a bird's-eye view (left) and a perspective view (right).

    Args:
        points: (N, 6) xyz + RGB in [0, 1].
        boxes: (K, 7) boxes.
        labels: (K,) label indices into `class_names`.
        class_names: Names for the legend text.
        out: PNG path.
        title: Figure title.
        max_points: Points drawn (random subset) to keep the file small.
        seed: Seed of that subset.
    """
    rng = np.random.default_rng(seed)
    if len(points) > max_points:
        points = points[rng.choice(len(points), max_points, replace=False)]
    cmap = plt.get_cmap("tab20")
    boxes = np.asarray(boxes, np.float64).reshape(-1, 7)
    corners = np.asarray(box_corners(boxes))
    fig = plt.figure(figsize=(13, 6.2), dpi=72)
    ax = fig.add_subplot(1, 2, 1)
    scatter_points(ax, points, "height", max_points)
    draw_boxes(ax, boxes, [class_names[int(lab)] for lab in labels], colors=[cmap(int(lab) % 20) for lab in labels])
    ax.set_aspect("equal")
    ax.set_title("bird's-eye view (colour = height)")
    ax3 = fig.add_subplot(1, 2, 2, projection="3d")
    ax3.scatter(points[:, 0], points[:, 1], points[:, 2], c=points[:, 3:6], s=0.4, linewidths=0, depthshade=False)
    for c, lab in zip(corners, labels):
        for a, b in _EDGES:
            ax3.plot(*zip(c[a], c[b]), color=cmap(int(lab) % 20), lw=1.0)
    lo, hi = points[:, :3].min(0), points[:, :3].max(0)
    r = (hi - lo).max() / 2
    mid = (hi + lo) / 2
    ax3.set_xlim(mid[0] - r, mid[0] + r)
    ax3.set_ylim(mid[1] - r, mid[1] + r)
    ax3.set_zlim(mid[2] - r * 0.5, mid[2] + r * 0.5)
    ax3.set_box_aspect((1, 1, 0.5))
    ax3.view_init(elev=35, azim=-60)
    ax3.set_title("perspective (RGB)")
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, out)
    plt.close(fig)


def render_gallery(out: str, seed: int = 0, per_kind: int = 2) -> None:
    """Ray-cast every furniture kind alone (4 fused views) and draw them side by side.

    This is the quick look at whether a chair still looks like a chair to the sensor.
    """
    from sr3d_core.data.synthetic import furniture as F
    from sr3d_core.data.synthetic.mesh import PartList
    from sr3d_core.data.synthetic.sensor import CameraModel, RayCaster, camera_rotation

    rng = np.random.default_rng(seed)
    kinds = list(F.BUILDERS) + ["door", "window"]
    cam = CameraModel(dropout=0.0)
    fig = plt.figure(figsize=(2.2 * per_kind * 5, 2.3 * int(np.ceil(len(kinds) / 5))), dpi=60)
    for k, kind in enumerate(kinds):
        for j in range(per_kind):
            if kind == "door":
                obj = F.door(rng, 0.85, 2.05)
            elif kind == "window":
                obj = F.window(rng, 1.2, 1.2, 0.1)
            else:
                obj = F.BUILDERS[kind](rng)
            v, f, c = obj.finish()
            if kind == "picture" or kind == "window":
                v = v + [0, 0, 0.5]
            floor = PartList()
            floor.box((0, 0, -0.025), (6, 6, 0.05), np.array([0.55, 0.55, 0.55]))
            fv, ff, fc = floor.finish()
            caster = RayCaster(
                np.concatenate([v, fv]),
                np.concatenate([f, ff + len(v)]),
                np.concatenate([c, fc]),
                np.r_[np.zeros(len(f), np.int32), -np.ones(len(ff), np.int32)],
            )
            pts, cols = [], []
            for a in (0.4, 1.3, 2.2, -0.6):
                pos = np.array([2.2 * np.cos(a), 2.2 * np.sin(a), 1.4])
                R = camera_rotation(a + np.pi, 0.45, 0.0)
                shot = caster.capture(cam, pos, R, rng, 2)
                keep = shot["object_id"] >= 0
                pts.append(shot["points_cam"][keep] @ R.T + pos)
                cols.append(shot["colors"][keep])
            p, col = np.concatenate(pts), np.concatenate(cols)
            if len(p) > 6000:
                sel = rng.choice(len(p), 6000, replace=False)
                p, col = p[sel], col[sel]
            ax = fig.add_subplot(int(np.ceil(len(kinds) / 5)), 5 * per_kind, k * per_kind + j + 1, projection="3d")
            ax.scatter(p[:, 0], p[:, 1], p[:, 2], c=col, s=0.5, linewidths=0, depthshade=False)
            r = max(np.ptp(p[:, :3], 0).max() / 2, 0.2)
            m = (p.max(0) + p.min(0)) / 2
            ax.set_xlim(m[0] - r, m[0] + r)
            ax.set_ylim(m[1] - r, m[1] + r)
            ax.set_zlim(m[2] - r, m[2] + r)
            ax.view_init(elev=25, azim=20)
            ax.set_axis_off()
            ax.set_title(kind, fontsize=9)
    fig.tight_layout()
    save_png(fig, out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and render one sample (or the furniture gallery)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", help="data set folder")
    ap.add_argument("--info", help="info file name under --data-root")
    ap.add_argument("--gallery", action="store_true", help="render every synthetic furniture kind instead")
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--out", required=True, help="PNG path")
    a = ap.parse_args(argv)
    if a.gallery:
        render_gallery(a.out, seed=a.index)
        print(f"wrote {a.out}")
        return 0
    if not a.data_root or not a.info:
        ap.error("--data-root and --info are required unless --gallery is given")
    infos = load_infos(f"{a.data_root}/{a.info}")
    names = infos.class_names
    ds = InfoScenes(DatasetConfig(a.data_root, a.info, names))
    try:
        s = ds.load(a.index)
    except IndexError as e:
        ap.error(str(e))
    render(
        s.points,
        s.gt_boxes,
        s.gt_labels,
        list(names),
        a.out,
        title=f"{infos.dataset} sample {s.sample_idx}: {len(s.points)} points, {len(s.gt_boxes)} boxes",
    )
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

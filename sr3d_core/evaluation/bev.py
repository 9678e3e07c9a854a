"""Bird's-eye views of a scene: points, ground-truth boxes and detections, as PNG files.

The one home of this drawing: ``sr3d-evaluate --bev-dir``, ``training/show.py`` and ``sr3d-replay`` use it. It
draws on matplotlib's Agg canvas directly (no pyplot, no global backend), so it runs headless and leaves a
caller's pyplot state alone.

Boxes are ``(x, y, z, dx, dy, dz, yaw)`` (``sr3d_core.boxes``); each is drawn as its footprint with a heading
tick from the centre to the middle of its +x face, so a box turned by 180 degrees looks different.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from sr3d_core.boxes import bev_corners

GT_COLOR = "tab:green"
DET_COLOR = "tab:red"
#: How points are coloured: by height (furniture stands out from the floor far better than in RGB from above),
#: or by their own colour (columns 3:6, in [0, 1]).
COLOR_MODES = ("height", "rgb")

ColorLike = Union[str, tuple[float, ...]]


def scatter_points(
    ax: Axes, points: np.ndarray, color_by: str = "height", max_points: int = 40_000, seed: int = 0
) -> None:
    """Scatter the points seen from above, the highest drawn last.

    Args:
        ax: Axes to draw in.
        points: ``(N, 3 + C)`` xyz (+ RGB in [0, 1] for ``color_by="rgb"``).
        color_by: One of :data:`COLOR_MODES`; ``"rgb"`` falls back to height for points without colour.
        max_points: Points drawn (a random subset), to keep the file small.
        seed: Seed of that subset.

    Raises:
        ValueError: An unknown ``color_by``.
    """
    if color_by not in COLOR_MODES:
        raise ValueError(f"color_by must be one of {COLOR_MODES}, got {color_by!r}")
    if len(points) == 0:
        return
    if len(points) > max_points:
        points = points[np.random.default_rng(seed).choice(len(points), max_points, replace=False)]
    points = points[np.argsort(points[:, 2], kind="stable")]
    if color_by == "rgb" and points.shape[1] >= 6:
        ax.scatter(points[:, 0], points[:, 1], c=np.clip(points[:, 3:6], 0.0, 1.0), s=0.8, linewidths=0)
        return
    z = points[:, 2]
    ax.scatter(
        points[:, 0],
        points[:, 1],
        c=z,
        cmap="viridis",
        vmin=np.percentile(z, 1),
        vmax=np.percentile(z, 99),
        s=0.8,
        linewidths=0,
    )


def draw_boxes(
    ax: Axes,
    boxes: np.ndarray,
    texts: Optional[Sequence[str]] = None,
    color: ColorLike = GT_COLOR,
    colors: Optional[Sequence[ColorLike]] = None,
    lw: float = 1.5,
    text_side: str = "top",
) -> None:
    """Draw box footprints with a heading tick, each optionally labelled.

    Args:
        ax: Axes to draw in.
        boxes: ``(K, 7)`` boxes (``(K, 6)`` read as yaw 0).
        texts: One label per box, or None for none.
        color: The colour of every box, unless ``colors`` is given.
        colors: One colour per box.
        lw: Line width.
        text_side: ``"top"``: labels above each footprint; ``"bottom"``: below (so the ground truth's and a
            detection's labels on the same object do not overlap).
    """
    b = _as_boxes(boxes)
    if len(b) == 0:
        return
    if b.shape[1] == 6:
        b = np.concatenate([b, np.zeros((len(b), 1))], axis=1)
    corners = np.asarray(bev_corners(b))
    for k, (box, ring) in enumerate(zip(b, corners)):
        col = color if colors is None else colors[k]
        closed = np.concatenate([ring, ring[:1]])
        ax.plot(closed[:, 0], closed[:, 1], color=col, lw=lw)
        front = box[:2] + 0.5 * box[3] * np.array([np.cos(box[6]), np.sin(box[6])])
        ax.plot([box[0], front[0]], [box[1], front[1]], color=col, lw=lw)
        if texts is not None:
            top = text_side == "top"
            y = ring[:, 1].max() if top else ring[:, 1].min()
            ax.text(
                ring[:, 0].mean(),
                y,
                texts[k],
                color=col,
                fontsize=7,
                ha="center",
                va="bottom" if top else "top",
                weight="bold",
                bbox={"facecolor": "white", "alpha": 0.6, "linewidth": 0, "pad": 0.5},
            )


def _as_boxes(boxes: np.ndarray) -> np.ndarray:
    """``(K, 6 or 7)`` float64 boxes; an empty input of any shape gives ``(0, 7)``."""
    b = np.asarray(boxes, np.float64)
    return np.zeros((0, 7)) if b.size == 0 else b.reshape(len(b), -1)


def bev_figure(
    points: Optional[np.ndarray],
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    class_names: Sequence[str],
    det_boxes: Optional[np.ndarray] = None,
    det_scores: Optional[np.ndarray] = None,
    det_labels: Optional[np.ndarray] = None,
    score_threshold: float = 0.0,
    title: str = "",
    color_by: str = "height",
    size_in: float = 7.0,
    dpi: int = 100,
) -> Figure:
    """One scene from above: points, ground truth (green, class) and detections (red, "class score").

    Args:
        points: ``(N, 3 + C)`` points, or None to draw boxes only.
        gt_boxes / gt_labels: ``(G, 7)`` ground-truth boxes and their class indices (-1: ignored, not drawn).
        class_names: Names the labels index into.
        det_boxes / det_scores / det_labels: Detections (None: none).
        score_threshold: Only detections scored at or above it are drawn.
        title: Axes title.
        color_by: Point colouring, one of :data:`COLOR_MODES`.
        size_in / dpi: Figure size in inches and resolution.

    Returns:
        The figure, drawn on an Agg canvas (``fig.canvas.draw()`` fixes the layout for pixel look-ups).
    """
    fig = Figure(figsize=(size_in, size_in), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if points is not None:
        scatter_points(ax, np.asarray(points), color_by)
    gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
    keep = gt_labels >= 0
    draw_boxes(ax, _as_boxes(gt_boxes)[keep], [class_names[int(c)] for c in gt_labels[keep]], color=GT_COLOR, lw=2.0)
    n_det = 0
    if det_boxes is not None and det_scores is not None and det_labels is not None:
        scores = np.asarray(det_scores, np.float64).reshape(-1)
        shown = np.flatnonzero(scores >= score_threshold)
        labels = np.asarray(det_labels, np.int64).reshape(-1)
        draw_boxes(
            ax,
            _as_boxes(det_boxes)[shown],
            [f"{class_names[int(labels[i])]} {scores[i]:.2f}" for i in shown],
            color=DET_COLOR,
            lw=1.2,
            text_side="bottom",
        )
        n_det = len(shown)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    caption = f"ground truth green ({int(keep.sum())}), detections scored >= {score_threshold:g} red ({n_det})" + (
        f"; points by {color_by}" if points is not None else ""
    )
    ax.set_title(f"{title}\n{caption}" if title else caption, fontsize=8)
    fig.tight_layout()
    return fig


def save_png(fig: Figure, out: Union[str, Path]) -> None:
    """Save with a 256-colour palette (scattered points compress badly in full RGB), pixel for pixel as drawn.

    Args:
        fig: A figure on an Agg canvas (``bev_figure``'s, or a pyplot one with the Agg backend).
        out: PNG path.
    """
    fig.canvas.draw()
    img = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])
    img.quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


def write_bev(
    out: Union[str, Path],
    points: Optional[np.ndarray],
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    class_names: Sequence[str],
    det_boxes: Optional[np.ndarray] = None,
    det_scores: Optional[np.ndarray] = None,
    det_labels: Optional[np.ndarray] = None,
    score_threshold: float = 0.0,
    title: str = "",
    color_by: str = "height",
) -> None:
    """:func:`bev_figure` written to ``out`` with :func:`save_png`."""
    save_png(
        bev_figure(
            points,
            gt_boxes,
            gt_labels,
            class_names,
            det_boxes,
            det_scores,
            det_labels,
            score_threshold,
            title,
            color_by,
        ),
        out,
    )


__all__ = [
    "COLOR_MODES",
    "DET_COLOR",
    "GT_COLOR",
    "bev_figure",
    "draw_boxes",
    "save_png",
    "scatter_points",
    "write_bev",
]

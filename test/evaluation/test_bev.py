"""Bird's-eye views: the boxes land where their coordinates say, in their colours."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from sr3d_core.evaluation.bev import DET_COLOR, GT_COLOR, bev_figure, save_png, write_bev


def _pixels(fig, path) -> tuple[np.ndarray, callable]:
    """The saved image and a map from data (x, y) to its (row, column)."""
    save_png(fig, path)  # draws the canvas: the transform below is the one the pixels were made with
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    ax = fig.axes[0]

    def to_pixel(x: float, y: float) -> tuple[int, int]:
        px, py = ax.transData.transform((x, y))
        return int(round(img.shape[0] - py)), int(round(px))

    return img, to_pixel


def _has_colour(img: np.ndarray, rc: tuple[int, int], colour: str, r: int = 2, tol: int = 40) -> bool:
    """Whether a pixel within ``r`` of ``rc`` is within ``tol`` of ``colour`` in every channel."""
    want = np.array(to_rgb(colour)) * 255
    win = img[rc[0] - r : rc[0] + r + 1, rc[1] - r : rc[1] + r + 1]
    return bool((np.abs(win - want) <= tol).all(axis=-1).any())


def test_gt_and_detection_are_drawn_where_they_are(tmp_path):
    points = np.array([[-3, -3, 0, 1, 1, 1], [3, 3, 1, 1, 1, 1], [-3, 3, 0.5, 1, 1, 1]], np.float32)
    gt = np.array([[0.0, 0.0, 0.5, 2.0, 1.0, 1.0, 0.0]])  # 2 m along x, heading +x
    det = np.array([[0.0, 2.0, 0.5, 1.0, 1.0, 1.0, np.pi / 2], [2.0, -2.0, 0.5, 1.0, 1.0, 1.0, 0.0]])
    fig = bev_figure(
        points, gt, np.array([1]), ("chair", "table"), det, np.array([0.8, 0.1]), np.array([0, 0]), score_threshold=0.3
    )
    img, px = _pixels(fig, tmp_path / "a.png")
    assert _has_colour(img, px(-1.0, 0.0), GT_COLOR)  # the GT's left edge
    assert _has_colour(img, px(0.5, 0.0), GT_COLOR)  # its heading tick, half way to the +x face
    assert not _has_colour(img, px(-0.5, 0.0), GT_COLOR)  # behind the centre: no tick
    assert _has_colour(img, px(0.0, 2.5), DET_COLOR)  # the kept detection's front face (turned to +y)
    assert _has_colour(img, px(0.0, 2.25), DET_COLOR)  # and its tick
    assert not _has_colour(img, px(2.5, -2.0), DET_COLOR)  # the one scored below the threshold is not drawn
    assert not _has_colour(img, px(-2.0, -1.0), GT_COLOR) and not _has_colour(img, px(-2.0, -1.0), DET_COLOR)


def test_write_bev_rgb_and_boxes_only(tmp_path):
    points = np.random.default_rng(0).uniform(0, 1, (500, 6)).astype(np.float32)
    write_bev(tmp_path / "rgb.png", points, np.zeros((0, 7)), np.zeros(0, np.int64), ("chair",), color_by="rgb")
    write_bev(tmp_path / "boxes.png", None, np.array([[0, 0, 0, 1, 1, 1, 0.3]]), np.array([0]), ("chair",))
    assert Image.open(tmp_path / "rgb.png").size == Image.open(tmp_path / "boxes.png").size == (700, 700)
    with pytest.raises(ValueError, match="color_by"):
        write_bev(tmp_path / "x.png", points, np.zeros((0, 7)), np.zeros(0, np.int64), ("chair",), color_by="z")

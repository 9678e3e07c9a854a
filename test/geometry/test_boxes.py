"""Tests of the box convention: corners, origin conversions, enclosures, quaternions, validation."""

import math

import numpy as np
import pytest
import torch

from sr3d_core import boxes as B


def test_corners_hand_worked_example():
    # Centre (1, 2, 3), extents (4, 2, 6), yaw 90°: the heading (local +x) points along world +y.
    box = torch.tensor([[1.0, 2.0, 3.0, 4.0, 2.0, 6.0, math.pi / 2]], dtype=torch.float64)
    # local (sx*2, sy*1) -> world (1 - sy*1, 2 + sx*2); bottom z = 0, top z = 6
    expected = torch.tensor(
        [
            [2.0, 0.0, 0.0],  # (-,-)
            [2.0, 4.0, 0.0],  # (+,-)
            [0.0, 4.0, 0.0],  # (+,+)
            [0.0, 0.0, 0.0],  # (-,+)
            [2.0, 0.0, 6.0],
            [2.0, 4.0, 6.0],
            [0.0, 4.0, 6.0],
            [0.0, 0.0, 6.0],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(B.box_corners(box)[0], expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(B.bev_corners(box)[0], expected[:4, :2], atol=1e-12, rtol=0)


def test_corners_axis_aligned_and_six_numbers():
    box = np.array([[0.0, 0.0, 0.5, 2.0, 1.0, 1.0]])
    c = B.box_corners(box)
    assert isinstance(c, np.ndarray) and c.shape == (1, 8, 3)
    np.testing.assert_allclose(c[0, 0], [-1.0, -0.5, 0.0])
    np.testing.assert_allclose(c[0, 6], [1.0, 0.5, 1.0])
    # top corner i + 4 lies straight above bottom corner i
    np.testing.assert_allclose(c[0, 4:, :2], c[0, :4, :2])


def test_bev_corners_counter_clockwise_and_edges():
    rng = np.random.default_rng(0)
    boxes = np.concatenate([rng.normal(size=(50, 3)), rng.uniform(0.1, 2, (50, 3)), rng.uniform(-4, 4, (50, 1))], 1)
    c = B.bev_corners(boxes)
    x, y = c[..., 0], c[..., 1]
    signed = 0.5 * (x * np.roll(y, -1, 1) - y * np.roll(x, -1, 1)).sum(1)
    np.testing.assert_allclose(signed, boxes[:, 3] * boxes[:, 4], rtol=1e-12)
    corners = B.box_corners(boxes)
    lengths = {(a, b): np.linalg.norm(corners[:, a] - corners[:, b], axis=-1) for a, b in B.BOX_EDGES}
    assert len(B.BOX_EDGES) == 12 and len(set(B.BOX_EDGES)) == 12
    np.testing.assert_allclose(lengths[(0, 1)], boxes[:, 3])  # dx along the heading
    np.testing.assert_allclose(lengths[(1, 2)], boxes[:, 4])
    np.testing.assert_allclose(lengths[(0, 4)], boxes[:, 5])
    # the heading: corner 1 - corner 0 points along (cos yaw, sin yaw)
    d = (corners[:, 1, :2] - corners[:, 0, :2]) / boxes[:, 3:4]
    np.testing.assert_allclose(d, np.stack([np.cos(boxes[:, 6]), np.sin(boxes[:, 6])], 1), atol=1e-12)


def test_bottom_gravity_round_trip_and_kinds():
    box = torch.tensor([[1.0, 2.0, 0.0, 1.0, 1.0, 2.0, 0.3]])
    g = B.bottom_to_gravity(box)
    assert g[0, 2].item() == pytest.approx(1.0)
    assert box[0, 2].item() == 0.0  # input untouched
    torch.testing.assert_close(B.gravity_to_bottom(g), box)
    n = np.array([[0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 0.0]], dtype=np.float32)
    out = B.gravity_to_bottom(n)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out[0, 2] == 0.0


def test_minmax_matches_corners():
    rng = np.random.default_rng(1)
    boxes = np.concatenate([rng.normal(size=(100, 3)), rng.uniform(0.0, 2, (100, 3)), rng.uniform(-7, 7, (100, 1))], 1)
    corners = B.box_corners(boxes)
    mm = B.boxes_to_minmax(boxes)
    np.testing.assert_allclose(mm[:, :3], corners.min(1), atol=1e-12)
    np.testing.assert_allclose(mm[:, 3:], corners.max(1), atol=1e-12)
    enc = B.enclosing_axis_aligned(boxes)
    assert np.all(enc[:, 6] == 0)
    np.testing.assert_allclose(enc[:, :3], boxes[:, :3], atol=1e-12)
    np.testing.assert_allclose(B.boxes_to_minmax(enc), mm, atol=1e-12)
    # yaw = 90° swaps the footprint extents
    np.testing.assert_allclose(
        B.enclosing_axis_aligned(np.array([[0, 0, 0, 3.0, 1.0, 2.0, np.pi / 2]]))[0, 3:6], [1, 3, 2], atol=1e-12
    )


def test_quaternion_golden_values():
    np.testing.assert_allclose(B.yaw_to_quaternion(0.0), [0, 0, 0, 1])
    np.testing.assert_allclose(
        B.yaw_to_quaternion(math.pi / 2), [0, 0, math.sin(math.pi / 4), math.cos(math.pi / 4)], atol=1e-15
    )
    np.testing.assert_allclose(B.yaw_to_quaternion(math.pi), [0, 0, 1, 0], atol=1e-15)
    q = B.yaw_to_quaternion(torch.tensor([-math.pi / 2], dtype=torch.float64))
    assert isinstance(q, torch.Tensor) and q.shape == (1, 4)
    torch.testing.assert_close(q[0], torch.tensor([0, 0, -math.sqrt(0.5), math.sqrt(0.5)], dtype=torch.float64))


def test_quaternion_round_trip_and_rotation_matrix():
    yaw = np.linspace(-np.pi + 1e-9, np.pi, 101)
    q = B.yaw_to_quaternion(yaw)
    assert q.shape == (101, 4)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(B.quaternion_to_yaw(q), yaw, atol=1e-12)
    np.testing.assert_allclose(B.quaternion_to_yaw(3.0 * q), yaw, atol=1e-12)  # scale invariant
    # The quaternion's rotation matrix maps local +x to (cos yaw, sin yaw, 0).
    x, y, z, w = q.T
    np.testing.assert_allclose(1 - 2 * (y * y + z * z), np.cos(yaw), atol=1e-12)
    np.testing.assert_allclose(2 * (x * y + w * z), np.sin(yaw), atol=1e-12)


def test_wrap_angle():
    a = B.wrap_angle(np.array([np.pi, -np.pi, 3 * np.pi / 2, 0.5, -7.0]))
    np.testing.assert_allclose(a, [-np.pi, -np.pi, -np.pi / 2, 0.5, -7.0 + 2 * np.pi], atol=1e-12)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((3, 5)), r"boxes_in must have shape \(N, 7\)"),
        (np.zeros((7,)), r"boxes_in must have shape"),
        (np.array([[0, 0, 0, 1, 1, np.nan, 0]]), "boxes_in contains NaN"),
        (np.array([[0, 0, 0, 1, 1, 1, np.inf]]), "boxes_in contains NaN or inf"),
        (np.array([[0, 0, 0, 1, -1, 1, 0]]), "boxes_in has negative sizes"),
        ([[0, 0, 0, 1, 1, 1, 0]], "boxes_in must be a torch.Tensor"),
    ],
)
def test_check_boxes_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        B.check_boxes(bad, "boxes_in")


def test_check_boxes_accepts():
    B.check_boxes(np.zeros((0, 7)), "b")
    B.check_boxes(torch.zeros((2, 7)), "b")
    B.check_boxes(torch.zeros((2, 6)), "b", allow_no_yaw=True)
    with pytest.raises(ValueError, match="b must have shape"):
        B.check_boxes(torch.zeros((2, 6)), "b")


def test_empty_inputs():
    e = np.zeros((0, 7))
    assert B.box_corners(e).shape == (0, 8, 3)
    assert B.bev_corners(torch.zeros(0, 7)).shape == (0, 4, 2)
    assert B.boxes_to_minmax(e).shape == (0, 6)
    assert B.enclosing_axis_aligned(e).shape == (0, 7)
    assert B.bottom_to_gravity(e).shape == (0, 7)
    assert B.yaw_to_quaternion(np.zeros(0)).shape == (0, 4)
    assert B.quaternion_to_yaw(np.zeros((0, 4))).shape == (0,)

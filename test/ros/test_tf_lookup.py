"""Pure-Python tests of the project's own TF buffer (chains, interpolation, extrapolation, fallback)."""

from __future__ import annotations

import numpy as np
import pytest

from sr3d_ros.tf_lookup import (
    TransformBuffer,
    TransformUnavailable,
    matrix_to_quaternion,
    quaternion_to_matrix,
    slerp,
    to_matrix,
)


def rot_z(a: float) -> np.ndarray:
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def rot_x(a: float) -> np.ndarray:
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def quat(axis: str, a: float) -> np.ndarray:
    q = np.zeros(4)
    q["xyz".index(axis)] = np.sin(a / 2)
    q[3] = np.cos(a / 2)
    return q


def hom(r: np.ndarray, t) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, t
    return m


def test_quaternion_to_matrix_matches_hand_rotations() -> None:
    np.testing.assert_allclose(quaternion_to_matrix(quat("z", 0.7)), rot_z(0.7), atol=1e-12)
    np.testing.assert_allclose(quaternion_to_matrix(quat("x", -1.2)), rot_x(-1.2), atol=1e-12)


def test_slerp_halfway_and_short_arc() -> None:
    np.testing.assert_allclose(slerp(quat("z", 0.0), quat("z", 1.0), 0.5), quat("z", 0.5), atol=1e-12)
    np.testing.assert_allclose(slerp(quat("z", 0.2), -quat("z", 0.4), 0.5), quat("z", 0.3), atol=1e-12)


def test_chain_through_common_ancestor_matches_hand_composition() -> None:
    # map -> base_link -> camera_link -> camera_optical; map -> other
    buf = TransformBuffer()
    r_optical = rot_z(-np.pi / 2) @ rot_x(-np.pi / 2)  # REP 103 optical frame relative to the camera link
    q_optical = np.array([-0.5, 0.5, -0.5, 0.5])
    np.testing.assert_allclose(quaternion_to_matrix(q_optical), r_optical, atol=1e-12)
    buf.set_transform("map", "base_link", 0, [1, 2, 0], quat("z", 0.5), static=True)
    buf.set_transform("base_link", "camera_link", 0, [0.1, 0, 1.2], quat("x", 0.1), static=True)
    buf.set_transform("camera_link", "camera_optical", 0, [0, 0, 0], q_optical, static=True)
    buf.set_transform("map", "other", 0, [-3, 0, 0], quat("z", -1.0), static=True)
    t_map_base = hom(rot_z(0.5), [1, 2, 0])
    t_base_cam = hom(rot_x(0.1), [0.1, 0, 1.2])
    t_cam_opt = hom(r_optical, [0, 0, 0])
    t_map_other = hom(rot_z(-1.0), [-3, 0, 0])
    np.testing.assert_allclose(buf.lookup("base_link", "camera_optical", 5), t_base_cam @ t_cam_opt, atol=1e-12)
    expected = np.linalg.inv(t_map_other) @ t_map_base @ t_base_cam @ t_cam_opt
    np.testing.assert_allclose(buf.lookup("other", "camera_optical", 5), expected, atol=1e-12)
    np.testing.assert_allclose(
        buf.lookup("camera_optical", "base_link", 5), np.linalg.inv(t_base_cam @ t_cam_opt), atol=1e-12
    )
    np.testing.assert_allclose(buf.lookup("/map", "map", 5), np.eye(4))
    # an optical-frame point 2 m ahead lands 2 m ahead (+x) of base_link, at camera height
    p = buf.lookup("base_link", "camera_optical", 0) @ [0, 0, 2, 1]
    assert p[0] > 2.0 and abs(p[2] - 1.2) < 0.3
    # a one-edge answer is the caller's to modify, and a re-published static edge replaces the old value
    buf.lookup("camera_link", "camera_optical", 5)[:] = 0
    np.testing.assert_allclose(buf.lookup("camera_link", "camera_optical", 5), t_cam_opt, atol=1e-12)
    buf.set_transform("camera_link", "camera_optical", 0, [0, 0, 0.5], q_optical, static=True)
    np.testing.assert_allclose(buf.lookup("camera_link", "camera_optical", 5), hom(r_optical, [0, 0, 0.5]), atol=1e-12)


def test_dynamic_edge_interpolates_and_refuses_extrapolation() -> None:
    buf = TransformBuffer()
    buf.set_transform("odom", "base", 1_000, [0, 0, 0], quat("z", 0.0))
    buf.set_transform("odom", "base", 3_000, [2, 0, 0], quat("z", 1.0))
    np.testing.assert_allclose(buf.lookup("odom", "base", 2_000), to_matrix([1, 0, 0], quat("z", 0.5)), atol=1e-12)
    np.testing.assert_allclose(buf.lookup("odom", "base", 3_000), to_matrix([2, 0, 0], quat("z", 1.0)), atol=1e-12)
    with pytest.raises(TransformUnavailable, match="odom"):
        buf.lookup("odom", "base", 4_000)
    np.testing.assert_allclose(
        buf.lookup("odom", "base", 4_000, fallback_latest=True), to_matrix([2, 0, 0], quat("z", 1.0)), atol=1e-12
    )
    np.testing.assert_allclose(buf.lookup("odom", "base", None), to_matrix([2, 0, 0], quat("z", 1.0)))


def test_unconnected_frames_name_both() -> None:
    buf = TransformBuffer()
    buf.set_transform("a", "b", 0, [0, 0, 0], [0, 0, 0, 1], static=True)
    with pytest.raises(TransformUnavailable, match="'c'.*'a'|'a'.*'c'"):
        buf.lookup("a", "c", 0)


def test_cache_drops_old_samples() -> None:
    buf = TransformBuffer(cache_s=1.0)
    for k in range(5):
        buf.set_transform("odom", "base", int(k * 1e9), [k, 0, 0], [0, 0, 0, 1])
    with pytest.raises(TransformUnavailable):
        buf.lookup("odom", "base", int(1.5e9))
    np.testing.assert_allclose(buf.lookup("odom", "base", int(3.5e9))[0, 3], 3.5)


def test_matrix_to_quaternion_inverts_quaternion_to_matrix() -> None:
    rng = np.random.default_rng(0)
    qs = list(rng.normal(size=(200, 4))) + [quat("x", np.pi), quat("y", np.pi), quat("z", np.pi), quat("z", 0.0)]
    for q in qs:
        q = np.asarray(q) / np.linalg.norm(q)
        q = -q if q[3] < 0 else q
        got = matrix_to_quaternion(quaternion_to_matrix(q))
        assert got[3] >= 0
        # 180-degree turns have w = 0, where q and -q are both canonical: compare the rotations instead
        np.testing.assert_allclose(quaternion_to_matrix(got), quaternion_to_matrix(q), atol=1e-12)
        if q[3] > 1e-6:
            np.testing.assert_allclose(got, q, atol=1e-12)
    np.testing.assert_allclose(matrix_to_quaternion(rot_z(0.7)), quat("z", 0.7), atol=1e-12)

"""The synthetic world's realism factors: each switch does what it says, and only when it is on."""

from __future__ import annotations

import numpy as np
import pytest

from sr3d_core.data.synthetic import extras as X
from sr3d_core.data.synthetic.mesh import MIRROR, PartList, rot_z
from sr3d_core.data.synthetic.presets import PRESETS
from sr3d_core.data.synthetic.room import CLUTTER_HOSTS, _top_surface, make_room
from sr3d_core.data.synthetic.scene import _handheld_pose, generate_scene
from sr3d_core.data.synthetic.sensor import SENSORS, CameraModel, Lighting, RayCaster, camera_rotation
from sr3d_core.data.synthetic.world import LEGACY_WORLD, REAL_WORLD, WorldConfig


def test_without_switches_off_only_the_named_factors_and_refuses_unknown_names() -> None:
    w = REAL_WORLD.without("sizes", "sensor")
    assert not w.sizes and not w.sensor
    assert all(getattr(w, n) for n in WorldConfig.factors() if n not in ("sizes", "sensor"))
    with pytest.raises(ValueError, match="unknown world factor.*'size'.*factors are"):
        REAL_WORLD.without("size")
    assert not LEGACY_WORLD.any and REAL_WORLD.any


def test_real_preset_is_deterministic_per_seed() -> None:
    a = generate_scene(PRESETS["sunrgbd-real"], 4, 2)
    b = generate_scene(PRESETS["sunrgbd-real"], 4, 2)
    c = generate_scene(PRESETS["sunrgbd-real"], 5, 2)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.points[:100], c.points[:100])


def test_drawn_sizes_centre_on_the_published_means() -> None:
    rng = np.random.default_rng(0)
    for kind, mean in X.SUNRGBD_MEAN_SIZE.items():
        draws = np.stack([X.draw_size(kind, rng) for _ in range(2000)])
        # the log-normal is centred on the mean: the median of each dimension is the published mean
        np.testing.assert_allclose(np.median(draws, 0), mean, rtol=0.04)
        assert (draws >= 0.6 * np.asarray(mean) - 1e-9).all() and (draws <= 1.6 * np.asarray(mean) + 1e-9).all()


def test_fit_size_gives_the_bounding_box_asked_for() -> None:
    p = PartList()
    p.box((0, 0, 0.25), (0.4, 0.3, 0.5), (1, 0, 0))
    p.box((0.1, 0.05, 0.6), (0.1, 0.1, 0.2), (0, 1, 0))
    X.fit_size(p, np.array([0.8, 0.9, 1.4]))
    v, _, _ = p.finish()
    np.testing.assert_allclose(v.max(0) - v.min(0), [0.8, 0.9, 1.4], atol=1e-12)
    assert v[:, 2].min() == pytest.approx(0.0)  # still standing on the floor


def _labelled_sizes(world: WorldConfig, kind: str, n_rooms: int) -> np.ndarray:
    sizes = []
    for seed in range(n_rooms):
        room = make_room(np.random.default_rng(seed), "bedroom", world)
        sizes += [o.box[3:6] for o in room.objects if o.kind == kind]
    return np.asarray(sizes)


def test_sizes_factor_moves_night_stands_to_real_sizes() -> None:
    legacy = _labelled_sizes(LEGACY_WORLD, "night_stand", 40)
    real = _labelled_sizes(WorldConfig(sizes=True), "night_stand", 40)
    mean = np.asarray(X.SUNRGBD_MEAN_SIZE["night_stand"])
    # the plain world's night stands are smaller than SUN RGB-D's; with real sizes their median is near the mean
    assert np.median(legacy[:, 2]) < 0.9 * mean[2]
    np.testing.assert_allclose(np.median(real, 0), mean, rtol=0.15)


def test_parts_clutter_and_walls_add_their_objects_only_when_on() -> None:
    kinds_off = {o.kind for s in range(30) for o in make_room(np.random.default_rng(s), "bedroom").objects}
    kinds_on = {o.kind for s in range(30) for o in make_room(np.random.default_rng(s), "bedroom", REAL_WORLD).objects}
    assert not kinds_off & {"wardrobe", "lamp", "wall_shelf", "bench", "laundry"}
    assert {"wardrobe", "bench", "lamp", "wall_shelf"} <= kinds_on


def test_clutter_stands_on_its_host() -> None:
    n = 0
    for seed in range(20):
        room = make_room(np.random.default_rng(seed), "bedroom", WorldConfig(clutter=True))
        hosts = [o for o in room.objects if o.kind in CLUTTER_HOSTS]
        for item in [o for o in room.objects if o.kind in ("lamp", "books", "bottles")]:
            base = item.vertices[:, 2].min()
            # some host's top is exactly under it, and the item's centre is inside that host's footprint
            under = [
                h
                for h in hosts
                if abs(_top_surface(h) - base) < 1e-6
                and np.all(np.abs(rot_z(h.box[6])[:2, :2].T @ (item.box[:2] - h.box[:2])) <= h.box[3:5] / 2)
            ]
            assert under, f"{item.kind} at {item.box[:3]} stands on nothing"
            n += 1
    assert n > 10


def _wall_caster(material: int = 0, depth: float = 2.0, color=(0.5, 0.5, 0.5)) -> RayCaster:
    """A 10 x 10 m wall facing the camera at y = depth (camera at the origin looking along +y)."""
    p = PartList()
    p.box((0, depth + 0.05, 0), (10, 0.1, 10), color, material=material)
    v, f, c = p.finish()
    return RayCaster(v, f, c, np.zeros(len(f), np.int32), p.materials())


_LOOK_Y = camera_rotation(np.pi / 2, 0.0, 0.0)


def test_disparity_quantization_puts_depths_on_the_sensors_steps() -> None:
    cam = CameraModel(
        64,
        48,
        52.5,
        52.5,
        31.5,
        23.5,
        0.3,
        8.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        noise_z2=1e-3,
        baseline=0.075,
        disparity_step=0.125,
    )
    shot = _wall_caster(depth=3.0).capture(cam, np.zeros(3), _LOOK_Y, np.random.default_rng(0))
    z = shot["points_cam"][:, 2]
    disparity = cam.fx * cam.baseline / z
    np.testing.assert_allclose(disparity / cam.disparity_step, np.round(disparity / cam.disparity_step), atol=1e-6)
    assert len(np.unique(np.round(z, 6))) <= 3  # a few steps around 3 m, not a continuum


def test_material_dropout_loses_mirrors() -> None:
    cam = dataclass_replace(
        SENSORS["kinect_v1"],
        width=64,
        height=48,
        fx=52.5,
        fy=52.5,
        cx=31.5,
        cy=23.5,
        material_dropout=(0.0, 0.0, 1.0, 0.0, 0.0),
        dropout=0.0,
        misregistration_px=0.0,
    )
    rng = np.random.default_rng(0)
    assert len(_wall_caster(MIRROR).capture(cam, np.zeros(3), _LOOK_Y, rng)["points_cam"]) == 0
    assert len(_wall_caster(0).capture(cam, np.zeros(3), _LOOK_Y, rng)["points_cam"]) == 64 * 48


def test_dark_surfaces_lose_returns() -> None:
    cam = dataclass_replace(
        SENSORS["kinect_v2"],
        width=64,
        height=48,
        fx=36.5,
        fy=36.5,
        cx=31.5,
        cy=23.5,
        dropout=0.0,
        material_dropout=(0.0,) * 5,
    )
    rng = np.random.default_rng(0)
    n_black = len(_wall_caster(color=(0.02, 0.02, 0.02)).capture(cam, np.zeros(3), _LOOK_Y, rng)["points_cam"])
    n_grey = len(_wall_caster(color=(0.6, 0.6, 0.6)).capture(cam, np.zeros(3), _LOOK_Y, rng)["points_cam"])
    assert n_grey == 64 * 48
    # dropout at near-black = dark_dropout * (0.25 - 0.02) / 0.25
    expected = 1 - cam.dark_dropout * 0.23 / 0.25
    assert n_black / n_grey == pytest.approx(expected, abs=0.05)


def test_flying_pixels_lie_between_the_surfaces_of_a_depth_edge() -> None:
    p = PartList()
    p.box((-2.5, 2.05, 0), (5, 0.1, 10), (0.5, 0.5, 0.5))  # left half at 2 m
    p.box((2.5, 4.05, 0), (5, 0.1, 10), (0.5, 0.5, 0.5))  # right half at 4 m
    v, f, c = p.finish()
    caster = RayCaster(v, f, c, np.zeros(len(f), np.int32), p.materials())
    base = CameraModel(64, 48, 52.5, 52.5, 31.5, 23.5, 0.3, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    mid = []
    for fly in (0.0, 1.0):
        cam = dataclass_replace(base, flying_pixels=fly, noise_lin=1e-9)
        z = caster.capture(cam, np.zeros(3), _LOOK_Y, np.random.default_rng(1))["points_cam"][:, 2]
        mid.append(int(((z > 2.05) & (z < 3.95)).sum()))
    assert mid[0] == 0
    assert 10 <= mid[1] <= 2 * 48  # about one edge pixel per row, some on the wrong side of the edge


def test_handheld_poses_spread_like_hand_held_captures() -> None:
    rng = np.random.default_rng(0)
    room = make_room(np.random.default_rng(3), "bedroom", WorldConfig(camera=True))
    poses = [_handheld_pose(room, rng, PRESETS["sunrgbd-real"].class_names) for _ in range(300)]
    h = np.array([p[0][2] for p in poses])
    tilt = np.array([p[2] for p in poses])
    assert 0.75 <= h.min() and h.max() <= 1.8 and abs(np.mean(h) - 1.3) < 0.05
    assert abs(np.mean(tilt) - 0.3) < 0.03 and (tilt > 0).mean() > 0.95


def test_auto_exposure_brings_the_median_to_mid_grey() -> None:
    cam = CameraModel(64, 48, 52.5, 52.5, 31.5, 23.5, 0.3, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    light = Lighting(1.0, (1.0, 1.0, 1.0), (0.0, 0.0, 2.0), 0.5, 0.05)
    shot = _wall_caster(color=(0.1, 0.1, 0.1)).capture(
        cam, np.zeros(3), _LOOK_Y, np.random.default_rng(0), lighting=light
    )
    lum = shot["colors"] @ np.array([0.299, 0.587, 0.114])
    assert np.median(lum) == pytest.approx(0.45, abs=0.01)


def dataclass_replace(cam: CameraModel, **kw) -> CameraModel:
    import dataclasses

    return dataclasses.replace(cam, **kw)

"""The synthetic world: furniture, rooms, sensor, presets and the writer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from data_test_helpers import points_in_box

from sr3d_core.data.classes import SCANNET_CLASSES, SUNRGBD_CLASSES
from sr3d_core.data.info_scenes import DatasetConfig, InfoScenes
from sr3d_core.data.synthetic import furniture as F
from sr3d_core.data.synthetic.presets import PRESETS
from sr3d_core.data.synthetic.room import make_room
from sr3d_core.data.synthetic.scene import generate_scene
from sr3d_core.data.synthetic.sensor import CameraModel, RayCaster, camera_rotation
from sr3d_core.data.synthetic.writer import write_dataset


def test_every_class_has_a_model():
    kinds = set(F.ALL_KINDS)
    assert set(SCANNET_CLASSES) <= kinds and set(SUNRGBD_CLASSES) <= kinds


@pytest.mark.parametrize("kind", sorted(F.BUILDERS))
def test_builders_sit_on_the_floor_and_are_sized(kind):
    rng = np.random.default_rng(0)
    for _ in range(3):
        v, f, c = F.BUILDERS[kind](rng).finish()
        assert len(f) >= 12 and f.max() < len(v) and c.shape == (len(f), 3)
        assert v[:, 2].min() >= -1e-9 and 0.15 < v[:, 2].max() < 2.5
        assert 0.0 <= c.min() and c.max() <= 1.0


def test_room_boxes_are_tight_and_objects_do_not_overlap():
    for seed in range(6):
        room = make_room(np.random.default_rng(seed))
        for ob in room.objects:
            c, s = np.cos(ob.box[6]), np.sin(ob.box[6])
            d = ob.vertices - ob.box[:3]
            loc = np.c_[c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]]
            assert np.allclose(loc.max(0), ob.box[3:6] / 2, atol=1e-6)  # tight: touches every face
            assert np.allclose(loc.min(0), -ob.box[3:6] / 2, atol=1e-6)
        floor = [o for o in room.objects if o.kind not in ("door", "window", "picture", "showercurtain")]
        for i, a in enumerate(floor):  # centres of floor objects lie outside other floor objects' boxes
            for b in floor[i + 1 :]:
                assert not points_in_box(a.box[None, :3], b.box, eps=-1e-3).any()


def test_sensor_depth_matches_a_known_plane():
    from sr3d_core.data.synthetic.mesh import PartList

    p = PartList()
    p.box((3.0, 0, 1.0), (0.2, 10, 10), np.array([0.5, 0.5, 0.5]))  # wall face at x = 2.9
    v, f, c = p.finish()
    rc = RayCaster(v, f, c, np.zeros(len(f), np.int32))
    cam = CameraModel(noise_base=0.0, noise_quad=0.0, dropout=0.0)
    shot = rc.capture(cam, np.array([0.0, 0, 1.0]), camera_rotation(0.0, 0.0, 0.0), np.random.default_rng(0), 8)
    assert np.allclose(shot["points_cam"][:, 2], 2.9, atol=1e-4)  # optical z = depth
    assert len(shot["points_cam"]) > 0.9 * (640 // 8) * (480 // 8)


@pytest.mark.parametrize("name", ["sunrgbd-like", "scannet-like"])
def test_presets_generate_labelled_scenes(name):
    preset = PRESETS[name]
    s = generate_scene(preset, seed=3, index=0)
    assert s.points.dtype == np.float32 and s.points.shape == (preset.num_points, 6)
    assert len(s.boxes) == len(s.labels) > 0 and s.labels.max() < len(preset.class_names)
    if name == "scannet-like":
        assert (s.boxes[:, 6] == 0).all()
    for b in s.boxes:  # each kept box holds sensed points of its object
        assert points_in_box(s.points, b).sum() >= 10


def test_writer_is_byte_identical_across_worker_counts_and_loads(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    pa, _ = write_dataset("scannet-like", 2, 5, a, workers=1)
    pb, _ = write_dataset("scannet-like", 2, 5, b, workers=2)
    assert pa.read_bytes() == pb.read_bytes()
    for i in range(2):
        name = f"train_{i:06d}.bin"
        assert (a / "points" / name).read_bytes() == (b / "points" / name).read_bytes()
    ds = InfoScenes(DatasetConfig(str(a), pa.name, SCANNET_CLASSES))
    s = ds.load(0)  # through the real ScanNet loader: alignment undone, colours back in [0, 1]
    ref = generate_scene(PRESETS["scannet-like"], 5, 0)
    assert np.allclose(s.points[:, :3], ref.points[:, :3], atol=1e-4)
    assert np.allclose(s.points[:, 3:], ref.points[:, 3:], atol=1 / 255)
    assert np.allclose(s.gt_boxes, ref.boxes, atol=1e-5)


def test_sunrgbd_writer_roundtrip(tmp_path):
    p, _ = write_dataset("sunrgbd-like", 1, 2, tmp_path, workers=1)
    ds = InfoScenes(DatasetConfig(str(tmp_path), p.name, SUNRGBD_CLASSES))
    s = ds.load(0)
    ref = generate_scene(PRESETS["sunrgbd-like"], 2, 0)
    assert np.array_equal(s.points, ref.points) and np.array_equal(s.gt_boxes, ref.boxes)


def test_sunrgbd_frame_and_depth2img(tmp_path):
    preset = PRESETS["sunrgbd-like"]
    s = generate_scene(preset, seed=4, index=1)
    fwd = s.cam2frame[:3, :3] @ np.array([0.0, 0.0, 1.0])
    assert abs(fwd[0]) < 1e-9 and fwd[1] > 0.5  # SUN RGB-D convention: the camera looks along +y
    assert np.allclose(s.cam2frame[:3, 3], 0.0)  # origin at the camera
    p, _ = write_dataset("sunrgbd-like", 2, 4, tmp_path, workers=1)
    import pickle

    info = pickle.loads(p.read_bytes())["data_list"][1]
    P = np.asarray(info["images"]["CAM0"]["depth2img"])
    uvw = np.c_[s.points[:, :3], np.ones(len(s.points))] @ P.T
    uv = uvw[:, :2] / uvw[:, 2:3]
    inside = (uv[:, 0] > -1) & (uv[:, 0] < 641) & (uv[:, 1] > -1) & (uv[:, 1] < 481) & (uvw[:, 2] > 0)
    assert inside.mean() > 0.999  # every point projects back into the image it came from


def test_two_splits_share_one_directory_without_overwriting(tmp_path):
    """train and val written into one directory each keep their own points (they once collided on 000000.bin)."""
    p_train, _ = write_dataset("sunrgbd-like", 2, 2, tmp_path, split="train", workers=1)
    p_val, _ = write_dataset("sunrgbd-like", 2, 3, tmp_path, split="val", workers=1)
    for path, seed in ((p_train, 2), (p_val, 3)):
        ds = InfoScenes(DatasetConfig(str(tmp_path), path.name, SUNRGBD_CLASSES))
        for i in range(2):
            ref = generate_scene(PRESETS["sunrgbd-like"], seed, i)
            s = ds.load(i)
            assert np.array_equal(s.points, ref.points) and np.array_equal(s.gt_boxes, ref.boxes)


def test_full_resolution_preset_keeps_every_valid_pixel():
    base = PRESETS["sunrgbd-like"]
    full = base.full_resolution()
    assert full.num_points > 640 * 480 and dataclasses.replace(full, num_points=base.num_points) == base
    s = generate_scene(full, 1, 0)
    cam = base.camera
    # a 640x480 frame minus dropouts and out-of-range pixels: far above the stored 50k, below the pixel count
    assert 200_000 < len(s.points) <= cam.width * cam.height

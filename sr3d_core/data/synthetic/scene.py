"""One synthetic sample: furnish a room, move the sensor, cast rays, and box what it saw."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sr3d_core.boxes import wrap_angle
from sr3d_core.data.synthetic.mesh import rot_z
from sr3d_core.data.synthetic.presets import SyntheticPreset
from sr3d_core.data.synthetic.room import Room, make_room
from sr3d_core.data.synthetic.sensor import SENSORS, CameraModel, Lighting, RayCaster, camera_rotation

_NO_TARGET = {"door", "window", "picture", "curtain"}


@dataclass
class SceneSample:
    """A generated sample, before it is written in a dataset's file format.

    Attributes:
        points: (N, 6) float32 xyz + RGB in [0, 1], in the sample frame (see `frame`).
        boxes: (K, 7) float32 GT boxes in the same frame (yaw = 0 for axis-aligned presets).
        labels: (K,) int64 indices into the preset's class names.
        frame: "camera_gravity" (sunrgbd: origin at the camera, z up, looking along +y) or
            "room_aligned" (scannet: room axes, origin at the floor centre).
        cam2frame: (4, 4) optical frame -> sample frame for the (last) view.
        intrinsics: (3, 3) K of the camera.
        axis_align_matrix: (4, 4) raw -> aligned transform (scannet) or identity.
        room_type: Room type drawn.
        image_size: (height, width) of the depth image.
        sensor: Name of the sensor model that took the frame.
    """

    points: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    frame: str
    cam2frame: np.ndarray
    intrinsics: np.ndarray
    axis_align_matrix: np.ndarray
    room_type: str
    image_size: tuple[int, int] = (480, 640)
    sensor: str = "ideal"


def scene_seed(seed: int, index: int) -> np.random.SeedSequence:
    """Per-scene seed from (dataset seed, scene index): output does not depend on the worker count."""
    return np.random.SeedSequence([int(seed), int(index)])


def _assemble(room: Room) -> RayCaster:
    parts_v, parts_f, parts_c, parts_o, parts_m = [], [], [], [], []
    nv = 0
    sv, sf, sc = room.shell.finish()
    sid = np.full(len(sf), -1, np.int32)
    sid[(sv[sf][:, :, 2].min(1) >= room.height - 1e-6)] = -2  # ceiling slabs
    for i, (v, f, c, o, m) in enumerate(
        [(sv, sf, sc, sid, room.shell.materials())]
        + [
            (ob.vertices, ob.triangles, ob.colors, np.full(len(ob.triangles), k, np.int32), ob.materials)
            for k, ob in enumerate(room.objects)
        ]
    ):
        parts_v.append(v)
        parts_f.append(f + nv)
        parts_c.append(c)
        parts_o.append(o)
        parts_m.append(np.zeros(len(f), np.int8) if m is None else m)
        nv += len(v)
    colors = np.concatenate(parts_c)
    if room.world.lighting:  # surfaces are not flat-coloured: a little colour variation per triangle
        colors = np.clip(colors * room.rng.uniform(0.88, 1.12, (len(colors), 1)), 0, 1)
    return RayCaster(
        np.concatenate(parts_v), np.concatenate(parts_f), colors, np.concatenate(parts_o), np.concatenate(parts_m)
    )


def _handheld_pose(
    room: Room, rng: np.random.Generator, classes: tuple[str, ...]
) -> tuple[np.ndarray, float, float, float]:
    """A hand-held capture as in SUN RGB-D: chest-to-eye height, pitched down, small roll, turned roughly towards
    a piece of furniture 1-4.5 m away (or anywhere) rather than aimed at it."""
    h = float(np.clip(rng.normal(1.3, 0.2), 0.75, 1.8))
    tilt = float(np.clip(rng.normal(0.3, 0.14), -0.05, 0.8))
    roll = float(rng.normal(0.0, 0.05))
    targets = [o for o in room.objects if o.kind in classes] or [o for o in room.objects if o.kind not in _NO_TARGET]
    xy = None
    if targets and rng.random() < 0.85:
        t = targets[rng.integers(len(targets))].box[:2]
        for _ in range(12):
            cand = room.random_free_xy(0.25)
            if cand is not None and 1.0 <= np.hypot(*(t - cand)) <= 4.5:
                xy = cand
                break
        if xy is not None:
            yaw = float(np.arctan2(*(t - xy)[::-1]) + rng.normal(0, 0.35))
            return np.array([xy[0], xy[1], h]), yaw, tilt, roll
    xy = room.random_free_xy(0.25)
    xy = room.polygon.mean(0) if xy is None else xy
    return np.array([xy[0], xy[1], h]), float(rng.uniform(-np.pi, np.pi)), tilt, roll


def _look_pose(
    room: Room, rng: np.random.Generator, classes: tuple[str, ...]
) -> tuple[np.ndarray, float, float, float]:
    """A robot-height camera in free space, 1-4 m from one piece of furniture and roughly facing it."""
    if room.world.camera:
        return _handheld_pose(room, rng, classes)
    targets = [o for o in room.objects if o.kind in classes] or [o for o in room.objects if o.kind not in _NO_TARGET]
    h = rng.uniform(0.8, 1.6)
    if not targets:
        xy = room.random_free_xy(0.25)
        xy = room.polygon.mean(0) if xy is None else xy
        return np.array([xy[0], xy[1], h]), rng.uniform(-np.pi, np.pi), rng.uniform(0.1, 0.5), 0.0
    t = targets[rng.integers(len(targets))].box[:3]
    best, best_err = None, np.inf
    for _ in range(12):  # prefer a stand-off like a person taking a photo of it
        xy = room.random_free_xy(0.25)
        if xy is None:
            break
        dist = np.hypot(*(t[:2] - xy))
        err = max(0.0, 1.2 - dist) + max(0.0, dist - 4.0)
        if err < best_err:
            best, best_err = xy, err
        if err == 0.0:
            break
    xy = room.polygon.mean(0) if best is None else best
    d = t[:2] - xy
    yaw = float(np.arctan2(d[1], d[0]) + rng.normal(0, 0.2))
    tilt = float(np.clip(np.arctan2(h - t[2], max(np.hypot(*d), 0.5)) + rng.normal(0, 0.1), -0.05, 0.7))
    return np.array([xy[0], xy[1], h]), yaw, tilt, float(rng.normal(0, 0.03))


def _view_score(
    caster: RayCaster,
    room: Room,
    pose,
    preset: SyntheticPreset,
    rng: np.random.Generator,
    cam: CameraModel | None = None,
) -> float:
    """Cheap preview (every 8th pixel): labelled objects in view plus the fraction of valid returns."""
    cam = preset.camera if cam is None else cam
    pos, yaw, tilt, roll = pose
    shot = caster.capture(cam, pos, camera_rotation(yaw, tilt, roll), rng, 8)
    oid = shot["object_id"]
    kinds = [room.objects[k].kind for k in np.unique(oid[oid >= 0]) if (oid == k).sum() >= 5]
    n_cls = sum(k in preset.class_names for k in kinds)
    n_pix = (cam.width // 8) * (cam.height // 8)
    return n_cls + len(oid) / n_pix


def frame_camera(preset: SyntheticPreset, rng: np.random.Generator) -> CameraModel:
    """The camera of one frame: the preset's, or one of the real sensor models when the world simulates them."""
    if not preset.world.sensor:
        return preset.camera
    names = sorted(SENSORS)
    return SENSORS[names[rng.integers(len(names))]]


def _trajectory(room: Room, rng: np.random.Generator, n: int) -> list[tuple[np.ndarray, float, float, float]]:
    """A scanning loop: views along an ellipse inside the room, looking outwards or inwards, and down."""
    lo, hi = room.polygon.min(0), room.polygon.max(0)
    c = (lo + hi) / 2 + rng.normal(0, 0.1, 2)
    rad = (hi - lo) / 2 * rng.uniform(0.35, 0.6)
    a0 = rng.uniform(0, 2 * np.pi)
    poses = []
    for k in range(n):
        a = a0 + 2 * np.pi * k / n
        xy = c + rad * np.array([np.cos(a), np.sin(a)])
        i, j = int(xy[0] / 0.05), int(xy[1] / 0.05)
        if not (0 <= i < room.nx and 0 <= j < room.ny) or room.occ[i, j]:
            alt = room.random_free_xy(0.2)
            if alt is None:
                continue
            xy = alt
        # Alternate outward views (walls, furniture along them) and inward ones (the middle of
        # the room and its floor), as a person sweeping a handheld sensor does.
        if k % 2 == 0:
            yaw, tilt = float(a + rng.normal(0, 0.5)), float(rng.uniform(0.25, 0.7))
        else:
            yaw, tilt = float(a + np.pi + rng.normal(0, 0.6)), float(rng.uniform(0.5, 0.95))
        poses.append((np.array([xy[0], xy[1], rng.uniform(1.2, 1.7)]), yaw, tilt, float(rng.normal(0, 0.03))))
    return poses


def _voxel_mean(pts: np.ndarray, col: np.ndarray, oid: np.ndarray, voxel: float):
    q = np.floor(pts / voxel).astype(np.int64)
    q -= q.min(0)
    key = (q[:, 0] << 42) | (q[:, 1] << 21) | q[:, 2]  # packed 1-D key: unique on int64 is ~50x faster than axis=0
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    inv = inv.ravel()
    cnt = np.bincount(inv).astype(np.float64)[:, None]
    p = np.stack([np.bincount(inv, pts[:, k]) for k in range(3)], 1) / cnt
    c = np.stack([np.bincount(inv, col[:, k]) for k in range(3)], 1) / cnt
    return p, c.astype(np.float32), oid[first]


def _visible_fraction(pts: np.ndarray, box: np.ndarray) -> float:
    """Footprint coverage of a box by the points seen on its object (product of x and y spans)."""
    loc = (pts[:, :2] - box[:2]) @ rot_z(box[6])[:2, :2]
    span = loc.max(0) - loc.min(0)
    return float(np.prod(np.clip(span / np.maximum(box[3:5], 1e-3), 0, 1)))


def build_room(preset: SyntheticPreset, rng: np.random.Generator) -> tuple[Room, RayCaster]:
    """Draw a furnished room (redrawn up to 3 times if it holds none of the preset's classes) and its ray caster."""
    room = make_room(rng, world=preset.world)
    for _ in range(3):  # a frame of a room with none of the preset's classes teaches little: redraw
        if any(o.kind in preset.class_names for o in room.objects):
            break
        room = make_room(rng, world=preset.world)
    return room, _assemble(room)


def labelled_boxes(
    room: Room, pts: np.ndarray, oid: np.ndarray, preset: SyntheticPreset
) -> tuple[np.ndarray, np.ndarray]:
    """The GT of what a capture saw: boxes of the preset's classes with enough visible points.

    Args:
        room: The room.
        pts: (N, 3) captured points in the room frame.
        oid: (N,) object index of each point (see `RayCaster.capture`).
        preset: Its class names, `min_points` and `min_visible_fraction` decide.

    Returns:
        `(K, 7)` float64 boxes in the room frame (axis-aligned mesh bounds for ScanNet-like presets) and `(K,)`
        int64 labels.
    """
    cls_index = {n: i for i, n in enumerate(preset.class_names)}
    counts = np.bincount(oid[oid >= 0], minlength=len(room.objects))
    boxes, labels = [], []
    for k, ob in enumerate(room.objects):
        if ob.kind not in cls_index or counts[k] < preset.min_points:
            continue
        frac = preset.min_visible_fraction
        if frac > 0 and _visible_fraction(pts[oid == k], ob.box) < frac:
            continue
        if preset.dataset == "scannet":  # axis-aligned box enclosing the mesh
            lo, hi = ob.vertices.min(0), ob.vertices.max(0)
            boxes.append(np.concatenate([(lo + hi) / 2, hi - lo, [0.0]]))
        else:
            boxes.append(ob.box.copy())
        labels.append(cls_index[ob.kind])
    return np.asarray(boxes, np.float64).reshape(-1, 7), np.asarray(labels, np.int64)


def generate_scene(preset: SyntheticPreset, seed: int, index: int) -> SceneSample:
    """Generate sample `index` of a dataset with seed `seed` (deterministic in both).

    Args:
        preset: What to simulate.
        seed: Dataset seed.
        index: Scene index.

    Returns:
        The sample, boxes tight to the object meshes, with only sufficiently visible objects
        of the preset's classes labelled.
    """
    rng = np.random.default_rng(scene_seed(seed, index))
    room, caster = build_room(preset, rng)
    cam = frame_camera(preset, rng)
    lighting = None
    if preset.world.lighting:
        light = np.r_[room.polygon.mean(0) + rng.normal(0, 0.5, 2), room.height - 0.1]
        lighting = Lighting.draw(rng, light)
    single = preset.num_views == (1, 1)
    for attempt in range(4):
        if single:  # best of a few candidate views, judged on a cheap low-res preview
            cands = [_look_pose(room, rng, preset.class_names) for _ in range(4)]
            scores = [_view_score(caster, room, c, preset, rng, cam) for c in cands]
            poses = [cands[int(np.argmax(scores))]]
        else:
            poses = _trajectory(room, rng, int(rng.integers(preset.num_views[0], preset.num_views[1] + 1)))
        pts_l, col_l, oid_l = [], [], []
        for pos, yaw, tilt, roll in poses:
            R = camera_rotation(yaw, tilt, roll)
            shot = caster.capture(cam, pos, R, rng, preset.image_stride, lighting)
            pts_l.append(shot["points_cam"] @ R.T + pos)
            col_l.append(shot["colors"])
            oid_l.append(shot["object_id"])
        pts, col, oid = np.concatenate(pts_l), np.concatenate(col_l), np.concatenate(oid_l)
        if not preset.keep_ceiling:
            keep = oid != -2
            pts, col, oid = pts[keep], col[keep], oid[keep]
        if preset.voxel_size:
            pts, col, oid = _voxel_mean(pts, col, oid, preset.voxel_size)
        if len(pts) > preset.num_points:
            sel = np.sort(rng.choice(len(pts), preset.num_points, replace=False))
            pts, col, oid = pts[sel], col[sel], oid[sel]
        boxes_a, labels = labelled_boxes(room, pts, oid, preset)
        if len(boxes_a) or attempt == 3:
            break
    pos, yaw, tilt, roll = poses[-1]
    R_last = camera_rotation(yaw, tilt, roll)
    if single:
        # SUN RGB-D convention: origin at the camera, z up, optical axis heading along +y.
        G = rot_z(np.pi / 2 - yaw)
        pts = (pts - pos) @ G.T
        if len(boxes_a):
            boxes_a[:, :3] = (boxes_a[:, :3] - pos) @ G.T
            boxes_a[:, 6] = wrap_angle(boxes_a[:, 6] + np.pi / 2 - yaw)
        cam2frame = np.eye(4)
        cam2frame[:3, :3] = G @ R_last
        frame = "camera_gravity"
    else:
        # ScanNet convention: aligned frame has the room axes, origin at the floor centre.
        off = np.r_[(room.polygon.min(0) + room.polygon.max(0)) / 2, 0.0]
        pts = pts - off
        if len(boxes_a):
            boxes_a[:, :3] -= off
        cam2frame = np.eye(4)
        cam2frame[:3, :3] = R_last
        cam2frame[:3, 3] = pos - off
        frame = "room_aligned"
    align = np.eye(4)
    if preset.dataset == "scannet":
        # Raw scans are stored in a random frame; axis_align_matrix (raw -> aligned) undoes it.
        a = rng.uniform(-np.pi, np.pi)
        align[:3, :3] = rot_z(a)
        align[:3, 3] = [*rng.normal(0, 0.5, 2), 0.0]
    points = np.concatenate([pts, col], 1).astype(np.float32)
    return SceneSample(
        points,
        boxes_a.astype(np.float32),
        labels,
        frame,
        cam2frame,
        cam.intrinsic_matrix(),
        align,
        room.room_type,
        (cam.height, cam.width),
        cam.name,
    )

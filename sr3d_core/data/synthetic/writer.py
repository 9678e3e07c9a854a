"""Write synthetic samples in exactly the on-disk format of mmdet3d's create_data.py output.

Layout under `out`:
    points/{split}_{index:06d}.bin    float32 (N, 6) xyz + RGB (the split in the name lets several
                                      splits share one directory without overwriting each other)
    {dataset}_infos_{split}.pkl       mmdet3d v1.1 info dict (metainfo + data_list)
ScanNet-like points are stored in the raw (unaligned) frame with RGB in 0-255, SUN RGB-D-like
points in the camera-gravity frame with RGB in [0, 1], as the real converters do, so the real
loaders read synthetic data through the same code path.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sr3d_core.data.synthetic.presets import PRESETS, SyntheticPreset
from sr3d_core.data.synthetic.scene import SceneSample, generate_scene


def info_path(out: str | Path, preset: SyntheticPreset, split: str) -> Path:
    """Path of the info file a run writes."""
    return Path(out) / f"{preset.dataset}_infos_{split}.pkl"


def _write_one(args: tuple[SyntheticPreset, int, int, str, str]) -> dict[str, Any]:
    preset, seed, index, out, split = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    s = generate_scene(preset, seed, index)
    name = f"{split}_{index:06d}.bin"
    pts = s.points.copy()
    if preset.dataset == "scannet":
        inv = np.linalg.inv(s.axis_align_matrix)
        pts[:, :3] = pts[:, :3] @ inv[:3, :3].T + inv[:3, 3]
        pts[:, 3:6] = np.round(pts[:, 3:6] * 255.0)
    pts.astype(np.float32).tofile(Path(out) / "points" / name)
    return sample_info(preset, s, index, name)


def sample_info(preset: SyntheticPreset, s: SceneSample, index: int, lidar_path: str) -> dict[str, Any]:
    """The v1.1 data_list entry of one sample (plain Python types only, for stable pickles)."""
    info: dict[str, Any] = {
        "sample_idx": index,
        "lidar_points": {"num_pts_feats": 6, "lidar_path": lidar_path},
    }
    if preset.dataset == "scannet":
        info["axis_align_matrix"] = s.axis_align_matrix.tolist()
        info["instances"] = [
            {"bbox_3d": [float(v) for v in b[:6]], "bbox_label_3d": int(lab)} for b, lab in zip(s.boxes, s.labels)
        ]
    else:
        K4 = np.eye(4)
        K4[:3, :3] = s.intrinsics
        depth2img = K4 @ np.linalg.inv(s.cam2frame)
        info["images"] = {
            "CAM0": {
                "img_path": "",
                "height": s.image_size[0],
                "width": s.image_size[1],
                "depth2img": depth2img.tolist(),
            }
        }
        info["instances"] = [
            {"bbox_3d": [float(v) for v in b], "bbox_label_3d": int(lab)} for b, lab in zip(s.boxes, s.labels)
        ]
    info["synthetic"] = {"room_type": s.room_type, "frame": s.frame, "cam2frame": s.cam2frame.tolist()}
    if preset.world.sensor:
        info["synthetic"]["sensor"] = s.sensor
    return info


def write_dataset(
    preset_name: str | SyntheticPreset,
    num_scenes: int,
    seed: int,
    out: str | Path,
    split: str = "train",
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> tuple[Path, float]:
    """Generate and write `num_scenes` samples; identical bytes for identical (preset, seed, N).

    Args:
        preset_name: Key of PRESETS, or a preset (e.g. one with a world factor switched off).
        num_scenes: Number of samples.
        seed: Dataset seed; scene i uses SeedSequence([seed, i]).
        out: Output directory.
        split: Split name used in the info file name.
        workers: Processes; output does not depend on it.
        progress: Called with the number of scenes finished (for a progress bar).

    Returns:
        (info file path, seconds taken).
    """
    if isinstance(preset_name, SyntheticPreset):
        preset = preset_name
    elif preset_name in PRESETS:
        preset = PRESETS[preset_name]
    else:
        raise ValueError(f"unknown preset {preset_name!r}; choose from {sorted(PRESETS)}")
    out = Path(out)
    (out / "points").mkdir(parents=True, exist_ok=True)
    jobs = [(preset, seed, i, str(out), split) for i in range(num_scenes)]
    t0 = time.perf_counter()
    infos: list[dict[str, Any]] = []
    if workers <= 1:
        for j in jobs:
            # Round-trip like the worker results do, so object sharing (and so the pickle's memo
            # layout) is the same whatever the worker count: byte-identical info files.
            infos.append(pickle.loads(pickle.dumps(_write_one(j), protocol=4)))
            if progress:
                progress(1)
    else:
        with ProcessPoolExecutor(workers) as ex:
            for info in ex.map(_write_one, jobs, chunksize=1):  # map keeps scene order
                infos.append(info)
                if progress:
                    progress(1)
    meta = {
        "categories": {n: i for i, n in enumerate(preset.class_names)},
        "dataset": preset.dataset,
        "info_version": "1.1",
        "synthetic_preset": preset.name,
        "seed": seed,
    }
    if preset.world.any:
        meta["synthetic_world"] = dataclasses.asdict(preset.world)
    path = info_path(out, preset, split)
    with open(path, "wb") as f:
        pickle.dump({"metainfo": meta, "data_list": infos}, f, protocol=4)
    return path, time.perf_counter() - t0

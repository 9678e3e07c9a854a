"""Presets that make synthetic data look like one of the real benchmarks."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field

from sr3d_core.data.classes import SCANNET_CLASSES, SUNRGBD_CLASSES
from sr3d_core.data.synthetic.sensor import CameraModel
from sr3d_core.data.synthetic.world import LEGACY_WORLD, REAL_WORLD, WorldConfig


@dataclass(frozen=True)
class SyntheticPreset:
    """How scenes are sensed, labelled and written.

    Attributes:
        name: Preset name (key of PRESETS).
        dataset: Which real loader format is written: "sunrgbd" or "scannet".
        class_names: Labelled classes, in label order; other objects stay as unlabelled clutter.
        num_views: (min, max) camera views per sample; 1 means a single RGB-D frame.
        image_stride: Pixel stride of each rendered view (scans fuse many low-res views).
        voxel_size: Voxel grid for fusing views (m), or None for no downsampling.
        num_points: Points stored per sample (mmdet3d's converters store 50,000 for both sets).
        min_points: A box is kept only if at least this many points fall on its object.
        min_visible_fraction: ...and its visible points span at least this fraction of the box's
            footprint (x-extent times y-extent coverage, in the box frame).
        keep_ceiling: Keep points on the ceiling.
        camera: The depth camera (with `world.sensor` on, each frame draws one of the real sensor models instead).
        world: Realism factors of the rooms, sensors and light.
    """

    name: str
    dataset: str
    class_names: tuple[str, ...]
    num_views: tuple[int, int]
    image_stride: int
    voxel_size: float | None
    num_points: int
    min_points: int
    min_visible_fraction: float
    keep_ceiling: bool
    camera: CameraModel = field(default_factory=CameraModel)
    world: WorldConfig = LEGACY_WORLD

    def full_resolution(self) -> "SyntheticPreset":
        """The same preset keeping every valid pixel (no `num_points` subsample): what a live camera sends."""
        return dataclasses.replace(self, num_points=sys.maxsize)

    def with_world(self, world: WorldConfig) -> "SyntheticPreset":
        """The same preset in another world (e.g. with one factor off, for an ablation)."""
        return dataclasses.replace(self, world=world)


PRESETS: dict[str, SyntheticPreset] = {
    "sunrgbd-like": SyntheticPreset(
        name="sunrgbd-like",
        dataset="sunrgbd",
        class_names=SUNRGBD_CLASSES,
        num_views=(1, 1),
        image_stride=1,
        voxel_size=None,
        num_points=50_000,
        min_points=50,
        min_visible_fraction=0.25,
        keep_ceiling=True,
    ),
    # SUN RGB-D-like frames from the world matched to real rooms: real sizes, furniture parts and look-alikes,
    # clutter, dressed walls, real sensor models, hand-held camera poses and varied light.
    "sunrgbd-real": SyntheticPreset(
        name="sunrgbd-real",
        dataset="sunrgbd",
        class_names=SUNRGBD_CLASSES,
        num_views=(1, 1),
        image_stride=1,
        voxel_size=None,
        num_points=50_000,
        min_points=50,
        min_visible_fraction=0.25,
        keep_ceiling=True,
        world=REAL_WORLD,
    ),
    "scannet-like": SyntheticPreset(
        name="scannet-like",
        dataset="scannet",
        class_names=SCANNET_CLASSES,
        num_views=(24, 40),
        image_stride=4,
        voxel_size=0.02,
        num_points=50_000,
        min_points=30,
        min_visible_fraction=0.0,
        keep_ceiling=False,
    ),
}

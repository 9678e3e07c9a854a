"""Which realism factors the synthetic world simulates, each one a switch (for ablations).

With every factor off the world is the original one: box-like furniture at hand-picked sizes, an ideal
Kinect-like sensor and a camera aimed at a piece of furniture; generation then draws exactly the same random
numbers as before, so old data sets are reproduced byte for byte.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class WorldConfig:
    """Realism factors of the synthetic world.

    Attributes:
        sizes: Labelled furniture is resized to per-class sizes drawn around SUN RGB-D's published class mean
            sizes (VoteNet / mmdet3d), and bedroom layouts follow real ones (night stands beside the bed, a
            dresser or wardrobe on another wall, more objects per room).
        parts: Furniture has the parts real furniture has (tall and framed headboards, footboards, draped
            blankets, several pillows, legs and plinths, mirrors above dressers, lamps on night stands), and the
            unlabelled look-alikes stand in the rooms: wardrobes, TV stands with a TV, kitchen units, benches,
            ottomans, shoe racks, filing cabinets.
        clutter: Small objects on tops and shelves (books, boxes, bottles, monitors, plants, bags) and on the
            floor (boxes, bags, laundry, rugs), and bedding bumps.
        walls: Walls dressed like real rooms: more pictures, wall shelves, mounted TVs, radiators under windows,
            wall mirrors, light switches, ceiling lamps.
        sensor: Depth sensors modelled on real RGB-D cameras (Kinect v1 / Asus Xtion, Kinect v2, RealSense
            D4xx): their resolution and field of view, depth-dependent noise and quantization, flying pixels at
            depth edges, missing depth on dark, shiny and transparent surfaces and on thin structures, and
            colour-depth misregistration.
        camera: Camera poses spread like SUN RGB-D's hand-held captures: height, downward pitch and roll, not
            necessarily aimed at one piece of furniture.
        lighting: Per-frame exposure, white balance and light fall-off, and per-surface colour variation.
    """

    sizes: bool = False
    parts: bool = False
    clutter: bool = False
    walls: bool = False
    sensor: bool = False
    camera: bool = False
    lighting: bool = False

    @staticmethod
    def factors() -> tuple[str, ...]:
        """Names of the factors, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(WorldConfig))

    @property
    def any(self) -> bool:
        """True when at least one factor is on."""
        return any(getattr(self, n) for n in self.factors())

    def without(self, *names: str) -> "WorldConfig":
        """The same world with the named factors switched off.

        Raises:
            ValueError: A name is not a factor.
        """
        bad = [n for n in names if n not in self.factors()]
        if bad:
            raise ValueError(f"unknown world factor(s) {bad}; factors are {list(self.factors())}")
        return dataclasses.replace(self, **{n: False for n in names})


LEGACY_WORLD = WorldConfig()
REAL_WORLD = WorldConfig(sizes=True, parts=True, clutter=True, walls=True, sensor=True, camera=True, lighting=True)

"""The ROS-free result type shared by inference, evaluation and the ROS conversions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Detections of one frame, in the frame the points were given in.

    Attributes:
        boxes: ``(K, 7)`` float32 boxes ``(x, y, z, dx, dy, dz, yaw)``: gravity centre, full extents
            in metres, yaw about +z from +x toward +y (see ``sr3d_core.boxes``).
        scores: ``(K,)`` float32 confidences in [0, 1].
        labels: ``(K,)`` int64 class indices into ``class_names``.
        class_names: the class names of the model that produced them.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        k = len(self.scores)
        if self.boxes.shape != (k, 7):
            raise ValueError(f"Detections.boxes must have shape ({k}, 7), got {self.boxes.shape}")
        if self.labels.shape != (k,):
            raise ValueError(f"Detections.labels must have shape ({k},), got {self.labels.shape}")
        if k and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError("Detections.labels must index into class_names")

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def empty(class_names: tuple[str, ...]) -> "Detections":
        """Return a frame with no detections."""
        return Detections(
            np.zeros((0, 7), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64), tuple(class_names)
        )

"""The gt_iou oracle replaces exactly the foreground anchors' GT-class scores by their IoU."""

import pytest
import torch

from sr3d_core.evaluation.oracle import gt_iou_logits


def test_gt_iou_logits_by_hand():
    gt = torch.tensor([[0.0, 0, 0, 2, 2, 2, 0], [5.0, 0, 0, 2, 2, 2, 0]])
    labels = torch.tensor([1, 0])
    anchors = torch.tensor([[0.1, 0, 0], [-0.5, 0, 0], [3.0, 0, 0], [5.0, 0.5, 0]])
    boxes = torch.tensor(
        [
            [0.0, 0, 0, 2, 2, 1.8, 0],  # inside GT 0: IoU 0.9
            [0.0, 0, 1, 2, 2, 2, 0],  # inside GT 0: IoU 1/3 (half the height overlaps: 4 / 12)
            [0.0, 0, 0, 2, 2, 2, 0],  # inside no GT: untouched even though its box is perfect
            [9.0, 0, 0, 1, 1, 1, 0],  # inside GT 1, no overlap: IoU 0 (clamped to 1e-6)
        ]
    )
    logits = torch.full((4, 2), 2.0)
    got = gt_iou_logits(anchors, boxes, logits, gt, labels, rotated=False).sigmoid()
    assert got[0, 1].item() == pytest.approx(0.9, rel=1e-5) and got[1, 1].item() == pytest.approx(1 / 3, rel=1e-5)
    assert got[3, 0].item() == pytest.approx(1e-6, rel=1e-3)
    # Other classes and the background anchor keep their scores; the input is not modified.
    untouched = torch.sigmoid(torch.tensor(2.0)).item()
    assert got[0, 0].item() == got[2, 0].item() == got[2, 1].item() == pytest.approx(untouched)
    assert torch.all(logits == 2.0)

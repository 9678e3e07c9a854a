"""Evaluate a checkpoint: mAP@0.25/0.5, per-class AP table, mAR, latency.

``python training/evaluate.py --checkpoint runs/x/final.pt [--repeats 5] [--split val]``

``--repeats`` re-runs the test pass (the random test-time sampling of SUN RGB-D differs per run) and reports the
best and the mean, as in TR3D/SR3D's 5 trainings × 5 test runs protocol (pass several checkpoints for the 5
trainings; the best and mean are then over all checkpoint × repeat numbers).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sr3d_core.config import Config  # noqa: E402
from sr3d_core.evaluation.indoor_map import IndoorMapEvaluator, SceneGroundTruth  # noqa: E402
from sr3d_core.evaluation.oracle import predict_with_gt_iou  # noqa: E402
from sr3d_core.model.detector import predict, sparse_to  # noqa: E402
from sr3d_core.preprocess import NEUTRAL_COLOR, prepare_points, to_sparse_batch  # noqa: E402


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    cfg: Config,
    source: Any,
    device: torch.device,
    repeat_index: int = 0,
    max_scenes: Optional[int] = None,
    strict_mmdet3d: bool = False,
    keep_scenes: bool = False,
    oracle: Optional[str] = None,
    neutral_color: bool = False,
) -> dict[str, Any]:
    """Run the model over a scene source and compute the indoor mAP.

    Args:
        model: the detector (switched to eval mode here; the caller restores train mode).
        cfg: its config (input contract, post-processing, class names).
        source: scenes (``sr3d_core.data.sources.SceneSource``), read without augmentation.
        device: device of the model.
        repeat_index: seeds the test-time sampling, so each repeat draws a different subsample.
        max_scenes: evaluate only the first scenes.
        strict_mmdet3d: keep classes without GT in the means (mmdet3d: a class with detections but no GT makes
            mAP nan). The default drops them, which only matters on small (synthetic) sets; on the real val sets
            every class has GT and the two agree.
        keep_scenes: also return ``scenes``, the list of ``(SceneGroundTruth, Detections)`` per scene, so
            other metrics (subsets, PCE) can be computed without running the model again.
        neutral_color: replace every colour by ``NEUTRAL_COLOR`` (what the node feeds a colour model for a cloud
            without colour), to measure what missing colour costs.
        oracle: ``"gt_iou"``: score foreground anchors by their box's true IoU with the GT
            (``sr3d_core.evaluation.oracle``), an upper bound on what better-aligned scores could give.

    Returns:
        ``mAP_0.25``, ``mAP_0.5``, ``mAR_0.25``, ``mAR_0.5``, ``table`` (str), ``result`` (IndoorMapResult),
        ``evaluator`` (the filled IndoorMapEvaluator), ``latency_ms`` (mean per scene: preprocessing + network +
        post-processing), and ``scenes`` when asked for.
    """
    n = len(source) if max_scenes is None else min(max_scenes, len(source))
    if n < 1:
        raise ValueError(f"nothing to evaluate: {len(source)} scenes, max_scenes={max_scenes}")
    model.eval()
    contract = cfg.contract
    ev = IndoorMapEvaluator(cfg.class_names, skip_classes_without_gt=not strict_mmdet3d)
    times, scenes = [], []
    for i in range(n):
        rng = np.random.default_rng([cfg.train.seed, 1_000_003, repeat_index, i])
        scene = source.get(i, rng, train=False)
        if neutral_color and scene.points.shape[1] >= 6:
            scene = dataclasses.replace(scene, points=scene.points.copy())
            scene.points[:, 3:6] = NEUTRAL_COLOR
        t0 = time.perf_counter()
        pts = prepare_points(scene.points, contract, rng=rng if repeat_index else None)
        x, _ = to_sparse_batch([pts], contract, reduce="random", seed=repeat_index)
        x = sparse_to(x, device)
        if oracle == "gt_iou":
            det = predict_with_gt_iou(model, x, torch.as_tensor(np.asarray(scene.gt_boxes, np.float32)),
                                      torch.as_tensor(np.asarray(scene.gt_labels, np.int64)), cfg.postprocess,
                                      cfg.class_names)
        else:
            det = predict(model, x, cfg.postprocess, cfg.class_names)[0]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
        gt = SceneGroundTruth(np.asarray(scene.gt_boxes, np.float32), np.asarray(scene.gt_labels))
        ev.add(gt, det)
        if keep_scenes:
            scenes.append((gt, det))
    res = ev.compute()
    out = {
        "mAP_0.25": res.map_at(0.25),
        "mAP_0.5": res.map_at(0.5),
        "mAR_0.25": res.mar_at(0.25),
        "mAR_0.5": res.mar_at(0.5),
        "table": res.as_table(),
        "result": res,
        "evaluator": ev,
        "latency_ms": 1000 * float(np.mean(times[1:] if len(times) > 1 else times)),
    }
    if keep_scenes:
        out["scenes"] = scenes
    return out


def main(argv: Optional[list[str]] = None) -> int:
    """CLI entry point."""
    from sr3d_core.data.sources import build_source
    from sr3d_core.inference import Detector, resolve_device

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, nargs="+", type=Path, help="one or more (e.g. 5 trainings)")
    ap.add_argument("--split", default="val", choices=["train", "val"])
    ap.add_argument("--repeats", type=int, default=1, help="test runs per checkpoint (paper: 5)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--max-scenes", type=int, default=None, help="evaluate only the first N scenes (N >= 1)")
    ap.add_argument("--data-root", type=Path, default=None,
                    help="data folder to read instead of the checkpoint's data.root (data kept elsewhere)")
    ap.add_argument("--strict-mmdet3d", action="store_true", help="classes without GT stay in the means (nan)")
    ap.add_argument("--oracle", choices=["gt_iou"], default=None,
                    help="gt_iou: foreground anchors scored by their true IoU (an upper bound on score alignment)")
    ap.add_argument("--neutral-color", action="store_true",
                    help="feed every point the neutral colour (measures what clouds without colour cost)")
    ap.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.max_scenes is not None and args.max_scenes < 1:
        ap.error(f"--max-scenes must be >= 1, got {args.max_scenes}")
    device = resolve_device(args.device)
    runs = []
    for ckpt in args.checkpoint:
        det = Detector.from_checkpoint(ckpt, device=device)
        cfg = det.config
        if args.data_root is not None:
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(args.data_root)))
        try:
            source = build_source(cfg, args.split)
        except FileNotFoundError as e:
            ap.error(f"{e} (the checkpoint's data.root is {det.config.data.root!r}; point --data-root at the data)")
        if len(source) == 0:
            ap.error(f"the {args.split} split of {cfg.data.root} has no scenes: nothing to evaluate")
        for r in range(args.repeats):
            res = evaluate_model(det.model, det.config, source, det.device, r, args.max_scenes, args.strict_mmdet3d,
                                 oracle=args.oracle, neutral_color=args.neutral_color)
            print(f"== {ckpt} run {r}: mAP@0.25 {res['mAP_0.25']:.4f}  mAP@0.5 {res['mAP_0.5']:.4f}  "
                  f"mAR@0.25 {res['mAR_0.25']:.4f}  mAR@0.5 {res['mAR_0.5']:.4f}  "
                  f"latency {res['latency_ms']:.1f} ms/scene")
            if r == 0:
                print(res["table"])
            numbers = {k: v for k, v in res.items() if k not in ("table", "result", "evaluator")}
            runs.append(numbers | {"checkpoint": str(ckpt)})
    summary = {}
    for key in ("mAP_0.25", "mAP_0.5"):
        vals = np.array([r[key] for r in runs])
        summary[key] = {"best": float(vals.max()), "mean": float(vals.mean()), "n": len(vals)}
        print(f"{key}: best {vals.max():.4f} (mean {vals.mean():.4f}) over {len(vals)} runs")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Evaluate a checkpoint: mAP@0.25/0.5, per-class AP table, mAR, latency, and precision / recall at the node's
score threshold (``sr3d-evaluate``; ``python training/evaluate.py`` runs the same).

``sr3d-evaluate --checkpoint runs/x/final.pt [--repeats 5] [--split val] [--score-threshold 0.3] [--bev-dir out/]``

mAP ranks every box down to the checkpoint's low ``postprocess.score_threshold`` and leaves out classes without
ground truth; precision / recall count what a user of the node sees: every box of every class scored at or above
``--score-threshold`` (default: the node's ``score_threshold``), matched to the ground truth at IoU >= 0.25 and
0.5. ``--bev-dir`` draws each scene from above with its ground truth and those boxes. These rules are one
``EvaluationProtocol`` (``sr3d_core.evaluation.protocol``), the one ``sr3d-replay`` scores with; ``--json`` writes
it as ``protocol`` next to the numbers.

``--score-sweep 0.1 0.2 0.3 0.4 0.5`` adds the same precision / recall at each of those thresholds, one line each:
the operating points to choose the node's ``score_threshold`` from.

``--repeats`` re-runs the test pass (the random test-time sampling of SUN RGB-D differs per run) and reports the
best and the mean, as in TR3D/SR3D's 5 trainings × 5 test runs protocol (pass several checkpoints for the 5
trainings; the best and mean are then over all checkpoint × repeat numbers).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from sr3d_core.config import DEPLOY_SCORE_THRESHOLD
from sr3d_core.data.info_scenes import InfoScenes
from sr3d_core.data.infos import Sample
from sr3d_core.data.sources import build_source
from sr3d_core.detections import Detections
from sr3d_core.evaluation.alignment import plot_alignment
from sr3d_core.evaluation.bev import COLOR_MODES, write_bev
from sr3d_core.evaluation.detector_pass import ORACLES, Evaluation, SceneCallback, evaluate_detector
from sr3d_core.evaluation.indoor_map import SceneGroundTruth
from sr3d_core.evaluation.precision_recall import (
    ALL_CLASSES,
    PrecisionRecallCounter,
    PrecisionRecallResult,
    json_number,
)
from sr3d_core.evaluation.protocol import EvaluationProtocol
from sr3d_core.inference import Detector
from sr3d_core.runtime import keep_freed_memory, resolve_device


def main(argv: Optional[list[str]] = None) -> int:
    """Parse the command line, evaluate and print (and optionally write) the numbers."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, nargs="+", type=Path, help="one or more (e.g. 5 trainings)")
    ap.add_argument("--split", default="val", choices=["train", "val"])
    ap.add_argument("--repeats", type=int, default=1, help="test runs per checkpoint (paper: 5)")
    ap.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cpu, cuda, cuda:N or auto (default: cuda when there is a GPU, else cpu)",
    )
    ap.add_argument("--max-scenes", type=int, default=None, help="evaluate only the first N scenes (N >= 1)")
    ap.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="data folder to read instead of the checkpoint's data.root (data kept elsewhere)",
    )
    ap.add_argument(
        "--info-file",
        type=Path,
        default=None,
        help="the mmdet3d info file to read (relative to --data-root when given, its points beside it otherwise; "
        "default: the checkpoint's "
        "file for --split, else the one <dataset>_infos_<split>.pkl in the data folder). Its data set may be "
        "labelled with another class list: the model's classes it does not annotate are left out of every count",
    )
    ap.add_argument("--strict-mmdet3d", action="store_true", help="classes without GT stay in the means (nan)")
    ap.add_argument(
        "--max-detections",
        type=int,
        default=None,
        help="detections kept per scene (default: the checkpoint's postprocess.max_detections)",
    )
    ap.add_argument(
        "--nms-iou",
        type=float,
        default=None,
        help="BEV IoU threshold of the per-class NMS (default: the checkpoint's postprocess.nms_iou; the node "
        "runs at its own nms_iou parameter: pass it here to score the boxes the node publishes)",
    )
    ap.add_argument(
        "--oracle",
        choices=ORACLES,
        default=None,
        help="gt_iou: foreground anchors scored by their true IoU (an upper bound on score alignment)",
    )
    ap.add_argument(
        "--neutral-color",
        action="store_true",
        help="feed every point the neutral colour (measures what clouds without colour cost)",
    )
    ap.add_argument("--json", type=Path, default=None, help="write all numbers here")
    ap.add_argument(
        "--alignment-plot",
        type=Path,
        default=None,
        metavar="PNG",
        help="write PCE's histogram and the confidence-vs-IoU scatter of the first run here (one file "
        "per checkpoint: <PNG stem>_<i>.png when several are given)",
    )
    ap.add_argument(
        "--score-threshold",
        type=float,
        default=DEPLOY_SCORE_THRESHOLD,
        help="count precision / recall of the boxes scored at or above it (default: the node's "
        "score_threshold, %(default)s)",
    )
    ap.add_argument(
        "--score-sweep",
        type=float,
        nargs="+",
        default=None,
        metavar="T",
        help="also count precision / recall at each of these score thresholds (first run; one line each)",
    )
    ap.add_argument(
        "--bev-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="write a bird's-eye PNG of every scene of the first run here (points, ground truth green, "
        "boxes at or above --score-threshold red; DIR/checkpoint_<i>/ when several are given)",
    )
    ap.add_argument(
        "--rotate-deg",
        type=float,
        nargs="+",
        default=None,
        metavar="A",
        help="also evaluate every frame turned by each of these angles (degrees, about the vertical axis through "
        "the frame's origin, the camera in SUN RGB-D frames; ground truth turned alike), one line each and their "
        "mean and spread: how much the numbers depend on where the frames happen to look (models of rotated boxes)",
    )
    ap.add_argument("--bev-color", choices=COLOR_MODES, default="height", help="point colour in the BEV images")
    args = ap.parse_args(argv)
    keep_freed_memory()
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.max_scenes is not None and args.max_scenes < 1:
        ap.error(f"--max-scenes must be >= 1, got {args.max_scenes}")
    if not 0.0 <= args.score_threshold < 1.0:
        ap.error(f"--score-threshold must lie in [0, 1), got {args.score_threshold}")
    for t in args.score_sweep or ():
        if not 0.0 <= t < 1.0:
            ap.error(f"--score-sweep thresholds must lie in [0, 1), got {t}")
    if args.max_detections is not None and args.max_detections < 1:
        ap.error(f"--max-detections must be >= 1, got {args.max_detections}")
    try:  # the protocol's own rules for its values (the same as the replay's)
        protocol = EvaluationProtocol(
            skip_classes_without_gt=not args.strict_mmdet3d,
            max_detections=args.max_detections,
            nms_iou=args.nms_iou,
            pr_score_threshold=args.score_threshold,
        )
    except ValueError as e:
        ap.error(str(e))
    device = resolve_device(args.device)
    runs = []
    for i, ckpt in enumerate(args.checkpoint):
        det = Detector.from_checkpoint(ckpt, device=device)
        for name, t in [("--score-threshold", args.score_threshold)] + [
            ("--score-sweep", t) for t in args.score_sweep or ()
        ]:
            if t < det.score_threshold:
                ap.error(
                    f"{name} {t} is below the checkpoint's postprocess.score_threshold {det.score_threshold}: the "
                    "boxes in between are never produced"
                )
        if any(args.rotate_deg or ()) and det.config.model.box_type != "rotated":
            ap.error(
                f"--rotate-deg needs a model of rotated boxes; {ckpt} predicts axis-aligned ones, which cannot fit "
                "turned ground truth"
            )
        cfg = det.config
        # An info file without --data-root: its points sit beside it, as mmdet3d lays them out.
        info_file, data_root = args.info_file, args.data_root
        if info_file is not None and data_root is None:
            info_file = info_file.resolve()
            data_root = info_file.parent
        if data_root is not None:
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(data_root)))
        run_protocol = protocol
        try:
            if cfg.data.format == "toy":
                source = build_source(cfg, args.split)
            else:
                info = cfg.data.train_info if args.split == "train" else cfg.data.val_info
                source = InfoScenes.for_evaluation(cfg.data.root, info, args.split, det.class_names, info_file)
                if source.info_path.name != Path(info).name:
                    print(f"evaluating on {source.info_path} ({source.dataset})")
                if source.unannotated:
                    print(
                        f"{source.info_path.name} does not annotate {', '.join(source.unannotated)}: "
                        "those boxes are left out of every count"
                    )
                    run_protocol = dataclasses.replace(protocol, unjudged_classes=source.unannotated)
        except FileNotFoundError as e:
            if args.info_file is not None:
                ap.error(f"{e} (--info-file is read relative to --data-root when given, else as given)")
            ap.error(f"{e} (the checkpoint's data.root is {det.config.data.root!r}; point --data-root at the data)")
        except ValueError as e:
            ap.error(str(e))
        if len(source) == 0:
            ap.error(f"the {args.split} split of {cfg.data.root} has no scenes: nothing to evaluate")
        bev_dir = None
        if args.bev_dir is not None:
            bev_dir = args.bev_dir / f"checkpoint_{i}" if len(args.checkpoint) > 1 else args.bev_dir
            bev_dir.mkdir(parents=True, exist_ok=True)
        for r in range(args.repeats):
            callbacks: list[SceneCallback] = []
            if bev_dir is not None and r == 0:
                callbacks.append(
                    _bev_writer(
                        bev_dir, det.class_names, args.score_threshold, args.bev_color, f"{ckpt.name}, {args.split}"
                    )
                )
            # The sweep counts under the run's own protocol (IoU thresholds), at each of its score thresholds.
            sweep = (
                [
                    dataclasses.replace(run_protocol, pr_score_threshold=t).pr_counter(det.class_names)
                    for t in args.score_sweep
                ]
                if args.score_sweep and r == 0
                else []
            )
            if sweep:
                callbacks.append(_sweep_counter(sweep))
            res = evaluate_detector(
                det,
                source,
                run_protocol,
                repeat_index=r,
                max_scenes=args.max_scenes,
                oracle=args.oracle,
                neutral_color=args.neutral_color,
                on_scene=_chain(callbacks),
            )
            numbers = res.metrics()
            print(
                f"== {ckpt} run {r}: mAP@0.25 {numbers['mAP_0.25']:.4f}  mAP@0.5 {numbers['mAP_0.5']:.4f}  "
                f"mAR@0.25 {numbers['mAR_0.25']:.4f}  mAR@0.5 {numbers['mAR_0.5']:.4f}  "
                f"latency {numbers['latency_ms']:.1f} ms/scene"
            )
            if r == 0:
                print(res.result.as_table())
                print(res.precision_recall.as_table())
                if sweep:
                    print(_sweep_table([c.compute() for c in sweep]))
                if bev_dir is not None:
                    print(f"bird's-eye views: {bev_dir}/ ({res.result.num_scenes} PNG)")
                if args.alignment_plot:
                    out = args.alignment_plot
                    if len(args.checkpoint) > 1:
                        out = out.with_name(f"{out.stem}_{i}{out.suffix}")
                    pce = plot_alignment(res.evaluator, out, title=f"{ckpt} ({args.split})")
                    print(f"PCE {pce:.4f}; alignment plot: {out}")
            entry = numbers | {"checkpoint": str(ckpt), "precision_recall": res.precision_recall.to_dict()}
            if run_protocol != protocol:  # this checkpoint's own rules (classes its data set does not annotate)
                entry["protocol"] = run_protocol.to_dict()
            if sweep:
                entry["score_sweep"] = [c.compute().to_dict() for c in sweep]
            if args.rotate_deg and r == 0:
                turned = [
                    evaluate_detector(
                        det,
                        source,
                        run_protocol,
                        max_scenes=args.max_scenes,
                        oracle=args.oracle,
                        neutral_color=args.neutral_color,
                        yaw=float(np.deg2rad(a)),
                    )
                    for a in args.rotate_deg
                ]
                table, entry["rotations"] = _rotation_table(args.rotate_deg, turned)
                print(table)
            runs.append(entry)
    summary = {}
    for key in ("mAP_0.25", "mAP_0.5"):
        vals = np.array([r[key] for r in runs])
        summary[key] = {"best": float(vals.max()), "mean": float(vals.mean()), "n": len(vals)}
        print(f"{key}: best {vals.max():.4f} (mean {vals.mean():.4f}) over {len(vals)} runs")
    if args.json:
        args.json.write_text(json.dumps({"protocol": protocol.to_dict(), "runs": runs, "summary": summary}, indent=2))
    return 0


def _rotation_table(angles: list[float], results: list[Evaluation]) -> tuple[str, list[dict[str, float]]]:
    """One line per angle (mAP, and precision / recall of all classes at the protocol's score threshold and IoU
    0.25), then their mean and standard deviation; and the same numbers for JSON."""
    rows = []
    for a, res in zip(angles, results):
        row = {"yaw_deg": a} | res.metrics()
        if res.precision_recall is not None:
            pr = res.precision_recall.rows(0.25)[ALL_CLASSES]
            row |= {"precision_0.25": pr["precision"], "recall_0.25": pr["recall"]}
        rows.append(row)
    json_rows = [{k: json_number(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows]
    keys = [k for k in ("mAP_0.25", "mAP_0.5", "precision_0.25", "recall_0.25") if k in rows[0]]
    lines = ["every frame turned about the vertical axis (precision / recall of all classes at IoU 0.25)"]
    lines += ["| yaw deg | " + " | ".join(keys) + " |", "|---" * (1 + len(keys)) + "|"]
    for row in rows:
        lines.append(f"| {row['yaw_deg']:g} | " + " | ".join(f"{row[k]:.4f}" for k in keys) + " |")
    for name, fn in (("mean", np.nanmean), ("std", np.nanstd)):
        lines.append(f"| {name} | " + " | ".join(f"{fn([row[k] for row in rows]):.4f}" for k in keys) + " |")
    return "\n".join(lines), json_rows


def _chain(callbacks: list[SceneCallback]) -> Optional[SceneCallback]:
    """One scene callback calling each of ``callbacks`` in turn (None when there are none)."""
    if not callbacks:
        return None

    def call(index: int, scene: Sample, det: Detections) -> None:
        for cb in callbacks:
            cb(index, scene, det)

    return call


def _sweep_counter(counters: list[PrecisionRecallCounter]) -> SceneCallback:
    """A scene callback adding each scene to every counter of the score sweep."""

    def add(index: int, scene: Sample, det: Detections) -> None:
        gt = SceneGroundTruth(np.asarray(scene.gt_boxes, np.float32), np.asarray(scene.gt_labels))
        for c in counters:
            c.add(gt, det)

    return add


def _sweep_table(results: list[PrecisionRecallResult]) -> str:
    """One line per score threshold: boxes kept, and precision / recall over every class at each IoU threshold."""
    ious = results[0].iou_thresholds
    head = "| score >= | boxes | " + " | ".join(f"TP@{t:g} | P@{t:g} | R@{t:g}" for t in ious) + " |"
    lines = ["precision / recall of every box scored at or above each threshold (all classes)", head]
    lines.append("|---" * (2 + 3 * len(ious)) + "|")
    for res in results:
        cells = []
        for t in ious:
            row = res.rows(t)[ALL_CLASSES]
            cells += [str(row["tp"])] + ["-" if np.isnan(row[k]) else f"{row[k]:.3f}" for k in ("precision", "recall")]
        kept = res.rows(ious[0])[ALL_CLASSES]
        lines.append(f"| {res.score_threshold:g} | {kept['tp'] + kept['fp']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _bev_writer(
    out: Path, class_names: tuple[str, ...], score_threshold: float, color_by: str, title: str
) -> SceneCallback:
    """A scene callback writing ``<out>/<scene index>_<sample id>.png`` for every scene."""

    def draw(index: int, scene: Sample, det: Detections) -> None:
        write_bev(
            out / f"{index:04d}_{scene.sample_idx}.png",
            scene.points,
            scene.gt_boxes,
            scene.gt_labels,
            class_names,
            det.boxes,
            det.scores,
            det.labels,
            score_threshold,
            title=f"{title} scene {index} (sample {scene.sample_idx}): {len(scene.points)} points",
            color_by=color_by,
        )

    return draw


if __name__ == "__main__":
    raise SystemExit(main())

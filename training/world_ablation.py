"""The synthetic-world ablation: which factor of the world carries over to real frames.

    python training/world_ablation.py data                      # each variant's training set (idempotent)
    python training/grid.py run world_ablation --jobs 2          # train every row and seed, evaluate on synthetic val
    python training/world_ablation.py real --data-root DIR       # every finished run on real frames in DIR
    python training/world_ablation.py table                      # the table (markdown), from the committed results

The grid is ``config/grids/world_ablation.yaml``: one row per world variant, each trained on 600 scenes
(``data/synth_real/sunrgbd_infos_abl_<variant>.pkl``) and validated on the full world's 150 val scenes. ``real``
evaluates each run's ``final.pt`` on a folder of real frames in an mmdet3d layout (SUN RGB-D:
``sunrgbd_infos_val.pkl`` + ``points/``), at the checkpoint's own input contract and with the input capped at the
training density (20,000 points), and writes ``real.json`` beside the run's committed ``result.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GRID = "world_ablation"
RESULTS = ROOT / "docs" / "results" / "grids" / GRID
RUNS = ROOT / "runs" / "grids" / GRID
DATA = ROOT / "data" / "synth_real"
SCENES, SEED = 600, 0
SCORE_THRESHOLD = 0.3  # the node's default
TRAIN_DENSITY = 20_000  # data.train_points of the recipe

# Variant (the info file's split name abl_<variant>) -> (preset, world factors switched off).
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "all": ("sunrgbd-real", ()),
    "legacy": ("sunrgbd-like", ()),
    "no_sizes": ("sunrgbd-real", ("sizes",)),
    "no_parts": ("sunrgbd-real", ("parts",)),
    "no_clutter": ("sunrgbd-real", ("clutter",)),
    "no_walls": ("sunrgbd-real", ("walls",)),
    "no_sensor": ("sunrgbd-real", ("sensor",)),
    "no_camera": ("sunrgbd-real", ("camera",)),
    "no_lighting": ("sunrgbd-real", ("lighting",)),
}


def make_data(workers: int) -> None:
    """Write every variant's training set that is not there yet."""
    from sr3d_core.data.synthetic.presets import PRESETS
    from sr3d_core.data.synthetic.writer import write_dataset

    for name, (preset_name, off) in VARIANTS.items():
        if (DATA / f"sunrgbd_infos_abl_{name}.pkl").exists():
            continue
        preset = PRESETS[preset_name]
        preset = preset.with_world(preset.world.without(*off))
        path, secs = write_dataset(preset, SCENES, SEED, DATA, f"abl_{name}", workers)
        print(f"{name}: {path} ({secs:.0f} s)", flush=True)


def _evaluate(ckpt: Path, data_root: Path, cap: Optional[int]) -> dict[str, Any]:
    from sr3d_core.data.sources import build_source
    from sr3d_core.evaluation.detector_pass import evaluate_detector
    from sr3d_core.evaluation.precision_recall import ALL_CLASSES
    from sr3d_core.evaluation.protocol import EvaluationProtocol
    from sr3d_core.inference import Detector

    det = Detector.from_checkpoint(ckpt, device="cpu")
    cfg = det.config
    data = dataclasses.replace(cfg.data, root=str(data_root))
    if cap is not None:
        data = dataclasses.replace(data, contract=dataclasses.replace(data.contract, max_points=cap))
        det = Detector(det.model, dataclasses.replace(cfg, data=data), det.device)
    cfg = dataclasses.replace(cfg, data=data)
    res = evaluate_detector(det, build_source(cfg, "val"), EvaluationProtocol(pr_score_threshold=SCORE_THRESHOLD))
    out = {"mAP_0.25": res.result.map_at(0.25), "mAP_0.5": res.result.map_at(0.5)}
    for iou in (0.25, 0.5):
        row = res.precision_recall.rows(iou)[ALL_CLASSES]
        for key in ("tp", "fp", "fn", "precision", "recall"):
            v = row[key]
            out[f"{key}_{iou}"] = None if isinstance(v, float) and np.isnan(v) else v
    return out


def evaluate_real(data_root: Path) -> None:
    """Evaluate every finished run on the real frames in ``data_root`` and write its ``real.json``."""
    n = 0
    for result in sorted(RESULTS.glob("*/seed*/result.json")):
        rel = result.parent.relative_to(RESULTS)
        ckpt = RUNS / rel / "final.pt"
        if not ckpt.exists():
            print(f"{rel}: no final.pt here (trained elsewhere?); skipped", flush=True)
            continue
        numbers = {
            "frames": _count_frames(data_root),
            "score_threshold": SCORE_THRESHOLD,
            "contract": _evaluate(ckpt, data_root, None),
            f"cap_{TRAIN_DENSITY}": _evaluate(ckpt, data_root, TRAIN_DENSITY),
        }
        (result.parent / "real.json").write_text(json.dumps(numbers, indent=2))
        c = numbers["contract"]
        print(
            f"{rel}: mAP@0.25 {c['mAP_0.25']:.4f} mAP@0.5 {c['mAP_0.5']:.4f} "
            f"P {c['precision_0.25']} R {c['recall_0.25']}",
            flush=True,
        )
        n += 1
    if n == 0:
        raise SystemExit(f"no finished run with its final.pt under {RUNS}; run the grid first")


def _count_frames(data_root: Path) -> int:
    from sr3d_core.data.infos import load_infos

    infos = sorted(Path(data_root).glob("*_infos_val.pkl"))
    return len(load_infos(infos[0]).data_list) if infos else 0


def _fmt(vals: list[Optional[float]]) -> str:
    v = np.array([x for x in vals if x is not None], float)
    if len(v) == 0:
        return "–"
    if len(v) == 1:
        return f"{v[0]:.3f}"
    return f"{v.mean():.3f} ({' / '.join(f'{x:.3f}' for x in v)})"


def table() -> str:
    """The markdown table: synthetic val and real-frame numbers per row, mean (per seed) over the seeds."""
    rows: dict[str, list[tuple[dict, dict]]] = {}
    for result in sorted(RESULTS.glob("*/seed*/result.json")):
        real = result.parent / "real.json"
        rows.setdefault(result.parent.parent.name, []).append(
            (json.loads(result.read_text()), json.loads(real.read_text()) if real.exists() else {})
        )
    order = ["all_factors", "legacy_world"] + [f"no_{v[3:]}" for v in VARIANTS if v.startswith("no_")]
    head = (
        "| world | seeds | synthetic val mAP@0.25 | mAP@0.5 | real mAP@0.25 | real mAP@0.5 | "
        f"real P@{SCORE_THRESHOLD} | real R@{SCORE_THRESHOLD} | real mAP@0.25, 20k pts | real mAP@0.5, 20k pts |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in [r for r in order if r in rows] + sorted(set(rows) - set(order)):
        runs = rows[name]
        syn = [r for r, _ in runs]
        real = [q.get("contract", {}) for _, q in runs]
        cap = [q.get(f"cap_{TRAIN_DENSITY}", {}) for _, q in runs]
        lines.append(
            f"| {name} | {len(runs)} | {_fmt([r['mAP_0.25'] for r in syn])} | {_fmt([r['mAP_0.5'] for r in syn])} | "
            f"{_fmt([q.get('mAP_0.25') for q in real])} | {_fmt([q.get('mAP_0.5') for q in real])} | "
            f"{_fmt([q.get('precision_0.25') for q in real])} | {_fmt([q.get('recall_0.25') for q in real])} | "
            f"{_fmt([q.get('mAP_0.25') for q in cap])} | {_fmt([q.get('mAP_0.5') for q in cap])} |"
        )
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    """Parse the command line and run one step."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="write each variant's training set")
    d.add_argument("--workers", type=int, default=2)
    r = sub.add_parser("real", help="evaluate every finished run on real frames")
    r.add_argument("--data-root", type=Path, required=True, help="folder with <dataset>_infos_val.pkl and points/")
    sub.add_parser("table", help="print the table")
    a = ap.parse_args(argv)
    if a.cmd == "data":
        make_data(a.workers)
    elif a.cmd == "real":
        if not a.data_root.is_dir():
            ap.error(f"--data-root {a.data_root} is not a folder")
        evaluate_real(a.data_root)
    else:
        print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())

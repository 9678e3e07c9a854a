"""Experiment grids: many trainings of one YAML spec, resumable at any point, each evaluated once, then one table.

A grid is a YAML file in ``config/grids/`` (or a path): common ``set`` overrides and ``seeds``, and ``rows``, each
with a model ``config``, its own ``set`` overrides and optionally its own ``seeds`` (a sweep point needs one), and
optionally ``paper``: a column ``label`` and published ``rows: {name: [mAP@0.25, mAP@0.5]}`` shown next to ours.
Run ``<row>/seed<k>`` trains in ``<runs root>/<grid>/<row>/seed<k>/`` (checkpoints); when it is evaluated, its
``result.json``, ``train_log.csv`` and, when it validated along the way, ``val_log.csv`` (the learning curve) are
copied to ``<results root>/<grid>/<row>/seed<k>/`` (small, committed), and a run with a result there is done.
``run_grid`` runs each job as ``python -m sr3d_core.engine.grid <grid> <row> <seed>`` in its own process with one
torch thread. ``training/grid.py`` is the command line.

Each result holds mAP@0.25/0.5 on the whole val split and on its two halves (even / odd scenes: the spread
between halves measures evaluation noise), AIC (the mean |score − IoU| over the positives of the last 10 % of
logged training steps), PCE (mean and histogram of |score − IoU| of the top-30 detections per class), the training
time and the evaluation protocol.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
GRID_DIR = ROOT / "config" / "grids"
RESULTS_ROOT = ROOT / "docs" / "results" / "grids"


@dataclass(frozen=True)
class Run:
    """One training of a grid."""

    row: str
    seed: int
    config: str
    overrides: tuple[str, ...]
    work_dir: Path
    result_dir: Path

    @property
    def done(self) -> bool:
        """The run has its evaluated result."""
        return (self.result_dir / "result.json").exists()

    def result(self) -> dict[str, Any]:
        """The evaluated result."""
        return json.loads((self.result_dir / "result.json").read_text())


def grid_file(name_or_path: str) -> Path:
    """The YAML file of a grid given by name (``config/grids/<name>.yaml``) or path."""
    path = Path(name_or_path)
    if not path.is_file():
        path = GRID_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in GRID_DIR.glob("*.yaml")))
        raise SystemExit(f"grid {name_or_path!r} is neither a file nor one of config/grids: {known}")
    return path


def load_grid(name_or_path: str, runs_root: Path, results_root: Path = RESULTS_ROOT) -> tuple[str, list[Run]]:
    """Read a grid file and expand it into runs."""
    path = grid_file(name_or_path)
    spec = yaml.safe_load(path.read_text())
    unknown = set(spec) - {"set", "seeds", "rows", "description", "paper"}
    if unknown:
        raise SystemExit(f"{path}: unknown keys {sorted(unknown)} (allowed: description, set, seeds, rows, paper)")
    common = tuple(spec.get("set", []))
    runs = []
    for row in spec["rows"]:
        bad = set(row) - {"name", "config", "set", "seeds"}
        if bad:
            raise SystemExit(f"{path}: row {row.get('name')!r} has unknown keys {sorted(bad)}")
        for seed in row.get("seeds", spec.get("seeds", [0])):
            overrides = (*common, *row.get("set", []), f"train.seed={seed}")
            sub = Path(path.stem) / row["name"] / f"seed{seed}"
            runs.append(Run(row["name"], int(seed), row["config"], overrides, runs_root / sub, results_root / sub))
    return path.stem, runs


def load_paper(name_or_path: str) -> tuple[str, dict[str, tuple[float, float]]]:
    """The grid's ``paper`` entry: a column label and the published (mAP@0.25, mAP@0.5) of matching rows."""
    paper = yaml.safe_load(grid_file(name_or_path).read_text()).get("paper") or {}
    rows = {name: (float(v[0]), float(v[1])) for name, v in (paper.get("rows") or {}).items()}
    return str(paper.get("label", "paper")), rows


def rebuild_table(spec: str, runs_root: Path, results_root: Path) -> str:
    """``write_table`` over every run of the grid ``spec`` (name or path), with its paper column."""
    grid, runs = load_grid(spec, runs_root, results_root)
    return write_table(grid, runs, results_root, load_paper(spec))


# --------------------------------------------------------------------------------------------- one job
def run_job(run: Run) -> dict[str, Any]:
    """Train (or resume) one run, then evaluate it and write ``result.json``."""
    from sr3d_core.config import load_config
    from sr3d_core.data.sources import build_source
    from sr3d_core.engine.trainer import train
    from sr3d_core.evaluation.alignment import prediction_consistency_error, prediction_consistency_errors
    from sr3d_core.evaluation.detector_pass import evaluate_detector
    from sr3d_core.inference import Detector
    from sr3d_core.runtime import keep_freed_memory

    keep_freed_memory()
    cfg = load_config(run.config, list(run.overrides))
    run.work_dir.mkdir(parents=True, exist_ok=True)
    (run.work_dir / "run.json").write_text(
        json.dumps({"row": run.row, "seed": run.seed, "config": run.config, "overrides": list(run.overrides)}, indent=2)
    )
    final = run.work_dir / "final.pt"
    if not final.exists():
        latest = run.work_dir / "latest.pt"
        train(
            cfg, run.work_dir, latest if latest.exists() else None, "cpu", show_progress=False, validate_at_end=False
        )  # evaluated below, once
    det = Detector.from_checkpoint(final, device="cpu")
    res = evaluate_detector(det, build_source(det.config, "val"), keep_scenes=True)
    halves = []
    for parity in (0, 1):
        ev = res.protocol.map_evaluator(det.config.class_names)
        for gt, d in res.scenes[parity::2]:
            ev.add(gt, d)
        r = ev.compute()
        halves.append({"mAP_0.25": r.map_at(0.25), "mAP_0.5": r.map_at(0.5)})
    rec = res.evaluator.detection_ious()
    errors = prediction_consistency_errors(rec.scores, rec.ious, rec.labels, 30)
    with open(run.work_dir / "train_log.csv") as f:
        rows = list(csv.DictReader(f))
    tail = rows[-max(1, len(rows) // 10) :]
    result = {
        "row": run.row,
        "seed": run.seed,
        "config": run.config,
        "overrides": list(run.overrides),
        "mAP_0.25": res.result.map_at(0.25),
        "mAP_0.5": res.result.map_at(0.5),
        "halves": halves,
        "aic": float(np.mean([float(r["aic"]) for r in tail])),
        "pce": prediction_consistency_error(rec.scores, rec.ious, rec.labels, 30),
        "pce_hist": np.histogram(errors, bins=12, range=(0.0, 0.6))[0].tolist(),
        "train_seconds": float(rows[-1]["seconds"]),
        "steps": int(rows[-1]["step"]),
        "val_scenes": len(res.scenes),
        "protocol": res.protocol.to_dict(),
    }
    tmp = run.work_dir / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, run.work_dir / "result.json")
    store_result(run)
    for f in ("latest.pt",):  # the final weights stay; the resume state is no longer needed
        (run.work_dir / f).unlink(missing_ok=True)
    return result


def store_result(run: Run) -> None:
    """Copy a run's training log, validation log (when it validated along the way: the learning curve) and result
    from its run folder to the committed results folder (result last: its presence means "done")."""
    run.result_dir.mkdir(parents=True, exist_ok=True)
    for log in ("train_log.csv", "val_log.csv"):
        if log == "train_log.csv" or (run.work_dir / log).is_file():
            shutil.copyfile(run.work_dir / log, run.result_dir / log)
    tmp = run.result_dir / "result.json.tmp"
    shutil.copyfile(run.work_dir / "result.json", tmp)
    os.replace(tmp, run.result_dir / "result.json")


def run_state(run: Run) -> str:
    """``done``, ``todo``, or how far an unfinished run got: ``resumable (step N)``, and ``training now (pid P)``
    while a process holds its folder."""
    from sr3d_core.engine.csvlog import CsvLog
    from sr3d_core.engine.trainer import TRAIN_LOG, work_dir_holder

    if run.done:
        return "done"
    if not (run.work_dir / "latest.pt").exists():
        state = "todo"
    else:
        rows = CsvLog(run.work_dir / TRAIN_LOG).rows()  # [] without a log
        state = f"resumable (step {rows[-1]['step']})" if rows else "resumable"
    pid = work_dir_holder(run.work_dir)
    return state if pid is None else f"{state}, training now (pid {pid})"


# --------------------------------------------------------------------------------------------- runner
def run_grid(grid: str, spec: str, runs: list[Run], jobs: int, runs_root: Path, results_root: Path) -> None:
    """Run every unfinished run, ``jobs`` at a time, each in its own single-threaded process.

    Args:
        grid: the grid's name (its table's folder).
        spec: the grid as given on the command line (name or path), for the job processes.
        runs: the runs to do.
        jobs: runs in parallel.
        runs_root: the folder holding every grid's runs (checkpoints).
        results_root: the folder holding every grid's results and tables (committed).
    """
    order = {row: i for i, row in enumerate(dict.fromkeys(r.row for r in runs))}
    # Seed-major order: the rows' seed-0 runs finish first, so paired comparisons fill in early.
    todo = sorted((r for r in runs if not r.done), key=lambda r: (r.seed, order[r.row]))
    print(f"grid {grid}: {len(runs) - len(todo)} of {len(runs)} runs done, {len(todo)} to go, {jobs} at a time")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    active: list[tuple[Run, subprocess.Popen, float]] = []
    failed: list[str] = []

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(f"grid {grid}: stopped by signal {signum}; its runs resume from latest.pt next time")

    # `kill <runner>` (SIGTERM) must stop the jobs too, as Ctrl-C does: the `finally` below only runs on an
    # exception, and a job left running would collide with the next runner's job on the same run.
    main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = signal.signal(signal.SIGTERM, stop) if main_thread else None
    try:
        while todo or active:
            while todo and len(active) < jobs:
                r = todo.pop(0)
                r.work_dir.mkdir(parents=True, exist_ok=True)
                log = open(r.work_dir / "job.log", "a")
                cmd = [
                    sys.executable,
                    "-m",
                    "sr3d_core.engine.grid",
                    spec,
                    r.row,
                    str(r.seed),
                    "--runs-root",
                    str(runs_root),
                    "--results-root",
                    str(results_root),
                ]
                active.append((r, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), time.time()))
                print(
                    f"  start {r.row}/seed{r.seed}" + (" (resume)" if (r.work_dir / "latest.pt").exists() else ""),
                    flush=True,
                )
            time.sleep(5)
            for item in list(active):
                r, p, t0 = item
                if p.poll() is None:
                    continue
                active.remove(item)
                if p.returncode == 0 and r.done:
                    res = r.result()
                    print(
                        f"  done  {r.row}/seed{r.seed}: mAP@0.25 {res['mAP_0.25']:.4f} mAP@0.5 {res['mAP_0.5']:.4f}"
                        f" ({(time.time() - t0) / 60:.1f} min)",
                        flush=True,
                    )
                    rebuild_table(spec, runs_root, results_root)
                else:
                    failed.append(f"{r.row}/seed{r.seed}")
                    print(
                        f"  FAILED {r.row}/seed{r.seed} (exit {p.returncode}); see {r.work_dir / 'job.log'}", flush=True
                    )
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        for _, p, _ in active:  # a stopped runner stops its jobs; they resume from latest.pt next time
            p.terminate()
        for _, p, _ in active:
            p.wait()
    # The table always covers the whole grid, also when this runner was given only some rows.
    rebuild_table(spec, runs_root, results_root)
    if failed:
        raise SystemExit(f"{len(failed)} runs failed: {', '.join(failed)}")


# --------------------------------------------------------------------------------------------- table
def write_table(
    grid: str, runs: list[Run], results_root: Path, paper: tuple[str, dict[str, tuple[float, float]]] = ("paper", {})
) -> str:
    """Rebuild ``table.md``, ``table.json`` and ``table.png`` of a grid from its finished runs.

    Args:
        grid: the grid's name (its folder under ``results_root``).
        runs: every run of the grid.
        results_root: the folder holding every grid's results.
        paper: the label of the published-numbers column and its (mAP@0.25, mAP@0.5) per row.
    """
    label, published = paper

    def paper_cell(row: str) -> str:
        return "{} / {}".format(*published[row]) if row in published else ""

    by_row: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_row.setdefault(r.row, [])
        if r.done:
            by_row[r.row].append(r.result())
    base = {res["seed"]: res for res in by_row.get("tr3d", [])}
    lines = [
        f"Grid `{grid}` (val mAP in %, mean ± std over seeds; Δ: paired difference to `tr3d` of the same seed; "
        "halves: |mAP(even) − mAP(odd)| mean, the evaluation noise)",
        "",
        f"| row | seeds | mAP@0.25 | mAP@0.5 | Δ@0.25 | Δ@0.5 | AIC | PCE | halves Δ@0.25 | {label} | min/run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary = {}
    for row, results in by_row.items():
        if not results:
            lines.append(f"| {row} | 0 | | | | | | | | {paper_cell(row)} | |")
            continue
        m25 = np.array([x["mAP_0.25"] for x in results]) * 100
        m50 = np.array([x["mAP_0.5"] for x in results]) * 100
        d25 = [100 * (x["mAP_0.25"] - base[x["seed"]]["mAP_0.25"]) for x in results if x["seed"] in base]
        d50 = [100 * (x["mAP_0.5"] - base[x["seed"]]["mAP_0.5"]) for x in results if x["seed"] in base]
        halves = [100 * abs(x["halves"][0]["mAP_0.25"] - x["halves"][1]["mAP_0.25"]) for x in results]
        summary[row] = {
            "seeds": [x["seed"] for x in results],
            "mAP_0.25": m25.tolist(),
            "mAP_0.5": m50.tolist(),
            "delta_0.25": d25,
            "delta_0.5": d50,
            "aic": [x["aic"] for x in results],
            "pce": [x["pce"] for x in results],
        }
        lines.append(
            f"| {row} | {len(results)} | {_ms(m25)} | {_ms(m50)} | {_ms(np.array(d25), sign=True)} | "
            f"{_ms(np.array(d50), sign=True)} | {np.mean([x['aic'] for x in results]):.3f} | "
            f"{np.mean([x['pce'] for x in results]):.3f} | {np.mean(halves):.1f} | {paper_cell(row)} | "
            f"{np.mean([x['train_seconds'] for x in results]) / 60:.0f} |"
        )
    out = results_root / grid
    curves = learning_curves([r for r in runs if r.done])
    if curves:
        lines += ["", *_curve_lines(curves)]
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)
    (out / "table.json").write_text(json.dumps(summary, indent=2))
    _plot(summary, by_row, out / "table.png")
    if curves:
        (out / "curves.json").write_text(json.dumps(curves, indent=2))
        _plot_curves(curves, grid, out / "curves.png")
    return text


def learning_curves(runs: list[Run]) -> dict[str, dict[str, list[list[float]]]]:
    """Validation mAP along training, per row: ``{row: {step: [[mAP@0.25, mAP@0.5] of each seed]}}``.

    The points come from each finished run's stored ``val_log.csv`` (runs that validated along the way) plus its
    final evaluation at ``steps``; a row's step appears only when every finished seed of the row has it, so the
    means compare like with like.

    Args:
        runs: finished runs (their ``result.json`` stored).
    """
    per_row: dict[str, list[dict[int, list[float]]]] = {}
    for r in runs:
        log = r.result_dir / "val_log.csv"
        if not log.is_file():
            continue
        points: dict[int, list[float]] = {}
        with open(log) as f:
            for rec in csv.DictReader(f):
                points[int(rec["step"])] = [float(rec["mAP_0.25"]), float(rec["mAP_0.5"])]
        res = r.result()
        points[int(res["steps"])] = [float(res["mAP_0.25"]), float(res["mAP_0.5"])]
        per_row.setdefault(r.row, []).append(points)
    curves = {}
    for row, seeds in per_row.items():
        steps = sorted(set.intersection(*(set(p) for p in seeds)))
        curves[row] = {str(step): [p[step] for p in seeds] for step in steps}
    return curves


def _curve_lines(curves: dict[str, dict[str, list[list[float]]]]) -> list[str]:
    """Markdown table of the learning curves: mean val mAP@0.25 / mAP@0.5 (%) over seeds at each step."""
    steps = sorted({int(s) for c in curves.values() for s in c})
    lines = [
        "Learning curves: val mAP@0.25 / mAP@0.5 (%) at each validated step, mean over the row's seeds (n)",
        "",
        "| row | n | " + " | ".join(f"step {s}" for s in steps) + " |",
        "|---|---|" + "---|" * len(steps),
    ]
    for row, c in curves.items():
        n = len(next(iter(c.values()))) if c else 0
        cells = []
        for s in steps:
            vals = np.array(c.get(str(s), []), dtype=float)
            cells.append(f"{100 * vals[:, 0].mean():.1f} / {100 * vals[:, 1].mean():.1f}" if len(vals) else "")
        lines.append(f"| {row} | {n} | " + " | ".join(cells) + " |")
    return lines


def _plot_curves(curves: dict[str, dict[str, list[list[float]]]], grid: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    for row, c in curves.items():
        steps = sorted(int(s) for s in c)
        for k, a in enumerate(ax):
            vals = [100 * np.array(c[str(s)], dtype=float)[:, k] for s in steps]
            line = a.plot(steps, [v.mean() for v in vals], marker="o", label=f"{row} (n={len(vals[0])})")[0]
            for s, v in zip(steps, vals):
                a.scatter([s] * len(v), v, color=line.get_color(), s=8, alpha=0.5)
    for k, a in enumerate(ax):
        a.set_xlabel("training step")
        a.set_ylabel(f"val mAP@{('0.25', '0.5')[k]} (%)")
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    fig.suptitle(f"{grid}: learning curves (line: mean over seeds; dots: each seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _ms(x: np.ndarray, sign: bool = False) -> str:
    if not len(x):
        return ""
    fmt = "{:+.1f}" if sign else "{:.1f}"
    return fmt.format(x.mean()) + (f" ± {x.std(ddof=1):.1f}" if len(x) > 1 else "")


def _plot(summary: dict[str, Any], by_row: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Per-row mAP dots (one per seed) and the mean PCE histogram of each row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not summary:
        return
    fig, ax = plt.subplots(1, 2, figsize=(12, 4))
    rows = list(summary)
    for i, row in enumerate(rows):
        ax[0].scatter([i] * len(summary[row]["mAP_0.25"]), summary[row]["mAP_0.25"], c="tab:blue", s=14)
        ax[0].scatter([i] * len(summary[row]["mAP_0.5"]), summary[row]["mAP_0.5"], c="tab:orange", s=14)
    ax[0].set_xticks(range(len(rows)), rows, rotation=45, ha="right")
    ax[0].set_ylabel("val mAP (%)  blue: @0.25, orange: @0.5")
    centres = np.arange(12) * 0.05 + 0.025
    for row in rows:
        hist = np.mean([x["pce_hist"] for x in by_row[row]], axis=0)
        ax[1].plot(centres, hist / max(hist.sum(), 1), label=row)
    ax[1].set_xlabel("|score − IoU| of the top-30 detections per class (PCE)")
    ax[1].set_ylabel("fraction")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def job_main(argv: Optional[list[str]] = None) -> int:
    """One run of a grid in this process (what ``run_grid`` starts): ``<grid> <row> <seed> --runs-root R
    --results-root S``."""
    ap = argparse.ArgumentParser(description="Train and evaluate one run of a grid (started by run_grid).")
    ap.add_argument("grid", help="grid name in config/grids or a YAML path")
    ap.add_argument("row")
    ap.add_argument("seed", type=int)
    ap.add_argument("--runs-root", type=Path, required=True)
    ap.add_argument("--results-root", type=Path, required=True)
    a = ap.parse_args(argv)
    _, runs = load_grid(a.grid, a.runs_root, a.results_root)
    (run,) = [r for r in runs if r.row == a.row and r.seed == a.seed]
    run_job(run)
    return 0


__all__ = [
    "GRID_DIR",
    "RESULTS_ROOT",
    "Run",
    "grid_file",
    "job_main",
    "load_grid",
    "load_paper",
    "rebuild_table",
    "run_grid",
    "run_job",
    "store_result",
    "write_table",
]

if __name__ == "__main__":
    raise SystemExit(job_main())

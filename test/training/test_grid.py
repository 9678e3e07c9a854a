"""The experiment grid: runs two at a time, skips finished runs, resumes a killed one, builds the table."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sr3d_core.engine.grid import load_grid

ROOT = Path(__file__).resolve().parents[2]

GRID = """
description: toy grid
set: [train.max_iters=30, train.ckpt_interval=10, train.log_interval=5, train.val_interval=10]
seeds: [0]
rows:
  - {name: tr3d, config: toy_tiny}
  - {name: sr3d, config: toy_tiny, set: ["assigner={name: spota}", "loss.cls={name: ras}"]}
  - {name: k3, config: toy_tiny, set: ["assigner={name: spota, k: 3}"], seeds: [1]}
"""


def run(*args):
    return subprocess.run(
        [sys.executable, "training/grid.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_grid_runs_skips_and_resumes(tmp_path):
    grid = tmp_path / "toy.yaml"
    grid.write_text(GRID)
    root, results = tmp_path / "runs", tmp_path / "results"
    name, runs = load_grid(str(grid), root, results)
    assert [(r.row, r.seed) for r in runs] == [("tr3d", 0), ("sr3d", 0), ("k3", 1)]
    assert runs[2].overrides[-1] == "train.seed=1" and "train.max_iters=30" in runs[2].overrides
    # A killed run: 10 of its 30 steps done, latest.pt left behind.
    k3 = runs[2].work_dir
    r = subprocess.run(
        [
            sys.executable,
            "training/train.py",
            "--config",
            "toy_tiny",
            "--work-dir",
            str(k3),
            "--no-progress",
            "--stop-after",
            "10",
            "--set",
            *runs[2].overrides,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0 and (k3 / "latest.pt").is_file(), r.stderr[-2000:]
    r = run("run", str(grid), "--runs-root", str(root), "--results-root", str(results), "--jobs", "2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "0 of 3 runs done, 3 to go" in r.stdout and "start k3/seed1 (resume)" in r.stdout
    for run_ in runs:
        res = json.loads((run_.result_dir / "result.json").read_text())
        assert res["steps"] == 30 and 0 <= res["mAP_0.25"] <= 1 and len(res["halves"]) == 2
        assert len(res["pce_hist"]) == 12 and not (run_.work_dir / "latest.pt").exists()
        assert (run_.result_dir / "train_log.csv").is_file() and (run_.work_dir / "final.pt").is_file()
        with open(run_.result_dir / "val_log.csv") as f:  # the learning curve, stored with the result
            assert [int(row["step"]) for row in csv.DictReader(f)] == [10, 20]
        assert res["protocol"]["skip_classes_without_gt"] is True
    # The resumed run logged each step once: 5, 10 (before the kill), then 15 .. 30.
    with open(k3 / "train_log.csv") as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [5, 10, 15, 20, 25, 30]
    table = (results / name / "table.md").read_text()
    assert "| tr3d | 1 |" in table and "| sr3d | 1 |" in table and "| k3 | 1 |" in table
    assert (results / name / "table.png").stat().st_size > 1000
    # A new checkout has the committed results but no checkpoints: nothing is redone.
    r = run("run", str(grid), "--runs-root", str(tmp_path / "fresh_runs"), "--results-root", str(results))
    assert r.returncode == 0 and "3 of 3 runs done, 0 to go" in r.stdout
    r = run("status", str(grid), "--runs-root", str(root), "--results-root", str(results), "--rows", "k3")
    assert r.stdout.split() == ["k3", "seed1", "done"]
    # A runner given only some rows still writes the whole grid's table.
    r = run("run", str(grid), "--runs-root", str(root), "--results-root", str(results), "--rows", "k3")
    assert r.returncode == 0 and "1 of 1 runs done" in r.stdout
    table = (results / name / "table.md").read_text()
    assert "| tr3d | 1 |" in table and "| sr3d | 1 |" in table and "| k3 | 1 |" in table


def test_learning_curves_average_seeds_at_shared_steps(tmp_path):
    """Curves: stored val logs plus each run's final evaluation, averaged over seeds at the steps all seeds share."""
    from sr3d_core.engine.grid import learning_curves, write_table

    grid = tmp_path / "toy.yaml"
    grid.write_text(GRID)
    name, runs = load_grid(str(grid), tmp_path / "runs", tmp_path / "results")
    logs = {  # (row, seed): (val log rows, final mAPs at step 30)
        ("tr3d", 0): ([(10, 0.2, 0.1), (20, 0.4, 0.2)], (0.5, 0.3)),
        ("sr3d", 0): ([(10, 0.3, 0.1), (20, 0.5, 0.3)], (0.6, 0.4)),
        ("k3", 1): ([(10, 0.1, 0.0)], (0.7, 0.5)),  # validated at 10 only: its row has steps 10 and 30
    }
    for r in runs:
        vals, final = logs[(r.row, r.seed)]
        r.result_dir.mkdir(parents=True)
        (r.result_dir / "val_log.csv").write_text(
            "step,mAP_0.25,mAP_0.5\n" + "".join(f"{s},{a},{b}\n" for s, a, b in vals)
        )
        res = {"row": r.row, "seed": r.seed, "mAP_0.25": final[0], "mAP_0.5": final[1], "steps": 30, "aic": 0.1,
               "pce": 0.2, "pce_hist": [1] * 12, "train_seconds": 60.0,
               "halves": [{"mAP_0.25": 0.5, "mAP_0.5": 0.3}, {"mAP_0.25": 0.5, "mAP_0.5": 0.3}]}  # fmt: skip
        (r.result_dir / "result.json").write_text(json.dumps(res))
    curves = learning_curves(runs)
    assert curves["tr3d"] == {"10": [[0.2, 0.1]], "20": [[0.4, 0.2]], "30": [[0.5, 0.3]]}
    assert curves["k3"] == {"10": [[0.1, 0.0]], "30": [[0.7, 0.5]]}
    # Two seeds of one row: the mean, and only the steps both have.
    extra = runs[0].result_dir.parent / "seed5"
    extra.mkdir()
    (extra / "val_log.csv").write_text("step,mAP_0.25,mAP_0.5\n20,0.6,0.4\n")
    (extra / "result.json").write_text(
        (runs[0].result_dir / "result.json").read_text().replace('"seed": 0', '"seed": 5')
    )
    two = [*runs, type(runs[0])("tr3d", 5, "toy_tiny", (), tmp_path / "x", extra)]
    assert learning_curves(two)["tr3d"] == {"20": [[0.4, 0.2], [0.6, 0.4]], "30": [[0.5, 0.3], [0.5, 0.3]]}
    table = write_table(name, two, tmp_path / "results")
    assert "| tr3d | 2 |  | 50.0 / 30.0 | 50.0 / 30.0 |" in table  # step 10: not validated by seed 5
    assert "| k3 | 1 | 10.0 / 0.0 |  | 70.0 / 50.0 |" in table
    assert (tmp_path / "results" / name / "curves.png").stat().st_size > 1000


def test_a_terminated_runner_stops_its_jobs(tmp_path):
    # `kill <runner>` (SIGTERM) stops the runner's training jobs too, so a restarted runner finds the run folder
    # free; the run resumes from its latest.pt.
    import os
    import signal
    import time

    grid = tmp_path / "long.yaml"
    grid.write_text(
        "description: one long toy run\nset: [train.max_iters=100000, train.ckpt_interval=5]\nseeds: [0]\n"
        "rows:\n  - {name: tr3d, config: toy_tiny}\n"
    )
    root, results = tmp_path / "runs", tmp_path / "results"
    runner = subprocess.Popen(
        [
            sys.executable,
            "training/grid.py",
            "run",
            str(grid),
            "--runs-root",
            str(root),
            "--results-root",
            str(results),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    _, runs = load_grid(str(grid), root, results)
    latest = runs[0].work_dir / "latest.pt"
    while not latest.exists():  # the job is training (it holds the folder's lock)
        assert runner.poll() is None, runner.stdout.read()
        time.sleep(0.5)
    job_pid = int((runs[0].work_dir / ".train.lock").read_text())
    status = run("status", str(grid), "--runs-root", str(root), "--results-root", str(results))
    assert f"training now (pid {job_pid})" in status.stdout, status.stdout + status.stderr
    runner.send_signal(signal.SIGTERM)
    out, _ = runner.communicate(timeout=300)
    assert runner.returncode != 0 and "stopped by signal" in out
    with pytest.raises(ProcessLookupError):  # the job is gone (waited for by the runner)
        os.kill(job_pid, 0)
    status = run("status", str(grid), "--runs-root", str(root), "--results-root", str(results)).stdout
    assert "resumable (step " in status and "training now" not in status

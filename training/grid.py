"""Run a named experiment grid: many trainings, two at a time, resumable at any point, then one table.

    python training/grid.py run sr3d_scannet_small            # train + evaluate every missing run
    python training/grid.py run sr3d_scannet_small --rows tr3d sr3d --jobs 2
    python training/grid.py table sr3d_scannet_small          # rebuild table.md / table.json / plot from the runs
    python training/grid.py status sr3d_scannet_small

A grid is a YAML file in ``config/grids/`` (or a path): common ``set`` overrides and ``seeds``, and ``rows``, each
with a model ``config``, its own ``set`` overrides and optionally its own ``seeds`` (a sweep point needs one), and
optionally ``paper``: a column ``label`` and published ``rows: {name: [mAP@0.25, mAP@0.5]}`` shown next to ours.
Run ``<row>/seed<k>`` trains in ``runs/grids/<grid>/<row>/seed<k>/`` (checkpoints, not committed); when it is
evaluated, its ``result.json``, ``train_log.csv`` and, when it validated along the way (``train.val_interval``),
``val_log.csv`` (validation mAP along training: the learning curve) are copied to
``docs/results/grids/<grid>/<row>/seed<k>/`` (small, committed), and a run with a result there is done and
skipped, in any checkout. A run with ``latest.pt`` resumes from it; one with ``final.pt`` but no result is only
evaluated. Stopping the runner (Ctrl-C, a kill, the machine going away) loses at most ``train.ckpt_interval``
steps of each run in flight. Each job runs in its own process with one torch thread, so two jobs fill two cores.

Each result holds mAP@0.25/0.5 on the whole val split and on its two halves (even / odd scenes: the spread
between halves measures evaluation noise), AIC (the mean |score − IoU| over the positives of the last 10 % of
logged training steps), PCE (mean and histogram of |score − IoU| of the top-30 detections per class) and the
training time. The library part is ``sr3d_core.engine.grid``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from sr3d_core.engine.grid import (
    RESULTS_ROOT,
    load_grid,
    load_paper,
    run_grid,
    run_state,
    store_result,
    write_table,
)


def main(argv: Optional[list[str]] = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "command",
        choices=["run", "table", "status", "collect"],
        help="collect: copy results that exist only in the run folders to the results folder",
    )
    ap.add_argument("grid", help="grid name in config/grids or a YAML path")
    ap.add_argument("--rows", nargs="*", default=None, help="only these rows (default: all, in file order)")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel, one thread each")
    ap.add_argument("--runs-root", type=Path, default=Path("runs/grids"), help="checkpoints (not committed)")
    ap.add_argument("--results-root", type=Path, default=RESULTS_ROOT, help="results and tables (committed)")
    a = ap.parse_args(argv)
    grid, all_runs = load_grid(a.grid, a.runs_root, a.results_root)
    runs = all_runs
    if a.rows:
        unknown = set(a.rows) - {r.row for r in runs}
        if unknown:
            ap.error(f"unknown rows {sorted(unknown)}; the grid has {sorted({r.row for r in runs})}")
        runs = [r for r in runs if r.row in a.rows]
    if a.command == "run":
        if a.jobs < 1:
            ap.error("--jobs must be >= 1")
        run_grid(grid, a.grid, runs, a.jobs, a.runs_root, a.results_root)
        print((a.results_root / grid / "table.md").read_text())
    elif a.command == "collect":
        for r in runs:
            if not r.done and (r.work_dir / "result.json").is_file():
                store_result(r)
                print(f"collected {r.row}/seed{r.seed}")
        print(write_table(grid, all_runs, a.results_root, load_paper(a.grid)))
    elif a.command == "table":
        print(write_table(grid, all_runs, a.results_root, load_paper(a.grid)))
    else:
        for r in runs:
            print(f"{r.row:24s} seed{r.seed}  {run_state(r)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

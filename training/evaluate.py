"""Evaluate checkpoints (mAP, mAR, per-class table, latency, precision / recall at the node's score threshold,
bird's-eye views): the ``sr3d-evaluate`` command, runnable from a checkout.

    python training/evaluate.py --checkpoint runs/x/final.pt [--repeats 5] [--split val] [--json out.json]
        [--score-threshold 0.3] [--bev-dir out/]

The evaluation is ``sr3d_core.evaluation`` (``--help`` lists every argument).
"""

from sr3d_core.evaluation.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

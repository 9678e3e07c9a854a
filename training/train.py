"""Train a TR3D / SR3D detector: the ``sr3d-train`` command, runnable from a checkout.

    python training/train.py --config synth_sunrgbd_small --work-dir runs/x [--resume] [--set train.lr=1e-4]
    torchrun --nproc_per_node 2 training/train.py --config ... --work-dir ...

The trainer is ``sr3d_core.engine`` (``--help`` lists every argument).
"""

from sr3d_core.engine.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

"""sr3d_core.engine: training (``trainer``), its schedule, RNG state, logs, DDP support and the ``sr3d-train`` CLI.

Data comes from ``sr3d_core.data`` (scene sources and the step loader), checkpoints use the format of
``sr3d_core.model.checkpoint`` and validation runs ``sr3d_core.evaluation.detector_pass``.
"""

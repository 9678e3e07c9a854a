"""sr3d_core.data: scene sources (real, synthetic, toy), augmentations and the one training data path.

Synthetic data is written in the same mmdet3d v1.1 format as ScanNet / SUN RGB-D (`infos.py`, `scannet.py`,
`sunrgbd.py`) and read by `dataset.InfoScenes`; `toy.ToyScenes` makes tiny scenes in memory. Both are scene
sources (`sources.SceneSource`, built from a config by `sources.build_source`) that draw their augmentation
(`augment`) from a given generator. `loader.StepDataset` turns a source into the batch of each training step
through `sr3d_core.preprocess`, which inference uses too; evaluation reads the same sources unaugmented.
"""

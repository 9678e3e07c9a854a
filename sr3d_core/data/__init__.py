"""sr3d_core.data: real-data loaders, the synthetic world, augmentations and the training Dataset.

One loading path: synthetic data is written in the same mmdet3d v1.1 format as ScanNet / SUN RGB-D
(`infos.py`, `scannet.py`, `sunrgbd.py`), read by `dataset.InfoDataset`, augmented by
`transforms.augment` and batched through `sr3d_core.preprocess` by `dataset.SparseCollate`.
"""

"""sr3d_core.preprocess: the input contract and the one path from points to a sparse batch."""

from __future__ import annotations

import numpy as np
import pytest

from sr3d_core.preprocess import InputContract, prepare_points, to_sparse_batch


def _cloud(n: int = 1000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-2, 2, (n, 3)), rng.uniform(0, 1, (n, 3))].astype(np.float32)


def test_contract_roundtrip_and_channels():
    c = InputContract(0.02, True, (-5, -5, -1, 5, 5, 3), 5000)
    assert InputContract.from_dict(c.to_dict()) == c
    assert c.in_channels == 3 and InputContract(0.01, False).in_channels == 1
    with pytest.raises(ValueError, match="voxel_size"):
        InputContract(0.0, True)
    with pytest.raises(ValueError, match="point_range"):
        InputContract(0.01, True, (1, 0, 0, 0, 1, 1))
    with pytest.raises(ValueError, match="unknown"):
        InputContract.from_dict({"voxel_size": 0.01, "use_color": True, "colour": 1})


def test_prepare_validates_points():
    c = InputContract(0.02, True)
    with pytest.raises(ValueError, match="points"):
        prepare_points(np.zeros(10, np.float32), c)
    with pytest.raises(ValueError, match="points"):
        prepare_points(np.zeros((10, 3), np.float32), c)  # no colour columns
    with pytest.raises(ValueError, match="points"):
        prepare_points(np.zeros((10, 6), np.int32), c)


def test_prepare_drops_nonfinite_crops_and_selects_columns():
    p = _cloud()
    p[0, 0] = np.nan
    p[1, 4] = np.inf
    out = prepare_points(p, InputContract(0.02, True))
    assert out.shape == (998, 6) and out.dtype == np.float32
    out = prepare_points(p, InputContract(0.02, False, (0, 0, 0, 2, 2, 2)))
    assert out.shape[1] == 3 and (out >= 0).all() and (out < 2).all()


def test_prepare_subsample_deterministic_and_seeded():
    p = _cloud(5000)
    c = InputContract(0.02, True, None, 1000)
    a, b = prepare_points(p, c), prepare_points(p, c)
    assert len(a) == 1000 and np.array_equal(a, b)
    r1 = prepare_points(p, c, np.random.default_rng(3))
    r2 = prepare_points(p, c, np.random.default_rng(3))
    assert np.array_equal(r1, r2) and not np.array_equal(r1, a)


@pytest.mark.parametrize("use_color", [True, False])
def test_to_sparse_batch(use_color):
    c = InputContract(0.1, use_color)
    clouds = [prepare_points(_cloud(800, s), c) for s in range(2)]
    st, p2v = to_sparse_batch(clouds, c, seed=0)
    assert p2v.shape[0] == 1600
    assert st.feats.shape[1] == c.in_channels
    if not use_color:
        assert (st.feats == 1).all()

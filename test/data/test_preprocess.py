"""sr3d_core.preprocess: the input contract and the one path from points to a sparse batch."""

from __future__ import annotations

import numpy as np
import pytest

from sr3d_core.preprocess import InputContract, cap_rows, prepare_points, to_sparse_batch


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


def test_contract_quantize_dtype_default_roundtrip_and_use():
    c = InputContract(0.01, True)
    assert c.quantize_dtype == "float64" and c.to_dict()["quantize_dtype"] == "float64"
    # a contract saved before the option existed reads as the float64 it was quantized with
    old = {"voxel_size": 0.01, "use_color": True, "point_range": None, "max_points": None}
    assert InputContract.from_dict(old).quantize_dtype == "float64"
    tr3d = InputContract(0.01, True, None, None, "float32")
    assert InputContract.from_dict(tr3d.to_dict()) == tr3d
    with pytest.raises(ValueError, match="quantize_dtype must be one of"):
        InputContract(0.01, True, quantize_dtype="half")
    # to_sparse_batch quantizes in the contract's arithmetic: 3 cm in float32 is 0.0299999993 m, 2.99999993 voxels
    # in float64, which float32 rounds to 3
    xyz = np.float32(0.03)
    assert np.floor(np.float64(xyz) / 0.01) == 2 and np.floor(xyz / np.float32(0.01)) == 3
    cloud = np.array([[xyz, 0, 0, 0.5, 0.5, 0.5]], np.float32)
    for contract, x in ((c, 2), (tr3d, 3)):
        batch, _ = to_sparse_batch([prepare_points(cloud, contract)], contract, seed=0)
        assert batch.coords[0].tolist() == [0, x, 0, 0]


def test_config_carries_quantize_dtype_into_the_contract_and_checkpoint():
    import torch

    from sr3d_core.config import ConfigError, load_config
    from sr3d_core.model.checkpoint import config_of, make_checkpoint

    assert load_config("tr3d_sunrgbd").contract.quantize_dtype == "float64"
    cfg = load_config("tr3d_sunrgbd", overrides=["data.quantize_dtype=float32"])
    assert cfg.contract.quantize_dtype == "float32"
    ckpt = make_checkpoint(cfg, torch.nn.Linear(1, 1))
    assert ckpt["contract"]["quantize_dtype"] == "float32"
    assert config_of(ckpt).contract.quantize_dtype == "float32"
    with pytest.raises(ConfigError, match="quantize_dtype must be one of"):
        load_config("tr3d_sunrgbd", overrides=["data.quantize_dtype=float16"])


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


def test_cap_rows_hand_worked():
    c = InputContract(0.02, True, None, 4)
    assert cap_rows(4, c) is None and cap_rows(3, c) is None  # at or under the cap: every row
    assert cap_rows(10, c).tolist() == [0, 3, 6, 9]  # linspace(0, 9, 4): evenly strided, ends included
    assert cap_rows(10, InputContract(0.02, True)) is None  # no cap
    r = cap_rows(10, c, np.random.default_rng(0))
    assert len(r) == 4 and len(set(r.tolist())) == 4 and np.all(np.diff(r) > 0)


def test_cap_applies_to_raw_rows_before_cleaning():
    # The node decodes only the rows cap_rows picks from a raw (organized, NaN-holed) cloud: that must give
    # exactly what prepare_points gives on the whole cloud.
    p = _cloud(5000)
    p[::7, 1] = np.nan
    c = InputContract(0.02, True, (0.2, 0.0, 0.0, 3.0, 3.0, 3.0), 1000)
    rows = cap_rows(len(p), c)
    full = prepare_points(p, c)
    assert np.array_equal(full, prepare_points(p[rows], c))
    sub = p[rows]
    lo, hi = np.array([0.2, 0.0, 0.0], np.float32), np.float32(3.0)
    inside = np.isfinite(sub).all(1) & (sub[:, :3] >= lo).all(1) & (sub[:, :3] < hi).all(1)
    expect = sub[inside]  # strided rows, then NaNs dropped, then the crop
    assert np.array_equal(full, expect) and len(full) < 1000


@pytest.mark.parametrize("use_color", [True, False])
def test_to_sparse_batch(use_color):
    c = InputContract(0.1, use_color)
    clouds = [prepare_points(_cloud(800, s), c) for s in range(2)]
    st, p2v = to_sparse_batch(clouds, c, seed=0)
    assert p2v.shape[0] == 1600
    assert st.feats.shape[1] == c.in_channels
    if not use_color:
        assert (st.feats == 1).all()


def test_prepare_equals_row_by_row_definition():
    """Random clouds with NaN, inf, huge and out-of-crop values, 0-1 and 0-255 colours, against a per-row loop of
    the documented rules (finite in every used column, |xyz| < reach, inside the crop; colours /255 if any > 1)."""
    from sr3d_core.preprocess import prepare_points_with_stats

    rng = np.random.default_rng(7)
    for trial in range(60):
        n = int(rng.integers(0, 200))
        pts = (rng.normal(size=(n, 6)) * rng.choice([1.0, 3.0])).astype(np.float32)
        pts[:, 3:] = np.abs(pts[:, 3:]) * rng.choice([0.3, 200.0])
        for _ in range(int(rng.integers(0, 6))):
            if n:
                pts[rng.integers(0, n), rng.integers(0, 6)] = rng.choice([np.nan, np.inf, -np.inf, 1e30])
        pts[: n // 10, trial % 3] = rng.choice([-2.0, 2.0, -1.0, 1.5])  # on the crop's edges (half-open)
        use_color = bool(trial % 3)
        crop = (-2.0, -2.0, -1.0, 2.0, 2.0, 1.5) if trial % 2 else None
        contract = InputContract(0.02, use_color, crop)
        got, stats = prepare_points_with_stats(pts.copy(), contract)

        need = 6 if use_color else 3
        finite = [r for r in pts[:, :need] if all(np.isfinite(v) for v in r)]
        kept = [
            r
            for r in finite
            if all(abs(v) < contract.reach for v in r[:3])
            and (crop is None or all(crop[j] <= r[j] < crop[j + 3] for j in range(3)))
        ]
        want = np.array(kept, dtype=np.float32).reshape(-1, need)
        rescale = use_color and any(v > 1.0 for r in kept for v in r[3:])
        if use_color:
            want[:, 3:] = np.clip(want[:, 3:] / (255.0 if rescale else 1.0), 0.0, 1.0)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert (stats.non_finite, stats.out_of_range) == (n - len(finite), len(finite) - len(kept))
        assert stats.colors_rescaled == rescale


def test_with_neutral_color_is_the_one_place_the_grey_is_applied():
    from sr3d_core.preprocess import NEUTRAL_COLOR, with_neutral_color

    xyz = np.arange(12, dtype=np.float32).reshape(4, 3)
    grey = with_neutral_color(xyz)  # a cloud without colour gains it (the node's missing_color: neutral)
    assert grey.dtype == np.float32 and grey.shape == (4, 6)
    assert np.array_equal(grey[:, :3], xyz) and (grey[:, 3:] == np.float32(NEUTRAL_COLOR[0])).all()
    rgb = np.concatenate([xyz, np.full((4, 4), 0.9, np.float32)], axis=1)  # xyz, rgb, one more column
    out = with_neutral_color(rgb)  # colours replaced in a copy (sr3d-evaluate --neutral-color)
    assert out is not rgb and (rgb[:, 3:] == np.float32(0.9)).all()
    assert np.array_equal(out[:, 3:6], np.broadcast_to(np.float32(NEUTRAL_COLOR), (4, 3)))
    assert (out[:, 6] == np.float32(0.9)).all()
    with pytest.raises(ValueError, match="shape"):
        with_neutral_color(rgb[:, :4])

"""Detector API: random checkpoints, round trip, runtime parameters and clear errors."""

import warnings

import numpy as np
import pytest
import torch

from sr3d_core.detections import Detections
from sr3d_core.inference import CheckpointError, Detector, write_random_checkpoint
from sr3d_core.model.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_random_checkpoint(tmp_path_factory.mktemp("ck") / "rand.pt", "toy_tiny", seed=3)


def cloud(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(0, 3, (n, 3)), rng.uniform(0, 1, (n, 3))], 1).astype(np.float32)


def test_random_checkpoint_format_and_detect(ckpt):
    c = load_checkpoint(ckpt)
    assert c["class_names"] == ["small", "large"] and c["contract"]["voxel_size"] == 0.02
    det = Detector.from_checkpoint(ckpt)
    assert det.class_names == ("small", "large") and det.contract.use_color
    res = det.detect(cloud())
    assert isinstance(res, Detections) and res.boxes.shape[1] == 7
    assert len(det.detect(np.zeros((0, 6), np.float32))) == 0


def test_round_trip_is_bit_exact(ckpt, tmp_path):
    det = Detector.from_checkpoint(ckpt)
    again = write_random_checkpoint(tmp_path / "again.pt", "toy_tiny", seed=3)
    a, b = load_checkpoint(ckpt)["model"], load_checkpoint(again)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    det2 = Detector.from_checkpoint(again)
    sd1, sd2 = det.model.state_dict(), det2.model.state_dict()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    r1, r2 = det.detect(cloud()), det2.detect(cloud())
    assert np.array_equal(r1.boxes, r2.boxes) and np.array_equal(r1.scores, r2.scores)
    assert np.array_equal(r1.labels, r2.labels)


def test_runtime_postprocess_params(ckpt):
    det = Detector.from_checkpoint(ckpt)
    n_all = len(det.detect(cloud()))
    det.max_detections = 3
    assert len(det.detect(cloud())) == min(3, n_all)
    det.max_detections = None
    det.score_threshold = 0.99
    assert len(det.detect(cloud())) == 0
    det.nms_iou = 0.3
    assert det.postprocess.nms_iou == 0.3
    with pytest.raises(ValueError, match="nms_iou"):
        det.nms_iou = 0.0
    with pytest.raises(ValueError, match="score_threshold"):
        det.set_postprocess(score_threshold=1.5)


def test_errors(ckpt, tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        Detector.from_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt"):
        Detector.from_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(CheckpointError, match="not an SR3D checkpoint"):
        Detector.from_checkpoint(other)
    with pytest.raises(ValueError, match="class mismatch"):
        Detector.from_checkpoint(ckpt, config="tr3d_sunrgbd")
    Detector.from_checkpoint(ckpt, config="toy_tiny")  # agreeing config is fine
    det = Detector.from_checkpoint(ckpt)
    with pytest.raises(ValueError, match="columns"):
        det.detect(np.zeros((10, 3), np.float32))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_cuda_request_falls_back_to_cpu_with_warning(ckpt):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        det = Detector.from_checkpoint(ckpt, device="cuda:0")
    assert det.device.type == "cpu" and any("CUDA is not available" in str(x.message) for x in w)


def test_trained_state_round_trip_matches_in_memory_model(tmp_path):
    """Non-trivial BN statistics and weights survive save → load bit-exactly, and so does detect()."""
    from sr3d_core.config import load_config
    from sr3d_core.model.checkpoint import make_checkpoint, save_atomic
    from sr3d_core.model.network import build_network
    from sr3d_core.preprocess import prepare_points, to_sparse_batch

    cfg = load_config("toy_tiny")
    torch.manual_seed(0)
    model = build_network(cfg)
    x, _ = to_sparse_batch([prepare_points(cloud(), cfg.contract)], cfg.contract, seed=0)
    model.train()
    with torch.no_grad():
        model(x)  # moves the BN running statistics away from their init
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_atomic(make_checkpoint(cfg, model), tmp_path / "m.pt")
    loaded = Detector.from_checkpoint(tmp_path / "m.pt")
    in_memory = Detector(model, cfg, torch.device("cpu"))
    sd1, sd2 = in_memory.model.state_dict(), loaded.model.state_dict()
    assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    r1, r2 = in_memory.detect(cloud(seed=5)), loaded.detect(cloud(seed=5))
    assert len(r1) > 0
    assert np.array_equal(r1.boxes, r2.boxes) and np.array_equal(r1.scores, r2.scores)


def same(a, b):
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("boxes", "scores", "labels"))


def test_colours_in_0_255_are_rescaled_like_the_node(ckpt):
    det = Detector.from_checkpoint(ckpt)
    det.set_postprocess(score_threshold=0.0)
    c = cloud()
    ref = det.detect(c)
    c255 = c.copy()
    c255[:, 3:6] = np.round(c255[:, 3:6] * 255)
    c01 = c255.copy()
    c01[:, 3:6] /= 255  # x / 255 and the detector's x * (1 / 255) may differ in the last bit
    a, b = det.detect(c255), det.detect(c01)
    assert len(ref) > 0 and len(a) == len(b) and np.array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.boxes, b.boxes, rtol=0, atol=1e-5)
    np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-6)
    assert det.detect_with_stats(c255)[1].colors_rescaled and not det.detect_with_stats(c01)[1].colors_rescaled
    assert c255[:, 3:6].max() > 1  # the caller's array is left as it was


def test_one_far_outlier_is_dropped_and_counted(ckpt):
    det = Detector.from_checkpoint(ckpt)
    det.set_postprocess(score_threshold=0.0)
    c = cloud()
    bad = np.concatenate([c, [[1e9, 0, 0, 0.5, 0.5, 0.5], [np.nan, 0, 0, 0.5, 0.5, 0.5]]]).astype(np.float32)
    got, stats = det.detect_with_stats(bad)
    assert same(got, det.detect(c)) and len(got) > 0
    assert (stats.rows_in, stats.out_of_range, stats.non_finite, stats.capped) == (len(c) + 2, 1, 1, 0)


def test_voxel_size_range_is_checked_at_load():
    from sr3d_core.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"toy_tiny.yaml: voxel_size must lie in \[0.001, 1\] m"):
        load_config("toy_tiny", ["data.voxel_size=0.0000001"])


def _randomize_batch_norms(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_detect_runs_the_folded_network_and_follows_weight_changes(ckpt):
    """``detect`` runs a copy with the batch norms folded in: the same raw outputs as the network as loaded (to
    float rounding), and a new copy once the loaded network's weights change in place."""
    from sr3d_core.inference import predict
    from sr3d_core.sparse import FoldedConv

    det = Detector.from_checkpoint(ckpt)
    _randomize_batch_norms(det.model, seed=1)
    det.score_threshold = 0.0
    x, _ = det.network_input(cloud())
    net = det.inference_network()
    assert any(isinstance(m, FoldedConv) for m in net.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())
    assert det.inference_network() is net, "folded again without a change"
    with torch.no_grad():
        want, got = det.model(x), net(x)
    torch.testing.assert_close(got.cls_logits, want.cls_logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got.reg, want.reg, rtol=1e-4, atol=1e-4)
    ref = predict(det.model, x, det.postprocess, det.class_names)[0]
    res = det.detect(cloud())
    assert len(res) == len(ref) > 0
    np.testing.assert_allclose(res.scores, ref.scores, rtol=1e-4, atol=1e-5)
    # In place (as load_state_dict does): the next detect folds the new statistics.
    _randomize_batch_norms(det.model, seed=2)
    assert det.inference_network() is not net
    ref2 = predict(det.model, x, det.postprocess, det.class_names)[0]
    res2 = det.detect(cloud())
    assert not np.allclose(ref2.scores[:5], ref.scores[:5])
    np.testing.assert_allclose(res2.scores, ref2.scores, rtol=1e-4, atol=1e-5)


def test_one_non_finite_predicted_box_is_dropped_and_counted(ckpt, monkeypatch):
    """A NaN or infinite box or a NaN score from the network loses that anchor only: every other detection is returned
    exactly as without it, and the detector counts what it dropped."""
    from sr3d_core.model.head import decode_boxes

    det = Detector.from_checkpoint(ckpt)
    # No suppression and no pre-filter cut: then leaving one anchor out leaves every other detection as it was.
    det.set_postprocess(score_threshold=0.0, nms_iou=1.0, nms_pre=10**6)
    c = cloud()
    ref = det.detect(c)
    net = det.inference_network()
    x, _ = det.network_input(c)
    with torch.no_grad():
        out = net(x)
    order = out.cls_logits.max(dim=1).values.argsort(descending=True)
    top, second, third = order[:3].tolist()
    decoded = decode_boxes(out.anchors, out.reg, net.cfg.tr3d_height_quirk).numpy()
    assert det.non_finite_boxes == 0

    def without(anchors):
        rows = [i for i, b in enumerate(ref.boxes) if not any(np.array_equal(b, decoded[a]) for a in anchors)]
        assert len(rows) < len(ref) and rows
        return Detections(ref.boxes[rows], ref.scores[rows], ref.labels[rows], ref.class_names)

    real_forward = net.forward

    def broken_forward(x, edit):
        o = real_forward(x)
        edit(o)
        return o

    def nan_box(o):
        o.reg[top, 0] = float("nan")

    monkeypatch.setattr(net, "forward", lambda x: broken_forward(x, nan_box))
    assert same(det.detect(c), without([top]))
    assert det.non_finite_boxes == 1

    def inf_size_and_nan_logit(o):
        o.reg[second, 3] = float("inf")  # exp(inf): an infinite size
        o.cls_logits[third, 1] = float("nan")

    monkeypatch.setattr(net, "forward", lambda x: broken_forward(x, inf_size_and_nan_logit))
    assert same(det.detect(c), without([second, third]))
    assert det.non_finite_boxes == 3
    monkeypatch.setattr(net, "forward", real_forward)
    assert same(det.detect(c), ref) and det.non_finite_boxes == 3

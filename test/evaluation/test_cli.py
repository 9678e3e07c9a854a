"""sr3d-evaluate (``training/evaluate.py``): metrics, table, repeats summary (best and mean)."""

import json

import pytest

from sr3d_core.evaluation.cli import main
from sr3d_core.evaluation.protocol import EvaluationProtocol
from sr3d_core.inference import write_random_checkpoint


def test_evaluate_cli_random_checkpoint(tmp_path, capsys):
    ck = write_random_checkpoint(tmp_path / "r.pt", "toy_tiny", seed=1)
    out = tmp_path / "res.json"
    plot = tmp_path / "align.png"
    assert (
        main(
            [
                "--checkpoint",
                str(ck),
                str(ck),
                "--repeats",
                "2",
                "--device",
                "cpu",
                "--json",
                str(out),
                "--alignment-plot",
                str(plot),
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert res["protocol"] == EvaluationProtocol().to_dict()  # the rules, saved with the numbers
    assert len(res["runs"]) == 4
    assert list(res["runs"][0]) == [
        "mAP_0.25",
        "mAP_0.5",
        "mAR_0.25",
        "mAR_0.5",
        "latency_ms",
        "checkpoint",
        "precision_recall",
    ]
    for key in ("mAP_0.25", "mAP_0.5"):
        s = res["summary"][key]
        assert s["n"] == 4 and 0.0 <= s["mean"] <= s["best"] <= 1.0
    assert all(r["latency_ms"] > 0 for r in res["runs"])
    text = capsys.readouterr().out
    assert "Overall" in text and "best" in text
    # One alignment figure per checkpoint (first run of each), its PCE printed.
    assert sorted(p.name for p in tmp_path.glob("align_*.png")) == ["align_0.png", "align_1.png"]
    assert text.count("alignment plot:") == 2


def test_precision_recall_and_bev_images(tmp_path, capsys):
    ck = write_random_checkpoint(tmp_path / "r.pt", "toy_tiny", seed=1)
    out, bev = tmp_path / "res.json", tmp_path / "bev"
    assert (
        main(
            [
                "--checkpoint",
                str(ck),
                "--device",
                "cpu",
                "--json",
                str(out),
                "--score-threshold",
                "0.05",
                "--bev-dir",
                str(bev),
                "--strict-mmdet3d",
                "--max-detections",
                "50",
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert (
        res["protocol"]
        == EvaluationProtocol(skip_classes_without_gt=False, max_detections=50, pr_score_threshold=0.05).to_dict()
    )
    pr = res["runs"][0]["precision_recall"]
    assert pr["score_threshold"] == 0.05 and pr["num_scenes"] == 2
    for key in ("iou_0.25", "iou_0.50"):
        total = pr[key]["all classes"]
        per_class = [v for k, v in pr[key].items() if k != "all classes"]
        for n in ("tp", "fp", "fn"):  # the "all classes" row sums every class
            assert total[n] == sum(row[n] for row in per_class)
    assert sorted(p.name for p in bev.iterdir()) == ["0000_0.png", "0001_1.png"]  # one per scene
    text = capsys.readouterr().out
    assert "precision / recall of every box scored >= 0.05" in text and "all classes" in text


def test_score_threshold_below_the_checkpoints_is_refused(tmp_path, capsys):
    ck = write_random_checkpoint(tmp_path / "r.pt", "toy_tiny", seed=1)
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(ck), "--device", "cpu", "--score-threshold", "0.001"])
    assert "below the checkpoint's postprocess.score_threshold" in capsys.readouterr().err

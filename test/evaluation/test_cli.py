"""sr3d-evaluate (``training/evaluate.py``): metrics, table, repeats summary (best and mean)."""

import json
import sys
from pathlib import Path

import pytest

from sr3d_core.data.info_scenes import InfoScenes
from sr3d_core.evaluation.cli import main
from sr3d_core.evaluation.detector_pass import evaluate_detector
from sr3d_core.evaluation.protocol import EvaluationProtocol
from sr3d_core.inference import Detector, write_random_checkpoint

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))  # the mmdet3d layout fixtures
from mmdet3d_layouts import SUNRGBD_FRAMES, write_scannet, write_sunrgbd  # noqa: E402


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
                "--nms-iou",
                "0.3",
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert (
        res["protocol"]
        == EvaluationProtocol(
            skip_classes_without_gt=False, max_detections=50, nms_iou=0.3, pr_score_threshold=0.05
        ).to_dict()
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


@pytest.mark.parametrize("bad", ["0", "1.5", "nan"])
def test_nms_iou_out_of_range_is_refused(tmp_path, capsys, bad):
    ck = write_random_checkpoint(tmp_path / "r.pt", "toy_tiny", seed=1)
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(ck), "--device", "cpu", "--nms-iou", bad])
    assert "nms_iou must lie in (0, 1]" in capsys.readouterr().err


def test_score_sweep_equals_the_single_threshold_counts(tmp_path, capsys):
    ck = write_random_checkpoint(tmp_path / "r.pt", "toy_tiny", seed=1)
    out = tmp_path / "res.json"
    # A random network scores every box within 1e-4 of its 0.01 prior: 0.01 keeps all, 0.01001 some, 0.5 none.
    args = ["--checkpoint", str(ck), "--device", "cpu", "--json", str(out), "--score-threshold", "0.01001"]
    assert main(args + ["--score-sweep", "0.01", "0.01001", "0.5"]) == 0
    run = json.loads(out.read_text())["runs"][0]
    sweep = run["score_sweep"]
    assert [s["score_threshold"] for s in sweep] == [0.01, 0.01001, 0.5]
    assert sweep[1] == run["precision_recall"]  # the same rules at the same threshold
    for key in ("iou_0.25", "iou_0.50"):
        rows = [s[key]["all classes"] for s in sweep]
        kept = [r["tp"] + r["fp"] for r in rows]
        assert kept[0] > kept[1] > kept[2] == 0  # a higher threshold keeps a subset
        assert rows[0]["tp"] >= rows[1]["tp"] >= rows[2]["tp"]
        assert len({r["tp"] + r["fn"] for r in rows}) == 1  # the ground truth does not depend on the threshold
    text = capsys.readouterr().out
    assert "| score >= | boxes |" in text and f"| 0.01001 | {kept[1]} |" in text
    with pytest.raises(SystemExit):
        main(args + ["--score-sweep", "0.001"])
    assert "--score-sweep 0.001 is below the checkpoint's" in capsys.readouterr().err


def test_a_sunrgbd_model_on_a_scannet_folder(tmp_path, capsys):
    # The ScanNet file is found in the folder, and the SUN classes ScanNet does not label (dresser, night stand)
    # leave every count: no box of theirs is a TP or an FP, while the shared classes are counted.
    write_scannet(tmp_path / "scannet", "v11")
    ck = write_random_checkpoint(tmp_path / "sun.pt", "synth_sunrgbd_small", seed=4)
    out = tmp_path / "res.json"
    argv = ["--checkpoint", str(ck), "--device", "cpu", "--data-root", str(tmp_path / "scannet"), "--json", str(out)]
    assert main(argv + ["--score-threshold", "0.01"]) == 0
    text = capsys.readouterr().out
    assert "scannet_infos_val.pkl (scannet)" in text
    assert "does not annotate dresser, night_stand" in text
    res = json.loads(out.read_text())
    assert res["protocol"] == EvaluationProtocol(pr_score_threshold=0.01).to_dict()  # the command's rules
    assert res["runs"][0]["protocol"]["unjudged_classes"] == ["dresser", "night_stand"]  # this run's
    # Judged, the same model reports dressers and night stands here: what the counts below leave out.
    det = Detector.from_checkpoint(ck)
    source = InfoScenes.for_evaluation(tmp_path / "scannet", "x.pkl", "val", det.class_names)
    boxes = evaluate_detector(det, source, keep_scenes=True).scenes
    names = [det.class_names[k] for _, d in boxes for k, sc in zip(d.labels, d.scores) if sc >= 0.01]
    assert "dresser" in names and "night_stand" in names
    rows = res["runs"][0]["precision_recall"]["iou_0.25"]
    counted = {name: row["tp"] + row["fp"] for name, row in rows.items()}
    assert counted.get("dresser", 0) == 0 and counted.get("night_stand", 0) == 0
    assert counted["all classes"] > 0  # the random model's boxes of the shared classes are counted
    assert rows["all classes"]["fn"] + rows["all classes"]["tp"] == 2  # the table and the chair


def test_rotations_table(tmp_path, capsys):
    # --rotate-deg adds one line per angle and their mean; the 0-degree line is the unturned run itself.
    ck = write_random_checkpoint(tmp_path / "sun.pt", "synth_sunrgbd_small", seed=4)
    write_sunrgbd(tmp_path / "sun", "v11")
    out = tmp_path / "res.json"
    argv = ["--checkpoint", str(ck), "--device", "cpu", "--data-root", str(tmp_path / "sun"), "--json", str(out)]
    assert main(argv + ["--rotate-deg", "0", "15", "--score-threshold", "0.01"]) == 0
    run = json.loads(out.read_text())["runs"][0]
    rows = run["rotations"]
    assert [r["yaw_deg"] for r in rows] == [0.0, 15.0]
    assert rows[0]["mAP_0.25"] == run["mAP_0.25"] and rows[0]["mAP_0.5"] == run["mAP_0.5"]
    assert rows[0]["precision_0.25"] == run["precision_recall"]["iou_0.25"]["all classes"]["precision"]
    text = capsys.readouterr().out
    mean = (rows[0]["mAP_0.25"] + rows[1]["mAP_0.25"]) / 2
    assert f"| mean | {mean:.4f} |" in text


def test_info_file_relative_to_the_data_root_or_as_given(tmp_path, monkeypatch, capsys):
    # A folder whose info file has another name than the checkpoint's: refused without --info-file; read when named
    # relative to --data-root, or by itself (its points beside it), from any working directory.
    ck = write_random_checkpoint(tmp_path / "sun.pt", "synth_sunrgbd_small", seed=4)
    write_sunrgbd(tmp_path / "demo", "shipped", name="sunrgbd_000017_infos.pkl")
    base = ["--checkpoint", str(ck), "--device", "cpu"]
    with pytest.raises(SystemExit):
        main(base + ["--data-root", str(tmp_path / "demo")])
    assert "info file not found" in capsys.readouterr().err
    results = []
    monkeypatch.chdir(tmp_path)
    for extra in (
        ["--data-root", str(tmp_path / "demo"), "--info-file", "sunrgbd_000017_infos.pkl"],
        ["--info-file", "demo/sunrgbd_000017_infos.pkl"],
    ):
        out = tmp_path / "res.json"
        assert main(base + extra + ["--json", str(out)]) == 0
        results.append(json.loads(out.read_text())["runs"][0])
        assert "sunrgbd_000017_infos.pkl (sunrgbd)" in capsys.readouterr().out
    assert results[0]["mAP_0.25"] == results[1]["mAP_0.25"]
    assert results[0]["precision_recall"]["iou_0.25"]["all classes"]["fn"] + results[0]["precision_recall"]["iou_0.25"][
        "all classes"
    ]["tp"] == sum(len(objects) for _, objects in SUNRGBD_FRAMES)
    with pytest.raises(SystemExit):
        main(base + ["--info-file", "nowhere.pkl"])
    assert "--info-file is read relative to --data-root" in capsys.readouterr().err


def test_rotations_need_rotated_boxes(tmp_path, capsys):
    ck = write_random_checkpoint(tmp_path / "r.pt", "toy_tiny", seed=1)  # axis-aligned boxes
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(ck), "--device", "cpu", "--rotate-deg", "0", "10"])
    assert "--rotate-deg needs a model of rotated boxes" in capsys.readouterr().err
    assert main(["--checkpoint", str(ck), "--device", "cpu", "--rotate-deg", "0"]) == 0  # no turn: nothing to fit

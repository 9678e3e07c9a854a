"""sr3d-evaluate (``training/evaluate.py``): metrics, table, repeats summary (best and mean)."""

import json

from sr3d_core.evaluation.cli import main
from sr3d_core.inference import write_random_checkpoint


def test_evaluate_cli_random_checkpoint(tmp_path, capsys):
    ck = write_random_checkpoint(tmp_path / "r.pt", "toy_tiny", seed=1)
    out = tmp_path / "res.json"
    plot = tmp_path / "align.png"
    assert main(["--checkpoint", str(ck), str(ck), "--repeats", "2", "--device", "cpu", "--json", str(out),
                 "--alignment-plot", str(plot)]) == 0
    res = json.loads(out.read_text())
    assert len(res["runs"]) == 4
    assert list(res["runs"][0]) == ["mAP_0.25", "mAP_0.5", "mAR_0.25", "mAR_0.5", "latency_ms", "checkpoint"]
    for key in ("mAP_0.25", "mAP_0.5"):
        s = res["summary"][key]
        assert s["n"] == 4 and 0.0 <= s["mean"] <= s["best"] <= 1.0
    assert all(r["latency_ms"] > 0 for r in res["runs"])
    text = capsys.readouterr().out
    assert "Overall" in text and "best" in text
    # One alignment figure per checkpoint (first run of each), its PCE printed.
    assert sorted(p.name for p in tmp_path.glob("align_*.png")) == ["align_0.png", "align_1.png"]
    assert text.count("alignment plot:") == 2

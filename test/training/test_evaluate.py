"""evaluate.py: metrics, table, repeats summary (best and mean)."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from sr3d_core.inference import write_random_checkpoint  # noqa: E402
from training.evaluate import main  # noqa: E402


def test_evaluate_cli_random_checkpoint(tmp_path, capsys):
    ck = write_random_checkpoint(tmp_path / "r.pt", "toy_tiny", seed=1)
    out = tmp_path / "res.json"
    assert main(["--checkpoint", str(ck), str(ck), "--repeats", "2", "--device", "cpu", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert len(res["runs"]) == 4
    for key in ("mAP_0.25", "mAP_0.5"):
        s = res["summary"][key]
        assert s["n"] == 4 and 0.0 <= s["mean"] <= s["best"] <= 1.0
    assert all(r["latency_ms"] > 0 for r in res["runs"])
    text = capsys.readouterr().out
    assert "Overall" in text and "best" in text

"""The command-line tools refuse empty or impossible input with a clear message and a non-zero exit."""

import subprocess
import sys
from pathlib import Path

import pytest

from sr3d_core.inference import write_random_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    return (
        write_random_checkpoint(d / "toy.pt", "toy_tiny"),
        write_random_checkpoint(d / "synth.pt", "synth_scannet_small"),
    )


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--max-scenes", "0"], "--max-scenes must be >= 1, got 0"),
        (["--repeats", "0"], "--repeats must be >= 1, got 0"),
    ],
)
def test_evaluate_refuses_empty_runs(ckpts, extra, message):
    r = run("training/evaluate.py", "--checkpoint", str(ckpts[0]), *extra)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_evaluate_data_root(ckpts, tmp_path):
    r = run("training/evaluate.py", "--checkpoint", str(ckpts[1]), "--data-root", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert f"info file not found: {tmp_path}" in r.stderr and "--data-root" in r.stderr


def test_show_index_past_the_end(tmp_path):
    from sr3d_core.data.synthetic.writer import write_dataset

    write_dataset("sunrgbd-like", 2, 0, str(tmp_path), "train", 1, lambda _: None)
    r = run(
        "training/show.py",
        "--data-root",
        str(tmp_path),
        "--info",
        "sunrgbd_infos_train.pkl",
        "--index",
        "5",
        "--out",
        str(tmp_path / "x.png"),
    )
    assert r.returncode == 2 and "sample index 5 is out of range" in r.stderr and "has 2 samples" in r.stderr
    r = run(
        "training/show.py",
        "--data-root",
        str(tmp_path),
        "--info",
        "sunrgbd_infos_train.pkl",
        "--index",
        "1",
        "--out",
        str(tmp_path / "x.png"),
    )
    assert r.returncode == 0 and (tmp_path / "x.png").stat().st_size > 1000, r.stderr

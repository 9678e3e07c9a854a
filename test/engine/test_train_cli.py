"""sr3d-train answers ordinary mistakes with one line on stderr and exit status 2 (1 for a run that stopped)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sr3d_core.config import load_config
from sr3d_core.engine import cli
from sr3d_core.engine.trainer import train
from sr3d_core.model.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
PROG = "sr3d-train"


@pytest.fixture(autouse=True)
def program_name(monkeypatch):
    monkeypatch.setattr(sys, "argv", [PROG])  # argparse names the program after it


def refused(capsys, *argv, status=2):
    """Run the command in this process; return its one error line (checked: no other output, the status)."""
    assert cli.main(list(argv)) == status
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(f"{PROG}: error: "), err
    return err[len(f"{PROG}: error: ") :].rstrip("\n")


def test_missing_synthetic_data_names_the_commands_that_make_it(tmp_path, capsys):
    root = tmp_path / "synth"
    msg = refused(
        capsys,
        "--config",
        "synth_sunrgbd_small",
        "--work-dir",
        str(tmp_path / "run"),
        "--set",
        "train.lr=1e-4",
        f"data.root={root}",
    )
    assert msg == (
        f"no train and val data: info files {root}/sunrgbd_infos_train.pkl and {root}/sunrgbd_infos_val.pkl not "
        "found. This config trains on synthetic scenes; make them with: python training/make_synthetic.py --preset "
        f"sunrgbd-like --num-scenes 600 --seed 0 --out {root} --split train; python training/make_synthetic.py "
        f"--preset sunrgbd-like --num-scenes 150 --seed 1 --out {root} --split val"
    )
    assert not (tmp_path / "run").exists(), "nothing is written for a refused run"
    # The preset is the one the config file names: scannet-like here.
    msg = refused(
        capsys, "--config", "synth_scannet_small", "--work-dir", str(tmp_path / "run"), "--set", f"data.root={root}"
    )
    assert "--preset scannet-like" in msg and "sunrgbd" not in msg


def test_only_the_missing_split_is_named(tmp_path, capsys):
    from sr3d_core.data.synthetic.writer import write_dataset

    write_dataset("sunrgbd-like", 1, 0, str(tmp_path), "train", 1, lambda _: None)
    msg = refused(
        capsys, "--config", "synth_sunrgbd_small", "--work-dir", str(tmp_path / "run"), "--set", f"data.root={tmp_path}"
    )
    assert msg.startswith(f"no val data: info file {tmp_path}/sunrgbd_infos_val.pkl not found.")
    assert msg.endswith(f"--num-scenes 150 --seed 1 --out {tmp_path} --split val") and "--split train" not in msg


def test_missing_real_data_names_the_info_file(tmp_path, capsys):
    msg = refused(
        capsys, "--config", "tr3d_scannet", "--work-dir", str(tmp_path / "run"), "--set", f"data.root={tmp_path}"
    )
    assert msg == (
        f"no train and val data: info files {tmp_path}/scannet_infos_train.pkl and "
        f"{tmp_path}/scannet_infos_val.pkl not found (data.root is '{tmp_path}'). Write the scannet info "
        "files there (mmdet3d v1.1 format), or point the run at them with --set data.root=DIR"
    )
    assert "make_synthetic" not in msg


def test_bad_config_values_name_the_override(tmp_path, capsys):
    msg = refused(capsys, "--config", "toy_tiny", "--work-dir", str(tmp_path), "--set", "train.lr=fast")
    assert msg.endswith(
        "toy_tiny.yaml: override 'train.lr=fast': 'train.lr' must be a number (e.g. 0.001 or 1e-3), " "got 'fast'"
    )
    msg = refused(capsys, "--config", "no_such_config", "--work-dir", str(tmp_path))
    assert msg.startswith("config 'no_such_config' is neither a YAML file nor a preset")


def test_resume_without_a_checkpoint(tmp_path, capsys):
    msg = refused(capsys, "--config", "toy_tiny", "--work-dir", str(tmp_path / "new"), "--resume")
    assert msg == (
        f"--resume: no checkpoint to resume from ({tmp_path / 'new'} does not exist); a fresh run needs " "no --resume"
    )
    msg = refused(capsys, "--config", "toy_tiny", "--work-dir", str(tmp_path), "--resume")
    assert msg == f"--resume: no checkpoint to resume from ({tmp_path} has no latest.pt); a fresh run needs no --resume"
    msg = refused(capsys, "--config", "toy_tiny", "--work-dir", str(tmp_path), "--resume", str(tmp_path / "x.pt"))
    assert msg == f"--resume: no such checkpoint: {tmp_path / 'x.pt'}"


def test_cuda_requested_without_cuda(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    msg = refused(capsys, "--config", "toy_tiny", "--work-dir", str(tmp_path), "--device", "cuda")
    assert msg.startswith("--device cuda: CUDA is not available (") and msg.endswith(
        "use --device cpu, or --device auto to take a GPU when there is one"
    )


def test_work_dir_that_cannot_be_written(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("")
    msg = refused(capsys, "--config", "toy_tiny", "--work-dir", str(tmp_path / "file"))
    assert msg == f"--work-dir {tmp_path / 'file'} exists and is not a folder"
    msg = refused(capsys, "--config", "toy_tiny", "--work-dir", str(tmp_path / "file" / "run"))
    assert msg == f"cannot write to --work-dir {tmp_path / 'file' / 'run'}: Not a directory"
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:  # root writes through file modes: stand in for a read-only mount

        def read_only(*args, **kwargs):
            raise OSError(30, "Read-only file system")

        monkeypatch.setattr(cli.tempfile, "TemporaryFile", read_only)
        want = "Read-only file system"
    else:
        ro.chmod(0o500)
        want = "Permission denied"
    try:
        msg = refused(capsys, "--config", "toy_tiny", "--work-dir", str(ro))
    finally:
        ro.chmod(0o700)
    assert msg == f"cannot write to --work-dir {ro}: {want}"


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A toy run stopped after 2 of 4 steps (latest.pt at step 2)."""
    work = tmp_path_factory.mktemp("stopped")
    train(load_config("toy_tiny", ["train.max_iters=4"]), work, stop_after=2, show_progress=False)
    return work


def test_resume_under_a_changed_config_is_refused_with_the_changes(stopped_run, capsys):
    before = (stopped_run / "latest.pt").read_bytes()
    msg = refused(
        capsys,
        "--config",
        "toy_tiny",
        "--work-dir",
        str(stopped_run),
        "--resume",
        "--set",
        "train.max_iters=4",
        "train.lr=1e-4",
        "data.toy_scenes=3",
    )
    assert msg == (
        f"--resume: the config differs from the one {stopped_run / 'latest.pt'} was trained with: "
        "data.toy_scenes: 2 -> 3; train.lr: 0.01 -> 0.0001. Resume with that config (the same --config "
        "and --set), or add --allow-config-change to continue under the new one"
    )
    assert (stopped_run / "latest.pt").read_bytes() == before
    # A checkpoint without training state cannot be resumed at all.
    train(
        load_config("toy_tiny", ["train.max_iters=1"]), stopped_run / "done", show_progress=False, validate_at_end=False
    )
    msg = refused(
        capsys,
        "--config",
        "toy_tiny",
        "--work-dir",
        str(stopped_run),
        "--resume",
        str(stopped_run / "done" / "final.pt"),
        "--set",
        "train.max_iters=1",
    )
    assert msg.endswith("final.pt holds weights only, no training state (a final.pt?); resume from the run's latest.pt")


def test_resume_under_a_changed_config_when_allowed(stopped_run, capsys, tmp_path):
    import shutil

    work = tmp_path / "run"
    shutil.copytree(stopped_run, work)
    assert (
        cli.main(
            [
                "--config",
                "toy_tiny",
                "--work-dir",
                str(work),
                "--resume",
                "--allow-config-change",
                "--no-progress",
                "--set",
                "train.max_iters=4",
                "train.lr=1e-4",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert f"{PROG}: warning: resuming {work / 'latest.pt'} under a changed config: train.lr: 0.01 -> 0.0001" in err
    ckpt = load_checkpoint(work / "latest.pt")
    assert ckpt["train_state"]["step"] == 4 and ckpt["config"]["train"]["lr"] == 1e-4


def test_ctrl_c_names_the_step_and_keeps_the_checkpoint(tmp_path):
    work = tmp_path / "run"
    cmd = [
        sys.executable,
        "training/train.py",
        "--config",
        "toy_tiny",
        "--work-dir",
        str(work),
        "--no-progress",
        "--set",
        "train.max_iters=100000",
        "train.ckpt_interval=3",
    ]
    # A child started from a shell without job control would ignore SIGINT; give it the default (Ctrl-C).
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Until the first checkpoint, however slow the machine; only a stuck run reaches the bound, a dead one ends
        # the wait at once.
        deadline = time.monotonic() + 600
        while not (work / "latest.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err and err.count("\n") == 1, err[-3000:]
    saved = load_checkpoint(work / "latest.pt")["train_state"]["step"]
    line = err.strip()
    prefix = "train.py: error: interrupted: stopped at step "
    assert line.startswith(prefix) and line.endswith(
        f" of 100000; resume with --resume (continues from {work / 'latest.pt'}, step {saved})"
    ), line
    assert int(line[len(prefix) :].split()[0]) >= saved >= 3
    assert [p.name for p in work.iterdir() if p.name.startswith(".latest.pt.tmp")] == []


def test_help_example_runs_from_the_command_line(tmp_path):
    """``--set train.lr=1e-4``, as --help shows it, is a number; the answer is one line, no traceback."""
    r = subprocess.run(
        [
            sys.executable,
            "training/train.py",
            "--config",
            "synth_sunrgbd_small",
            "--work-dir",
            str(tmp_path / "run"),
            "--set",
            "train.lr=1e-4",
            f"data.root={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("train.py: error: no train and val data: ") and "make_synthetic.py" in r.stderr


def test_an_unknown_device_name_is_refused(tmp_path: Path, capsys) -> None:
    msg = refused(capsys, "--config", "toy_tiny", "--work-dir", str(tmp_path), "--device", "gpu")
    assert msg == "--device gpu: expected auto, cpu, cuda or cuda:N"

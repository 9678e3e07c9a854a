"""Training logs: columns follow the rows given, a resume drops the rows it will redo, curves are drawn."""

import csv

from sr3d_core.engine.csvlog import CsvLog, plot_curves


def read(path):
    with open(path) as f:
        return list(csv.reader(f))


def test_a_new_term_widens_the_log(tmp_path):
    log = CsvLog(tmp_path / "train_log.csv")
    log.append({"step": 1, "loss": 2.5, "seconds": 0.1})
    log.append({"step": 2, "loss": 2.0, "seconds": 0.2})
    log.append({"step": 3, "loss": 1.5, "seconds": 0.3, "loss_new": 0.25})
    assert read(log.path) == [
        ["step", "loss", "seconds", "loss_new"],
        ["1", "2.5", "0.1", ""],
        ["2", "2.0", "0.2", ""],
        ["3", "1.5", "0.3", "0.25"],
    ]
    log.append({"step": 4, "loss": 1.0, "seconds": 0.4})  # a term gone again leaves its cell empty
    assert log.rows()[-1] == {"step": "4", "loss": "1.0", "seconds": "0.4", "loss_new": ""}


def test_truncate_keeps_rows_up_to_the_step(tmp_path):
    log = CsvLog(tmp_path / "val_log.csv")
    log.truncate(3)  # no file yet: nothing to do
    assert not log.path.exists()
    for step in (2, 4, 6):
        log.append({"step": step, "mAP_0.25": 0.5})
    log.truncate(4)
    assert [r["step"] for r in log.rows()] == ["2", "4"]
    assert log.header() == ["step", "mAP_0.25"]


def test_curves_plot_every_loss_column(tmp_path):
    train_log = CsvLog(tmp_path / "train_log.csv")
    for step in (1, 2):
        train_log.append({"step": step, "loss": 1.0 / step, "loss_cls": 0.5, "num_pos": 3})
    train_log.append({"step": 3, "loss": 0.3, "loss_cls": 0.4, "num_pos": 3, "loss_new": 0.1})
    CsvLog(tmp_path / "val_log.csv").append({"step": 3, "mAP_0.25": 0.5, "mAP_0.5": 0.2})
    plot_curves(tmp_path)
    assert (tmp_path / "curves.png").stat().st_size > 1000

"""Training logs: CSV files of named values per step, and their plot.

A log's columns are the keys of the rows it is given, so a new loss term shows up as a new column without any
change here; a row with a key the file lacks widens the file (earlier rows leave that cell empty).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Mapping

# Columns drawn in the right-hand panel of `plot_curves` (the left one shows every loss column).
VAL_COLUMNS = ("mAP_0.25", "mAP_0.5")


class CsvLog:
    """A CSV file of rows keyed by column name, the first column being ``step``.

    Args:
        path: The file (created with its header by the first row).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def header(self) -> list[str]:
        """The file's columns (empty when there is no file yet)."""
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return next(csv.reader(f), [])

    def rows(self) -> list[dict[str, str]]:
        """The rows written so far, as strings."""
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def append(self, row: Mapping[str, Any]) -> None:
        """Append ``row``; columns it brings that the file lacks are added to the file first."""
        header = self.header()
        missing = [k for k in row if k not in header]
        if header and missing:
            self._rewrite(header + missing, self.rows())
        columns = header + missing
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, columns, restval="")
            if not header:
                w.writeheader()
            w.writerow(row)

    def truncate(self, max_step: int) -> None:
        """Drop rows logged after ``max_step`` (a resumed run logs them again)."""
        header = self.header()
        if header:
            self._rewrite(header, [r for r in self.rows() if int(r["step"]) <= max_step])

    def _rewrite(self, columns: list[str], rows: list[dict[str, str]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, columns, restval="")
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, self.path)


def plot_curves(work_dir: Path, train_log: str = "train_log.csv", val_log: str = "val_log.csv") -> None:
    """Write ``curves.png``: the loss columns of the training log (log scale) and the validation mAP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for name, a, wanted in ((train_log, ax[0], None), (val_log, ax[1], VAL_COLUMNS)):
        rows = CsvLog(work_dir / name).rows()
        if not rows:
            continue
        columns = [c for c in rows[0] if (c.startswith("loss") if wanted is None else c in wanted)]
        for c in columns:
            pts = [(int(r["step"]), float(r[c])) for r in rows if r[c] != ""]
            a.plot([s for s, _ in pts], [v for _, v in pts], label=c)
        a.set_xlabel("step")
        a.legend()
    ax[0].set_yscale("log")
    fig.tight_layout()
    tmp = work_dir / ".curves.png.tmp.png"
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, work_dir / "curves.png")

"""Class lists of the two real benchmarks, in the order the TR3D configs use.

The index of a name in these tuples is its label id; `label2level` tables in the assigner are
written in the same order, so the order here must never change.
"""

from __future__ import annotations

SCANNET_CLASSES: tuple[str, ...] = (
    "cabinet",
    "bed",
    "chair",
    "sofa",
    "table",
    "door",
    "window",
    "bookshelf",
    "picture",
    "counter",
    "desk",
    "curtain",
    "refrigerator",
    "showercurtain",
    "toilet",
    "sink",
    "bathtub",
    "garbagebin",
)

SUNRGBD_CLASSES: tuple[str, ...] = (
    "bed",
    "table",
    "sofa",
    "chair",
    "toilet",
    "desk",
    "dresser",
    "night_stand",
    "bookshelf",
    "bathtub",
)

# Explicit name -> class list, used by configs that name a dataset. The order is also mmdet3d's (its datasets'
# METAINFO['classes']), so a list is the standard class -> label mapping of info files without categories.
CLASS_LISTS: dict[str, tuple[str, ...]] = {
    "scannet": SCANNET_CLASSES,
    "sunrgbd": SUNRGBD_CLASSES,
}

# Our name -> mmdet3d's spelling where they differ: mmdet3d's ScanNet class list, and so the categories of the
# ScanNet info files it writes, spell "showercurtrain".
MMDET3D_SPELLINGS: dict[str, str] = {"showercurtain": "showercurtrain"}


def category_label(categories: dict[str, int], name: str) -> int | None:
    """The file label of a class name, under our spelling or mmdet3d's; None if absent or ignored (label < 0)."""
    label = categories.get(name, categories.get(MMDET3D_SPELLINGS.get(name, name)))
    return None if label is None or label < 0 else int(label)


def check_class_names(names: list[str] | tuple[str, ...], categories: dict[str, int], source: str) -> None:
    """Raise a clear error when configured class names are missing from a dataset's categories.

    Args:
        names: Class names the config asks for.
        categories: The categories of an info file (name -> index; -1 marks a class the file ignores).
        source: Where the categories came from, named in the error.

    Raises:
        ValueError: If a name is not among the categories.
    """
    missing = [n for n in names if category_label(categories, n) is None]
    if missing:
        known = sorted((n for n, k in categories.items() if k >= 0), key=categories.get)
        raise ValueError(
            f"class name(s) {missing} from the config are not among the categories of {source}; " f"known: {known}"
        )

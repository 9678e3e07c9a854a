"""Class lists of the two real benchmarks, in the order the TR3D configs use.

The index of a name in these tuples is its label id; `label2level` tables in the assigner are
written in the same order, so the order here must never change.
"""

from __future__ import annotations

SCANNET_CLASSES: tuple[str, ...] = (
    "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "desk", "curtain", "refrigerator", "showercurtain", "toilet", "sink", "bathtub",
    "garbagebin",
)

SUNRGBD_CLASSES: tuple[str, ...] = (
    "bed", "table", "sofa", "chair", "toilet", "desk", "dresser", "night_stand", "bookshelf",
    "bathtub",
)

# Explicit name -> class list, used by configs that name a dataset.
CLASS_LISTS: dict[str, tuple[str, ...]] = {
    "scannet": SCANNET_CLASSES,
    "sunrgbd": SUNRGBD_CLASSES,
}


def check_class_names(names: list[str] | tuple[str, ...], categories: dict[str, int], source: str) -> None:
    """Raise a clear error when configured class names are missing from a dataset's categories.

    Args:
        names: Class names the config asks for.
        categories: The `metainfo.categories` mapping of an info file (name -> index).
        source: File the categories came from, named in the error.

    Raises:
        ValueError: If a name is not among the categories.
    """
    missing = [n for n in names if n not in categories]
    if missing:
        raise ValueError(
            f"class name(s) {missing} from the config are not in metainfo.categories of {source}; "
            f"known: {sorted(categories, key=categories.get)}"
        )

"""Config loading: presets, unknown keys, type errors, round trip."""

import pytest

from sr3d_core.config import Config, ConfigError, load_config

PRESETS = ["tr3d_scannet", "tr3d_sunrgbd", "synth_sunrgbd_small", "synth_scannet_small"]


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_round_trip(name):
    cfg = load_config(name)
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert len(cfg.assigner.label2level) == cfg.num_classes


def test_unknown_key_names_key_and_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model:\n  planse: [1, 2, 3, 4]\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*model\.planse"):
        load_config(p)


def test_wrong_type_and_bad_values(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  lr: fast\n")
    with pytest.raises(ConfigError, match="train.lr"):
        load_config(p)
    p.write_text("model:\n  box_type: cylinder\n")
    with pytest.raises(ConfigError, match="box_type"):
        load_config(p)


def test_label2level_length_checked(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("assigner:\n  label2level: [0, 1]\n")
    with pytest.raises(ConfigError, match="label2level"):
        load_config(p)


def test_overrides():
    cfg = load_config("tr3d_scannet", ["train.lr=0.5", "assigner.global_nearest_check=false"])
    assert cfg.train.lr == 0.5 and cfg.assigner.global_nearest_check is False
    with pytest.raises(FileNotFoundError, match="presets"):
        load_config("no_such_preset")


def test_preset_tables_match_spec():
    from sr3d_core.assign.tr3d import LABEL2LEVEL
    from sr3d_core.data.classes import CLASS_LISTS

    for preset, ds in (("tr3d_scannet", "scannet"), ("tr3d_sunrgbd", "sunrgbd"), ("synth_scannet_small", "scannet"),
                       ("synth_sunrgbd_small", "sunrgbd")):
        cfg = load_config(preset)
        assert cfg.assigner.label2level == LABEL2LEVEL[ds]
        assert cfg.class_names == CLASS_LISTS[ds]
    # Large classes (bed, sofa) sit on the 32-cm level, chair on the 16-cm one.
    scannet = dict(zip(CLASS_LISTS["scannet"], LABEL2LEVEL["scannet"]))
    assert scannet["bed"] == 1 and scannet["sofa"] == 1 and scannet["chair"] == 0

"""Config loading: presets, unknown keys, type errors, round trip."""

import dataclasses

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
    from sr3d_core.assign.tr3d import SCANNET_LABEL2LEVEL, SUNRGBD_LABEL2LEVEL
    from sr3d_core.data.classes import CLASS_LISTS

    LABEL2LEVEL = {"scannet": SCANNET_LABEL2LEVEL, "sunrgbd": SUNRGBD_LABEL2LEVEL}
    for preset, ds in (
        ("tr3d_scannet", "scannet"),
        ("tr3d_sunrgbd", "sunrgbd"),
        ("synth_scannet_small", "scannet"),
        ("synth_sunrgbd_small", "sunrgbd"),
    ):
        cfg = load_config(preset)
        assert cfg.assigner.label2level == LABEL2LEVEL[ds]
        assert cfg.class_names == CLASS_LISTS[ds]
    # Large classes (bed, sofa) sit on the 32-cm level, chair on the 16-cm one.
    scannet = dict(zip(CLASS_LISTS["scannet"], LABEL2LEVEL["scannet"]))
    assert scannet["bed"] == 1 and scannet["sofa"] == 1 and scannet["chair"] == 0


# --------------------------------------------------------------------------------------------- plug-in sections
def write(tmp_path, name, text):
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    return p


def test_plugin_keys_checked_against_the_named_plugin(tmp_path):
    from sr3d_core.assign import SpotaConfig
    from sr3d_core.config import ConfigError

    cfg = load_config("sr3d_synth_scannet_small")
    assert isinstance(cfg.assigner, SpotaConfig) and cfg.assigner.k == 6 and cfg.loss.cls.name == "ras"
    # A TR3D key under a SPOTA section is refused by name, as is an unknown plug-in name.
    with pytest.raises(ConfigError, match=r"unknown key 'assigner.top_k'"):
        load_config("sr3d_synth_scannet_small", ["assigner.top_k=6"])
    with pytest.raises(ConfigError, match=r"'assigner.name' is 'spotta'; known: alignota, simota, spota, tr3d"):
        load_config("synth_scannet_small", ["assigner={name: spotta}"])
    with pytest.raises(ConfigError, match=r"unknown key 'loss.cls.beta'"):
        load_config("synth_scannet_small", ["loss.cls.beta=1.0"])  # focal has no beta
    # A plug-in's own range check names the field and the file.
    with pytest.raises(ConfigError, match=r"sr3d_synth_scannet_small.yaml: assigner.c_reg must be one of"):
        load_config("sr3d_synth_scannet_small", ["assigner.c_reg=giou"])


def test_base_merge_and_section_replacement(tmp_path):
    base = load_config("synth_scannet_small")
    p = write(tmp_path, "child", "base: synth_scannet_small\ntrain: {lr: 0.005}\nassigner: {name: spota, k: 4}\n")
    cfg = load_config(p)
    assert cfg.train.lr == 0.005 and cfg.train.epochs == base.train.epochs and cfg.model == base.model
    assert cfg.assigner.name == "spota" and cfg.assigner.k == 4 and cfg.name == "child"
    # Same plug-in name: keys merge (the base's label2level stays).
    p = write(tmp_path, "child2", "base: synth_scannet_small\nassigner: {top_k: 3}\n")
    assert load_config(p).assigner.label2level == base.assigner.label2level and load_config(p).assigner.top_k == 3
    write(tmp_path, "loop_a", f"base: {tmp_path / 'loop_b.yaml'}\n")
    write(tmp_path, "loop_b", f"base: {tmp_path / 'loop_a.yaml'}\n")
    with pytest.raises(ValueError, match="loops"):
        load_config(tmp_path / "loop_a.yaml")


def test_legacy_checkpoint_config_still_loads():
    from sr3d_core.config import Config

    d = load_config("synth_scannet_small").to_dict()
    d["loss"] = {
        "cls_loss": "focal",
        "focal_gamma": 2.0,
        "focal_alpha": 0.25,
        "cls_weight": 1.0,
        "box_weight": 1.0,
        "box_loss": "diou",
        "rotated_diou_quirk": True,
        "ras_beta": 1.0,
        "ras_tau": 0.01,
    }
    d["assigner"] = dict(d["assigner"], center_prior=0.25)
    cfg = Config.from_dict(d)
    assert cfg == load_config("synth_scannet_small")


def test_flat_contract_keys_of_older_configs_still_load(tmp_path):
    """Configs written before data.contract existed keep its keys directly under data: same config either way."""
    from sr3d_core.config import DEFAULT_CONTRACT

    nested = write(tmp_path, "nested", "base: toy_tiny\ndata:\n  contract: {voxel_size: 0.05, max_points: 900}\n")
    flat = write(tmp_path, "flat", "base: toy_tiny\ndata:\n  voxel_size: 0.05\n  max_points: 900\n")
    cfg = load_config(nested)
    assert cfg.contract.voxel_size == 0.05 and cfg.contract.max_points == 900 and cfg.contract.use_color
    assert dataclasses.replace(load_config(flat), name="nested") == cfg and cfg.contract is cfg.data.contract
    assert "voxel_size" not in cfg.to_dict()["data"] and cfg.to_dict()["data"]["contract"]["voxel_size"] == 0.05
    # a flat file over a nested base (and the reverse) wins as any file over its base does
    child = write(tmp_path, "child", f"base: {nested}\ndata: {{max_points: 10}}\n")
    assert load_config(child).contract.max_points == 10
    assert (
        load_config(
            write(tmp_path, "child2", f"base: {flat}\ndata: {{contract: {{max_points: 11}}}}\n")
        ).contract.max_points
        == 11
    )
    # overrides in either spelling; errors name the override
    for key in ("data.max_points", "data.contract.max_points"):
        assert load_config(nested, [f"{key}=77"]).contract.max_points == 77
        with pytest.raises(ConfigError, match=f"override '{key}=-1'"):
            load_config(nested, [f"{key}=-1"])
    with pytest.raises(ConfigError, match="data.contract.voxel_sise"):
        load_config(write(tmp_path, "typo", "base: toy_tiny\ndata: {contract: {voxel_sise: 0.1}}\n"))
    # a section that leaves keys out keeps the defaults'
    mine = load_config(write(tmp_path, "mine", "data: {class_names: [mug], contract: {max_points: 5}}\n"))
    assert mine.contract == dataclasses.replace(DEFAULT_CONTRACT, max_points=5)


def test_checkpoints_with_a_flat_contract_still_load(tmp_path):
    """A checkpoint written before data.contract existed (its config keeps the contract keys under data) loads to
    the same config and the same detections."""
    import numpy as np
    import torch

    from sr3d_core.inference import Detector, write_random_checkpoint
    from sr3d_core.model.checkpoint import config_of, load_checkpoint

    cfg = load_config("toy_tiny", ["data.max_points=700"])
    new = write_random_checkpoint(tmp_path / "new.pt", cfg, seed=2)
    ckpt = load_checkpoint(new)
    data = ckpt["config"]["data"]
    data.update(data.pop("contract"))  # the old layout
    torch.save(ckpt, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt")
    assert "contract" not in old["config"]["data"] and old["config"]["data"]["max_points"] == 700
    assert config_of(old) == cfg
    points = np.random.default_rng(0).uniform(0, 1, (2000, 6)).astype(np.float32)
    a, b = Detector.from_checkpoint(new).detect(points), Detector.from_checkpoint(tmp_path / "old.pt").detect(points)
    assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.scores, b.scores)


def test_new_configs_inherit_no_data_set_defaults(tmp_path):
    from sr3d_core.config import ConfigError

    p = write(tmp_path, "bare", "model: {box_type: aligned}\n")
    with pytest.raises(ConfigError, match="data.class_names is required"):
        load_config(p)
    p = write(tmp_path, "mine", "data: {class_names: [mug, plate]}\n")
    cfg = load_config(p)
    assert cfg.data.repeat == 1 and cfg.assigner.label2level == () and cfg.class_names == ("mug", "plate")


# --------------------------------------------------------------------------------------------- numbers and overrides
@pytest.mark.parametrize("text,want", [("1e-4", 1e-4), ("1E-4", 1e-4), ("1.0e1", 10.0), ("+2e0", 2.0), (".5e-1", 0.05)])
def test_scientific_notation_is_a_number_in_files_and_overrides(tmp_path, text, want):
    # PyYAML (YAML 1.1) reads these as strings; a float field takes them as the numbers they spell.
    p = tmp_path / "sci.yaml"
    p.write_text(
        f"base: toy_tiny\ntrain:\n  lr: {text}\n  weight_decay: {text}\n"
        f"loss:\n  cls: {{name: ras, tau: {text}}}\ndata:\n  point_range: [-1, -1, -1, {text}, 1, 1]\n"
    )
    cfg = load_config(p)
    assert cfg.train.lr == want and cfg.train.weight_decay == want and cfg.loss.cls.tau == want
    assert cfg.contract.point_range == (-1.0, -1.0, -1.0, want, 1.0, 1.0)
    assert load_config("toy_tiny", [f"train.lr={text}"]).train.lr == want


def test_non_numbers_are_refused_naming_key_file_and_override(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("base: toy_tiny\ntrain:\n  lr: 1e-4x\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == f"{p}: 'train.lr' must be a number (e.g. 0.001 or 1e-3), got '1e-4x'"
    # A bad override is blamed on the override, not on the (correct) file it was applied to.
    with pytest.raises(ConfigError) as e:
        load_config("toy_tiny", ["train.lr=fast"])
    assert str(e.value).endswith(
        "toy_tiny.yaml: override 'train.lr=fast': 'train.lr' must be a number " "(e.g. 0.001 or 1e-3), got 'fast'"
    )
    with pytest.raises(
        ConfigError,
        match=r"toy_tiny\.yaml: train\.lr must lie in \[1e-12, 10\.0\], got 100\.0 "
        r"\(with override 'train\.lr=1e2'\)$",
    ):
        load_config("toy_tiny", ["train.lr=1e2"])
    with pytest.raises(ConfigError, match=r"override 'train\.lrr=1': unknown key 'train\.lrr'"):
        load_config("toy_tiny", ["train.lrr=1"])
    # "inf" / "nan" are words in YAML (its numbers are .inf / .nan) and integers stay integers.
    with pytest.raises(ConfigError, match="'train.lr' must be a number"):
        load_config("toy_tiny", ["train.lr=nan"])
    with pytest.raises(ConfigError, match="'train.batch_size' must be an integer, got '1e3'"):
        load_config("toy_tiny", ["train.batch_size=1e3"])


def test_malformed_overrides_and_yaml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"override 'train\.lr\.x=1': 'train\.lr' is a value, not a section"):
        load_config("toy_tiny", ["train.lr.x=1"])
    with pytest.raises(ConfigError, match=r"override 'train\.lr=\[1': the value is not valid YAML: .*expected"):
        load_config("toy_tiny", ["train.lr=[1"])
    with pytest.raises(ConfigError, match=r"override 'train\.lr' must look like section\.key=value"):
        load_config("toy_tiny", ["train.lr"])
    p = tmp_path / "broken.yaml"
    p.write_text("train:\n  lr: [0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: not valid YAML: ") and "\n" not in str(e.value)

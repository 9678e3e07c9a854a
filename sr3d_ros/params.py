"""Typed, validated parameters of the detector node.

Defaults live only in ``config/node.yaml``; this module holds the types, the descriptions, which parameters
may change at run time, and the validation. It imports no ROS so that it can be unit-tested anywhere.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from sr3d_core.config import PostprocessConfig

MISSING_COLOR_MODES = ("neutral", "refuse")
QOS_PRESETS = ("sensor_data", "default", "system_default", "reliable", "best_effort")
CLASS_ID_FORMATS = ("name", "index")


class ParameterError(ValueError):
    """A parameter value is invalid; the message names the parameter."""


def _p(description: str, runtime: bool = False) -> Any:
    """Field metadata: the README description and whether the value may change at run time."""
    return field(metadata={"description": description, "runtime": runtime})


@dataclass(frozen=True)
class NodeParams:
    """Every parameter of ``sr3d_detector_node``; no defaults here (see ``config/node.yaml``)."""

    autostart: bool = _p("Configure and activate the lifecycle node on start.")
    checkpoint: str = _p(
        "Path of the model checkpoint (required); its input contract fixes voxel size, "
        "colour use, point range, max points and class names."
    )
    device: str = _p("`cuda`, `cuda:N`, `cpu` or `auto`; falls back to CPU with a warning when CUDA is " "unavailable.")
    torch_threads: int = _p(
        "CPU threads of torch; 0 = all usable cores but one (the executor and DDS need one; "
        "an oversubscribed OpenMP pool runs several times slower)."
    )
    input_qos: str = _p("QoS preset of `~/input/points`: " + ", ".join(f"`{q}`" for q in QOS_PRESETS) + ".")
    input_qos_depth: int = _p(
        "History depth of the input subscription: how many clouds DDS keeps while the node "
        "is busy (it infers on the newest; more only costs copies)."
    )
    target_frame: str = _p(
        "Gravity-aligned z-up frame to infer and publish in; empty = use the cloud's " "frame as it is."
    )
    tf_timeout_s: float = _p("How long to wait for the transform at the cloud's stamp.")
    tf_fallback_latest: bool = _p("Use the latest transform when none exists at the stamp (else skip).")
    missing_color: str = _p(
        "What a colour model does with a cloud without colour: `neutral` feeds mid-grey "
        "(0.5, 0.5, 0.5) with a one-time warning (accuracy may drop, see the README), `refuse` "
        "skips it as malformed."
    )
    score_threshold: float = _p("Minimum detection score.", runtime=True)
    nms_iou: float = _p(
        "BEV IoU threshold of the per-class NMS; lower it (e.g. 0.25) when one object shows as several "
        "overlapping boxes of its class (docs/RESULTS.md, NMS threshold).",
        runtime=True,
    )
    max_detections: int = _p("Maximum detections per frame.", runtime=True)
    class_filter: tuple[str, ...] = _p('Class names to publish; empty (`[""]`) = all classes.', runtime=True)
    class_id_format: str = _p("`name` or `index`: what `ObjectHypothesis.class_id` holds.", runtime=True)
    marker_lifetime_s: float = _p(
        "Lifetime of RViz markers (safety net; stale ids are deleted anyway); " "0 = forever.", runtime=True
    )
    marker_line_width: float = _p("Line width of the wireframe boxes in metres.", runtime=True)
    diagnostics_period_s: float = _p("Period of `/diagnostics` messages.")
    max_processing_time_ms: float = _p("Diagnostics turn WARN above this mean processing time.", runtime=True)
    max_input_age_ms: float = _p(
        "Diagnostics turn WARN (input stale) when the median age of the inputs at "
        "publication (node clock - cloud stamp) exceeds this; a clock or "
        "`use_sim_time` mismatch shows here.",
        runtime=True,
    )
    no_data_warn_s: float = _p(
        "Warn (log once and `/diagnostics`) when a publisher exists on the input topic "
        "but no cloud has arrived for this long: a QoS mismatch, or clouds too large for "
        "the DDS transport.",
        runtime=True,
    )
    no_publisher_warn_s: float = _p(
        "Warn when the input topic has had no publisher for this long after "
        "activation, and again every this many seconds while none appears, naming the "
        "PointCloud2 topics that have one (a remap that matches nothing).",
        runtime=True,
    )

    def __post_init__(self) -> None:
        _check(isinstance(self.checkpoint, str), "checkpoint", "must be a string")
        dev = self.device
        _check(
            dev in ("cpu", "cuda", "auto") or (dev.startswith("cuda:") and dev[5:].isdigit()),
            "device",
            f"must be cpu, cuda, cuda:N or auto, got {dev!r}",
        )
        _check(self.torch_threads >= 0, "torch_threads", f"must be >= 0, got {self.torch_threads}")
        _check(self.input_qos in QOS_PRESETS, "input_qos", f"must be one of {QOS_PRESETS}, got {self.input_qos!r}")
        _check(self.input_qos_depth >= 1, "input_qos_depth", f"must be >= 1, got {self.input_qos_depth}")
        _check(_finite(self.tf_timeout_s) and self.tf_timeout_s >= 0, "tf_timeout_s", "must be >= 0")
        _check(
            self.missing_color in MISSING_COLOR_MODES,
            "missing_color",
            f"must be one of {MISSING_COLOR_MODES}, got {self.missing_color!r}",
        )
        _check(_finite(self.no_data_warn_s) and self.no_data_warn_s > 0, "no_data_warn_s", "must be > 0")
        _check(_finite(self.no_publisher_warn_s) and self.no_publisher_warn_s > 0, "no_publisher_warn_s", "must be > 0")
        for name in ("score_threshold", "nms_iou"):
            _check(_finite(getattr(self, name)), name, f"must be a finite number, got {getattr(self, name)}")
        try:  # the library's own rule for these values (configs and Detector.set_postprocess use it too)
            PostprocessConfig(
                score_threshold=self.score_threshold, nms_iou=self.nms_iou, max_detections=self.max_detections
            )
        except ValueError as e:
            raise ParameterError(str(e).replace("postprocess.", "", 1)) from None
        _check(
            self.class_id_format in CLASS_ID_FORMATS,
            "class_id_format",
            f"must be one of {CLASS_ID_FORMATS}, got {self.class_id_format!r}",
        )
        _check(_finite(self.marker_lifetime_s) and self.marker_lifetime_s >= 0, "marker_lifetime_s", "must be >= 0")
        _check(_finite(self.marker_line_width) and self.marker_line_width > 0, "marker_line_width", "must be > 0")
        _check(
            _finite(self.diagnostics_period_s) and self.diagnostics_period_s > 0, "diagnostics_period_s", "must be > 0"
        )
        _check(
            _finite(self.max_processing_time_ms) and self.max_processing_time_ms > 0,
            "max_processing_time_ms",
            "must be > 0",
        )
        _check(_finite(self.max_input_age_ms) and self.max_input_age_ms > 0, "max_input_age_ms", "must be > 0")

    @property
    def classes(self) -> tuple[str, ...]:
        """The class filter without the empty placeholder (ROS YAML cannot type an empty list)."""
        return tuple(c for c in self.class_filter if c)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "NodeParams":
        """Build from a ``name -> value`` mapping, coercing ROS types (ints for floats, lists for tuples).

        Raises:
            ParameterError: a parameter is missing, unknown or invalid.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        missing = names - set(values)
        if missing:
            raise ParameterError(f"missing parameters: {sorted(missing)}")
        unknown = set(values) - names
        if unknown:
            raise ParameterError(f"unknown parameters: {sorted(unknown)}")
        return cls(**{f.name: _coerce(f.name, f.type, values[f.name]) for f in dataclasses.fields(cls)})

    def replace(self, **changes: Any) -> "NodeParams":
        """Return a validated copy with ``changes`` applied (coerced like ``from_mapping``)."""
        types = {f.name: f.type for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k: _coerce(k, types[k], v) for k, v in changes.items()})


def runtime_parameters() -> frozenset[str]:
    """Names of the parameters that may change while the node runs."""
    return frozenset(f.name for f in dataclasses.fields(NodeParams) if f.metadata["runtime"])


def default_params_path() -> Path:
    """Locate ``config/node.yaml``: the installed package share first, then the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        shared = Path(get_package_share_directory("sr3d_ros")) / "config" / "node.yaml"
        if shared.is_file():
            return shared
    except Exception:  # noqa: BLE001 - not installed through colcon / no ament index
        pass
    return Path(__file__).resolve().parents[1] / "config" / "node.yaml"


def load_defaults(path: Path | None = None) -> dict[str, Any]:
    """Read the ``ros__parameters`` block of a ROS 2 params file (the ``/**`` or any node key)."""
    path = path or default_params_path()
    doc = yaml.safe_load(Path(path).read_text())
    for block in doc.values():
        if isinstance(block, dict) and "ros__parameters" in block:
            return dict(block["ros__parameters"])
    raise ParameterError(f"{path}: no 'ros__parameters' block")


def markdown_table(defaults: Mapping[str, Any]) -> str:
    """The README parameter table, generated from the YAML defaults and the field descriptions."""
    rows = ["| Parameter | Type | Default | Runtime | Description |", "|---|---|---|---|---|"]
    for f in dataclasses.fields(NodeParams):
        value = defaults[f.name]
        shown = json.dumps(value)  # YAML flow syntax for these types
        kind = {"bool": "bool", "str": "string", "int": "int", "float": "double"}.get(f.type, "string[]")
        rows.append(
            f"| `{f.name}` | {kind} | `{shown}` | {'yes' if f.metadata['runtime'] else 'no'} "
            f"| {f.metadata['description']} |"
        )
    return "\n".join(rows) + "\n"


def _finite(x: float) -> bool:
    """True for a finite int or float (ROS doubles may be NaN or inf)."""
    return isinstance(x, (int, float)) and math.isfinite(x)


def _check(ok: bool, name: str, reason: str) -> None:
    """Raise a ``ParameterError`` naming the parameter unless ``ok``."""
    if not ok:
        raise ParameterError(f"parameter '{name}' {reason}")


#: What each field type takes, as the messages say it.
_KINDS = {"bool": "a bool", "int": "an integer", "float": "a number (double)", "str": "a string"}
_LIST_KIND = "a list of strings"


def _coerce(name: str, type_name: str, value: Any) -> Any:
    """Coerce one value to the field type; ``type_name`` is the string annotation (postponed evaluation)."""
    kind = _KINDS.get(type_name, _LIST_KIND)
    if type_name == "bool":
        _check(isinstance(value, bool), name, f"must be {kind}, got {value!r}")
        return value
    if type_name == "int":
        _check(isinstance(value, int) and not isinstance(value, bool), name, f"must be {kind}, got {value!r}")
        return int(value)
    if type_name == "float":
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), name, f"must be {kind}, got {value!r}")
        return float(value)
    if type_name == "str":
        _check(isinstance(value, str), name, f"must be {kind}, got {value!r}")
        return value
    _check(
        isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
        name,
        f"must be {kind}, got {value!r}",
    )
    return tuple(value)


# ---------------------------------------------------------------------------------------------- the command line
# rcl merges the parameter sources of a node (every --params-file, then every -p) and keeps the type it saw first: a
# later value of another type is dropped without a word, so `--params-file config/node.yaml -p max_detections:=5.0`
# runs with 100. The node therefore reads its own command line and refuses such values. The typing below is rcl's
# (rcl_yaml_param_parser), not PyYAML's: `1e-3` is a double and `1_000` a string there.

_TRUE = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"}
_FALSE = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"}
_TAKES_VALUE = {"-r", "--remap", "-e", "--enclave", "--log-level", "--log-config-file", "--log-file-name"}


@dataclass(frozen=True)
class GivenValue:
    """One value of a parameter as the command line gives it.

    Attributes:
        name: the parameter.
        kind: ``bool``, ``int``, ``float``, ``str``, or ``list[<kind>]`` (rcl's typing).
        text: the value as written.
        where: ``-p name:=value`` or the params file's path.
    """

    name: str
    kind: str
    text: str
    where: str


def ros_scalar_kind(text: str, quoted: bool = False) -> str:
    """The type rcl gives a YAML scalar: ``bool``, ``int``, ``float`` or ``str``."""
    if quoted:
        return "str"
    t = text.strip()
    if t in _TRUE or t in _FALSE:
        return "bool"
    if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", t):  # C's strtol, base 0
        return "int"
    if t.lower().lstrip("+-") in (".inf", ".nan"):
        return "float"
    if "_" not in t:  # Python's float() takes digit separators, C's strtod does not
        try:
            float(t)
            return "float"
        except ValueError:
            pass
    return "str"


def _value_kind(text: str) -> str:
    """The type rcl gives the value of ``-p name:=value``."""
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return "str"
    if t.startswith("[") and t.endswith("]"):
        items = [i.strip() for i in t[1:-1].split(",") if i.strip()]
        kinds = {_value_kind(i) for i in items}
        return f"list[{kinds.pop()}]" if len(kinds) == 1 else "list[str]"
    return ros_scalar_kind(t)


def _node_key_matches(key: str, node_fqn: str) -> bool:
    """Whether a params-file node key (``/**``, ``name``, ``/ns/name``, ``/**/name``, ``/*``) applies to the node."""
    pattern = "".join(
        "(/[^/]+)*" if t == "**" else "/[^/]+" if t == "*" else "/" + re.escape(t)
        for t in key.strip("/").split("/")
        if t
    )
    return re.fullmatch(pattern, node_fqn) is not None


def _file_values(path: str, node_fqn: str) -> Iterator[GivenValue]:
    """Every value of a params file that applies to the node, typed as rcl types it."""
    import yaml

    try:
        root = yaml.compose(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return  # rcl itself refuses an unreadable or invalid file, naming it

    def walk(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        if not isinstance(node, yaml.MappingNode):
            return
        for k, v in node.value:
            if k.value == "ros__parameters":
                yield prefix, v
            else:
                yield from walk(v, f"{prefix}/{k.value.strip('/')}")

    for node_key, params in walk(root, ""):
        if not isinstance(params, yaml.MappingNode) or not _node_key_matches(node_key, node_fqn):
            continue
        for k, v in params.value:
            if isinstance(v, yaml.ScalarNode):
                kind = ros_scalar_kind(v.value, quoted=v.style in ("'", '"'))
            elif isinstance(v, yaml.SequenceNode):
                kinds = {
                    ros_scalar_kind(i.value, i.style in ("'", '"')) for i in v.value if isinstance(i, yaml.ScalarNode)
                }
                kind = f"list[{kinds.pop()}]" if len(kinds) == 1 else "list[str]"
            else:
                continue  # a parameter namespace (nested names): none of ours
            text = (
                v.value
                if isinstance(v, yaml.ScalarNode)
                else "[" + ", ".join(getattr(i, "value", "?") for i in v.value) + "]"
            )
            yield GivenValue(k.value, kind, text, path)


def command_line_values(argv: Sequence[str], node_name: str, node_fqn: str) -> list[GivenValue]:
    """The parameter values that the ROS arguments of ``argv`` give this node, in order.

    Reads every ``--ros-args`` section: ``--params-file FILE`` (node keys matched against ``node_fqn``, wildcards
    included) and ``-p`` / ``--param [node:]name:=value``.
    """
    out: list[GivenValue] = []
    in_ros, i = False, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--ros-args":
            in_ros = True
        elif arg == "--":
            in_ros = False
        elif in_ros and arg in ("-p", "--param") and i + 1 < len(argv):
            i += 1
            rule = argv[i]
            lhs, sep, value = rule.partition(":=")
            node, _, name = lhs.rpartition(":")
            if sep and (not node or node in (node_name, node_fqn)):
                out.append(GivenValue(name, _value_kind(value), value, f"{arg} {rule}"))
        elif in_ros and arg == "--params-file" and i + 1 < len(argv):
            i += 1
            out.extend(_file_values(argv[i], node_fqn))
        elif in_ros and arg in _TAKES_VALUE:
            i += 1
        i += 1
    return out


def _accepts(type_name: str, kind: str) -> bool:
    """Whether a field of ``type_name`` takes a value rcl typed ``kind`` (doubles take integers too)."""
    if type_name == "float":
        return kind in ("int", "float")
    if type_name in _KINDS:
        return kind == type_name
    return kind == "list[str]"


def check_command_line(argv: Sequence[str], node_name: str, node_fqn: str) -> None:
    """Refuse a parameter value of the wrong type anywhere on the command line (see the note above).

    Raises:
        ParameterError: naming each such parameter, the type it takes, the value given and where.
    """
    types = {f.name: f.type for f in dataclasses.fields(NodeParams)}
    bad = [
        f"parameter '{v.name}' must be {_KINDS.get(types[v.name], _LIST_KIND)}, got {v.text} ({v.where})"
        for v in command_line_values(argv, node_name, node_fqn)
        if v.name in types and not _accepts(types[v.name], v.kind)
    ]
    if bad:
        raise ParameterError("; ".join(bad))


def expanded_remaps(argv: Sequence[str], home: str | None = None) -> list[str]:
    """Warnings for remap rules that start with the home directory: an unquoted ``~`` the shell expanded, so the
    rule matches no topic of the node (``home``: default the user's)."""
    home = (os.path.expanduser("~") if home is None else home).rstrip("/")
    if not home or home == "~":
        return []
    warnings = []
    for i, arg in enumerate(argv[:-1]):
        rule = argv[i + 1]
        if arg in ("-r", "--remap") and rule.startswith(home + "/") and ":=" in rule:
            fixed = "~" + rule[len(home) :]
            warnings.append(
                f"remap rule '{rule}' starts with your home directory {home}: the shell expanded an "
                f"unquoted '~', so the rule matches no topic of this node. Quote it: -r '{fixed}'"
            )
    return warnings


def input_qos(preset: str, depth: int) -> Any:
    """The input subscription's ``rclpy.qos.QoSProfile`` for a preset of ``QOS_PRESETS`` (``sensor_data`` = best
    effort, volatile); keep-last ``depth``. Imports rclpy when called, so the rest of this module needs no ROS."""
    from rclpy.qos import (
        DurabilityPolicy,
        HistoryPolicy,
        QoSProfile,
        ReliabilityPolicy,
        qos_profile_sensor_data,
        qos_profile_system_default,
    )

    base = {"sensor_data": qos_profile_sensor_data, "system_default": qos_profile_system_default}.get(preset)
    if base is not None:
        return QoSProfile(
            depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=base.reliability, durability=base.durability
        )
    reliability = ReliabilityPolicy.BEST_EFFORT if preset == "best_effort" else ReliabilityPolicy.RELIABLE
    return QoSProfile(
        depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=reliability, durability=DurabilityPolicy.VOLATILE
    )


if __name__ == "__main__":  # regenerate the README parameter table
    print(markdown_table(load_defaults()), end="")

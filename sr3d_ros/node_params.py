"""The detector node's parameters: declared from ``config/node.yaml``, checked on every change, and the model they
load.

``NodeParameters`` is owned by the node. It declares every parameter (defaults from the one YAML file, types and
ranges from ``sr3d_ros.params.NodeParams``), refuses a wrong value naming the parameter, loads the checkpoint at
configure and exposes its input contract as read-only ``model.*`` parameters, and applies runtime changes to the
loaded model; the node is told of each applied change (``on_change``) to update what it owns.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.parameter import Parameter

from sr3d_ros.params import (
    NodeParams,
    ParameterError,
    check_command_line,
    default_params_path,
    expanded_remaps,
    load_defaults,
    runtime_parameters,
)

if TYPE_CHECKING:  # torch loads with the model at configure, not at import
    from sr3d_core.inference import Detector

#: Called with (old, new) parameters after a runtime change was applied to the model.
ChangeCallback = Callable[[NodeParams, NodeParams], None]


class NodeParameters:
    """The node's parameters and the model they name.

    Args:
        node: the rclpy ``Node`` or ``LifecycleNode`` that declares the parameters.
        on_change: called (on the parameter service's thread) after a runtime change was applied while configured.

    Attributes:
        current: the parameters in force while configured; None while unconfigured.
        detector: the loaded model while configured; None while unconfigured.
        class_names: the loaded model's class names (kept after cleanup, as the node did).
    """

    def __init__(self, node: Any, on_change: ChangeCallback) -> None:
        self._node = node
        self._on_change = on_change
        self.current: NodeParams | None = None
        self.detector: Detector | None = None
        self.class_names: tuple[str, ...] = ()
        self._model_params: list[str] = []
        self._defaults_path = default_params_path()

    def declare(self, argv: list[str] | None = None) -> None:
        """Declare every parameter with its default from config/node.yaml (the one home of defaults).

        Args:
            argv: the process's command line (``main`` passes it): a value of the wrong type on it is refused
                (rcl would drop it without a word when another source set the parameter), and a remap rule that
                the shell tilde-expanded is reported.

        Raises:
            ParameterError: a parameter value of the wrong type or out of range (the message names it).
        """
        node = self._node
        if argv is not None:
            check_command_line(argv, node.get_name(), node.get_fully_qualified_name())
            for warning in expanded_remaps(argv):
                node.get_logger().warning(warning)
        runtime = runtime_parameters()
        for name, value in load_defaults(self._defaults_path).items():
            desc = NodeParams.__dataclass_fields__[name].metadata["description"]
            # Dynamically typed, so that a value of the wrong type reaches the set-parameters callback, which refuses
            # it naming the parameter, the type and the value (rclpy's own type check names none of them); doubles
            # take integers too (`-p score_threshold:=1`).
            node.declare_parameter(
                name, value, ParameterDescriptor(description=desc, read_only=name not in runtime, dynamic_typing=True)
            )
        self.read()  # an override of the wrong type or out of range: refused at start, not at configure
        node.add_on_set_parameters_callback(self._on_set_parameters)

    def read(self) -> NodeParams:
        """The declared values, checked.

        Raises:
            ParameterError: a value of the wrong type or out of range (the message names it).
        """
        names = [f for f in NodeParams.__dataclass_fields__]
        return NodeParams.from_mapping({n: self._node.get_parameter(n).value for n in names})

    def load_model(self) -> tuple[str, int]:
        """Validate the parameters, set the process up for inference and load the checkpoint.

        On success ``current``, ``detector`` and ``class_names`` are set, the post-processing parameters applied
        and the ``model.*`` parameters declared.

        Returns:
            The device the model runs on and the number of CPU threads torch uses.

        Raises:
            ParameterError: a parameter is invalid (the message names it).
            RuntimeError: the checkpoint cannot be loaded (the message names the path).
        """
        p = self.read()
        log = self._node.get_logger()
        if not p.checkpoint:
            raise ParameterError("parameter 'checkpoint' is empty: pass -p checkpoint:=/path/to/model.pt")
        if not Path(p.checkpoint).is_file():
            raise ParameterError(f"parameter 'checkpoint': no such file {p.checkpoint}")
        from sr3d_core.inference import Detector  # torch loads with the model, not at import
        from sr3d_core.runtime import choose_device, keep_freed_memory, set_torch_threads

        chosen, warning = choose_device(p.device)
        device = str(chosen)
        if warning:
            log.warning(warning)
        threads = set_torch_threads(p.torch_threads)
        keep_freed_memory()  # frames reuse the heap instead of page-faulting fresh memory in
        try:
            detector = Detector.from_checkpoint(p.checkpoint, device)
        except Exception as err:  # noqa: BLE001 - any load failure becomes one clear message
            raise RuntimeError(f"cannot load checkpoint {p.checkpoint} on {device}: {err}") from err
        self.detector = detector
        self.class_names = tuple(detector.class_names)
        self._check_classes(p.classes)
        self.current = p
        self._apply_postprocess(p)
        self._declare_model_parameters(detector)
        return device, threads

    def release_model(self) -> None:
        """Undeclare the ``model.*`` parameters and free the model (back to unconfigured)."""
        for name in self._model_params:
            self._node.undeclare_parameter(name)
        self._model_params = []
        self.detector = None
        self.current = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()  # give VRAM back while unconfigured
        except ImportError:  # pragma: no cover
            pass

    def _declare_model_parameters(self, detector: Detector) -> None:
        """Expose the checkpoint's input contract as read-only ``model.*`` parameters (never overridable)."""
        c = detector.contract
        values = {
            "model.class_names": list(self.class_names),
            "model.voxel_size": float(c.voxel_size),
            "model.use_color": bool(c.use_color),
            "model.max_points": int(c.max_points or 0),
            "model.point_range": [float(v) for v in c.point_range] if c.point_range else [0.0] * 6,
            "model.quantize_dtype": str(c.quantize_dtype),
        }
        for name, value in values.items():
            # Not rclpy read_only (those can never be undeclared, which cleanup needs): the set-parameters
            # callback refuses every change instead.
            self._node.declare_parameter(
                name,
                value,
                ParameterDescriptor(description="from the checkpoint's input contract (0 / zeros = none); read-only"),
                ignore_override=True,
            )
            self._model_params.append(name)

    def _check_classes(self, classes: tuple[str, ...]) -> None:
        unknown = [c for c in classes if c not in self.class_names]
        if unknown:
            raise ParameterError(
                f"parameter 'class_filter': unknown classes {unknown}; the model has " f"{list(self.class_names)}"
            )

    def _apply_postprocess(self, p: NodeParams) -> None:
        for name in ("score_threshold", "nms_iou", "max_detections"):
            if hasattr(self.detector, name):
                setattr(self.detector, name, getattr(p, name))

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        """Validate and apply runtime changes; read-only ones are refused by rclpy before this."""
        fixed = [p.name for p in params if p.name in self._model_params]
        if fixed:
            return SetParametersResult(successful=False, reason=f"{fixed} come from the checkpoint (read-only)")
        ours = {p.name: p.value for p in params if p.name in NodeParams.__dataclass_fields__}
        if not ours:
            return SetParametersResult(successful=True)
        try:
            if self.current is None:  # unconfigured: validate now, configure will read the values
                self.read().replace(**ours)
                return SetParametersResult(successful=True)
            new = self.current.replace(**ours)
            self._check_classes(new.classes)
        except (ParameterError, TypeError, ValueError) as err:
            self._keep_descriptor_types(params)
            return SetParametersResult(successful=False, reason=str(err))
        old, self.current = self.current, new
        self._apply_postprocess(new)
        self._on_change(old, new)
        self._node.get_logger().info(f"parameters changed: {ours}")
        return SetParametersResult(successful=True)

    def _keep_descriptor_types(self, params: list[Parameter]) -> None:
        """Undo what rclpy did before calling us: a dynamically typed descriptor takes the type of every value
        offered, also of one the callback then refuses (``ros2 param describe`` would show it)."""
        node = self._node
        for param in params:
            if param.name in NodeParams.__dataclass_fields__ and node.has_parameter(param.name):
                current = node.get_parameter(param.name)
                node.describe_parameter(param.name).type = current.type_.value

"""The module registry: the single declaration of every module type.

The graph validator, the network compiler, the model file, the CLI and the designer's palette and
properties panel all read these declarations; nothing else lists module types.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Shape = tuple[int, ...]


class ShapeError(ValueError):
    """A module cannot accept the shapes it receives; the message says what it received."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a module type.

    kind is one of: "int", "float", "bool", "choice", "size" (an int, or one int per spatial axis),
    "padding" (a size, or "same"), "shape" (a list of positive ints).
    default may be a callable taking the other resolved params (e.g. a pool's stride = its size);
    None with required=True means the user must give it.
    """

    name: str
    kind: str
    default: Any = None
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False
    applies: Callable[[dict], bool] | None = None
    """Whether the parameter means anything given the other resolved params (an Activation's
    alpha only for leaky_relu and elu); the Properties panel hides it otherwise."""

    def default_for(self, resolved: dict) -> Any:
        return self.default(resolved) if callable(self.default) else self.default


@dataclass
class OpSpec:
    """Everything an op factory needs to build an executable op for one node."""

    node_id: str
    params: dict
    in_shapes: list[Shape]
    out_shape: Shape
    backend: str = "cpu"
    rng: np.random.Generator | None = None
    dtype: type = np.float32


class Op:
    """An executable node: forward and backward over preallocated buffers.

    params/grads/state map array names ("weight", "bias", "running_mean") to arrays that the
    network owns; the op writes grads (overwriting, not accumulating) in backward.
    """

    def __init__(self, spec: OpSpec):
        self.spec = spec
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.needs_input_grad = [True] * len(spec.in_shapes)
        self.batch = 0

    def allocate(self, batch: int) -> None:
        """(Re)allocate per-batch buffers; called when the batch size changes."""
        self.batch = batch

    def forward(self, inputs: list[np.ndarray], training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> list[np.ndarray | None]:
        """Gradients with respect to each input (None where the input needs none)."""
        raise NotImplementedError


def _no_arrays(params: dict, in_shapes: list[Shape]) -> dict[str, Shape]:
    return {}


def _zero_flops(params: dict, in_shapes: list[Shape], out_shape: Shape) -> int:
    return 0


@dataclass(frozen=True)
class ModuleType:
    """Declaration of one module type (see DESIGN.md 3.1)."""

    name: str
    category: str
    summary: str
    params: tuple[ParamSpec, ...]
    infer: Callable[[dict, list[Shape]], Shape]
    op: Callable[[OpSpec], Op] | None
    min_inputs: int = 1
    max_inputs: int | None = 1
    arrays: Callable[[dict, list[Shape]], dict[str, Shape]] = _no_arrays
    state: Callable[[dict, list[Shape]], dict[str, Shape]] = _no_arrays
    init: Callable[[dict, list[Shape], np.random.Generator], dict[str, np.ndarray]] | None = None
    flops: Callable[[dict, list[Shape], Shape], int] = _zero_flops
    label: Callable[[dict], str] = field(default=lambda params: "")
    spatial_dims: int | None = None
    kernel_geometry: Callable[[dict], tuple[Shape, Shape, Shape, Shape] | None] | None = None
    """For conv/pool types: (kernel, stride, padding_begin, dilation) per spatial axis, which the
    receptive-field arithmetic reads."""

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)


REGISTRY: dict[str, ModuleType] = {}


def register(module_type: ModuleType) -> ModuleType:
    if module_type.name in REGISTRY:
        raise ValueError(f"module type {module_type.name!r} is already registered")
    REGISTRY[module_type.name] = module_type
    return module_type


def module_type(name: str) -> ModuleType:
    return REGISTRY[name]


CATEGORY_ORDER = ("Input/Output", "Convolution", "Pooling", "Activation", "Normalization", "Dense",
                  "Structure")


def categories() -> dict[str, list[ModuleType]]:
    """Module types grouped by category, in palette order."""
    groups: dict[str, list[ModuleType]] = {name: [] for name in CATEGORY_ORDER}
    for mt in REGISTRY.values():
        groups.setdefault(mt.category, []).append(mt)
    return {name: types for name, types in groups.items() if types}


class ParamError(ValueError):
    """One or more parameters of a node are invalid; .problems lists each one."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _bound_text(bound: float) -> str:
    return f"{int(bound):,}" if float(bound).is_integer() and abs(bound) >= 1e4 else f"{bound:g}"


def _check_number(spec: ParamSpec, value: Any) -> str | None:
    if spec.minimum is not None and value < spec.minimum:
        return (f"{spec.name} must be >= {_bound_text(spec.minimum)}. "
                f"Received: {spec.name}={value!r}")
    if spec.maximum is not None and value > spec.maximum:
        return (f"{spec.name} must be <= {_bound_text(spec.maximum)}. "
                f"Received: {spec.name}={value!r}")
    return None


def _resolve_size(spec: ParamSpec, value: Any,
                  ndim: int) -> tuple[tuple[int, ...] | None, str | None]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values or not all(_is_int(v) for v in values):
        extra = ' or "same"' if spec.kind == "padding" else ""
        return None, (f"{spec.name} must be an int or a list of {ndim} ints{extra}. "
                      f"Received: {spec.name}={value!r}")
    if len(values) == 1:
        values = values * ndim
    if len(values) != ndim:
        return None, (f"{spec.name} needs {ndim} values, one per spatial axis. "
                      f"Received: {spec.name}={value!r}")
    for v in values:
        problem = _check_number(spec, v)
        if problem:
            return None, problem
    return tuple(int(v) for v in values), None


def resolve_param(spec: ParamSpec, value: Any, ndim: int | None) -> tuple[Any, str | None]:
    """Check one user-given value against its spec; return (normalised value, problem)."""
    kind = spec.kind
    if kind == "int":
        if not _is_int(value):
            return None, f"{spec.name} must be an integer. Received: {spec.name}={value!r}"
        return int(value), _check_number(spec, value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not np.isfinite(value):
            return None, f"{spec.name} must be a number. Received: {spec.name}={value!r}"
        return float(value), _check_number(spec, value)
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            return None, f"{spec.name} must be true or false. Received: {spec.name}={value!r}"
        return bool(value), None
    if kind == "choice":
        if value not in spec.choices:
            return None, (f"{spec.name} must be one of {', '.join(spec.choices)}. "
                          f"Received: {spec.name}={value!r}")
        return value, None
    if kind == "padding" and value == "same":
        return "same", None
    if kind in ("size", "padding"):
        return _resolve_size(spec, value, ndim or 1)
    if kind == "shape":
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 4 \
                or not all(_is_int(v) and v > 0 for v in value):
            return None, ("shape must be a list of 1 to 4 positive ints ([C], [C, L], [C, H, W] "
                          f"or [C, D, H, W]). Received: shape={value!r}")
        return tuple(int(v) for v in value), None
    raise ValueError(f"unknown parameter kind {kind!r}")


def resolve_params(mt: ModuleType, given: dict) -> dict:
    """Fill defaults and normalise a node's params; raise ParamError listing every problem."""
    problems = [f"unknown parameter {name!r} ({mt.name} takes "
                f"{', '.join(s.name for s in mt.params) or 'no parameters'})"
                for name in given if name not in {s.name for s in mt.params}]
    resolved: dict = {}
    for spec in mt.params:
        if spec.name in given:
            value, problem = resolve_param(spec, given[spec.name], mt.spatial_dims)
            if problem:
                problems.append(problem)
                continue
        elif spec.required:
            problems.append(f"{spec.name} is required")
            continue
        else:
            try:
                default = spec.default_for(resolved)
            except KeyError:  # derived from a parameter that is itself invalid (reported)
                continue
            value, _ = resolve_param(spec, default, mt.spatial_dims) if default is not None \
                else (None, None)
        resolved[spec.name] = value
    if problems:
        raise ParamError(problems)
    return resolved

"""FLOPs and parameter counts of a detector, as MMDetection v2's ``get_flops.py`` reports them.

v2 counted with mmcv's ``get_model_complexity_info``, whose "FLOPs" are really
multiply-accumulates: one per weight use in a convolution or linear layer, plus one per output
element for a conv bias (a linear layer's bias counts once per output feature, not per row),
an activation of the ReLU family, pooling (per *input* element) and upsampling, and one (two
with an affine transform) per element of a batch/group/layer norm. Everything else (residual
adds, sigmoid, RoIAlign, NMS) counts zero. We count the same things at the ATen level with
PyTorch's own :class:`torch.utils.flop_counter.FlopCounterMode`, given formulas that return
those numbers, so v2's published numbers are met (RetinaNet R50-FPN at 1280×800: we count
239,316,500,520, printed ``239.32 GFLOPs`` as in v2's docs; 37.74 M trainable parameters).
Deformable convolutions, which mmcv left out, are counted like ordinary ones.

One known difference: mmcv hooked *modules* (``nn.ReLU``, ``nn.MaxPool2d``), so functional
calls such as ``F.relu`` and ``F.max_pool2d`` counted zero there, while here the ATen op counts
wherever it comes from.
Faster R-CNN R50-FPN at 1280×800 thus gets the RPN head's ``F.relu`` (256 x the 85,260 pixels
of P2-P6) and the FPN's ``F.max_pool2d`` for P6 (one per P5 element, 256,000) on top of mmcv's
count: 207,087,223,109 here (``207.09 GFLOPs``), 22,082,560 more than mmcv's hooks would
give (207,065,140,549, ``207.07 GFLOPs``).

The model is built and run on the ``meta`` device (shapes only: no arithmetic, no memory), so a
full-size model takes well under a second. A forward pass that needs real values falls back to
a CPU run on random input, which counts the same.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from detforge.utils.device import model_device

__all__ = [
    "ComplexityInfo",
    "count_complexity",
    "flops_to_string",
    "get_model_complexity_info",
    "padded_input_shape",
    "params_to_string",
]

_LOG = logging.getLogger("detforge")
aten = torch.ops.aten
Shape = Sequence[int]


@dataclass(frozen=True)
class ComplexityInfo:
    """What :func:`get_model_complexity_info` measured.

    Attributes:
        flops: Multiply-accumulates plus the element-wise ops mmcv counts (v2's "FLOPs").
        params: Trainable parameters (``requires_grad``), the number v2 prints.
        total_params: All parameters, frozen ones included.
        input_shape: ``(C, H, W)`` of the dummy input.
        by_operator: FLOPs per ATen operator name.
        by_module: FLOPs per top-level child of the model (``backbone``, ``neck``, ...).
        uncounted_ops: Non-ATen operators that ran but count zero (``torchvision.roi_align``).
        device: ``'meta'`` or ``'cpu'``: where the forward pass ran.
    """

    flops: int
    params: int
    total_params: int
    input_shape: tuple[int, ...]
    by_operator: dict[str, int] = field(default_factory=dict)
    by_module: dict[str, int] = field(default_factory=dict)
    uncounted_ops: tuple[str, ...] = ()
    device: str = "meta"


# ------------------------------------------------------------------------- formulas (shapes)
def _numel(shape: Shape | None) -> int:
    return prod(shape) if shape is not None else 0


def _conv(
    x_shape: Shape, w_shape: Shape, bias: Shape | None, *args: Any, out_shape: Shape, **kwargs: Any
) -> int:
    transposed = bool(args[3]) if len(args) > 3 else False
    # Each input (transposed) or output element uses C_in/groups * k (or C_out/groups * k) weights.
    macs = _numel(x_shape if transposed else out_shape) * prod(w_shape[1:])
    return macs + (_numel(out_shape) if bias is not None else 0)


def _mm(a_shape: Shape, b_shape: Shape, *args: Any, out_shape: Shape, **kwargs: Any) -> int:
    return _numel(out_shape) * a_shape[-1]


def _addmm(
    bias: Shape, a_shape: Shape, b_shape: Shape, *args: Any, out_shape: Shape, **kwargs: Any
) -> int:
    # nn.Linear: mmcv adds the bias once per output feature, not once per row
    return _numel(out_shape) * a_shape[-1] + out_shape[-1]


def _baddbmm(
    bias: Shape, a_shape: Shape, b_shape: Shape, *args: Any, out_shape: Shape, **kwargs: Any
) -> int:
    return _numel(out_shape) * (a_shape[-1] + 1)


def _norm(x_shape: Shape, weight: Shape | None, *args: Any, **kwargs: Any) -> int:
    return _numel(x_shape) * (2 if weight is not None else 1)


def _layer_norm(
    x_shape: Shape, normalized: Any, weight: Shape | None, *args: Any, **kw: Any
) -> int:
    return _numel(x_shape) * (2 if weight is not None else 1)


def _per_input(x_shape: Shape, *args: Any, **kwargs: Any) -> int:
    return _numel(x_shape)


def _per_output(*args: Any, out_shape: Shape, **kwargs: Any) -> int:
    return _numel(out_shape)


def _deform_conv(
    x_shape: Shape, w_shape: Shape, *args: Any, out_shape: Shape, **kwargs: Any
) -> int:
    return _numel(out_shape) * (prod(w_shape[1:]) + 1)


def _formulas() -> dict[Any, Callable[..., int]]:
    table: dict[Any, Callable[..., int]] = {
        aten.convolution: _conv,
        aten.mm: _mm,
        aten.bmm: _mm,
        aten.addmm: _addmm,
        aten.baddbmm: _baddbmm,
        aten.native_batch_norm: _norm,
        aten._native_batch_norm_legit: _norm,
        aten._native_batch_norm_legit_no_training: _norm,
        aten.native_group_norm: _norm,
        aten.native_layer_norm: _layer_norm,
    }
    for name in (
        "relu",
        "relu_",
        "leaky_relu",
        "leaky_relu_",
        "elu",
        "elu_",
        "hardtanh",
        "hardtanh_",
        "_prelu_kernel",
        "upsample_nearest2d",
        "upsample_bilinear2d",
        "_upsample_nearest_exact2d",
    ):
        table[getattr(aten, name)] = _per_output
    for name in (
        "max_pool2d",
        "max_pool2d_with_indices",
        "avg_pool2d",
        "_adaptive_avg_pool2d",
        "adaptive_max_pool2d",
        "max_pool1d",
        "avg_pool1d",
        "max_pool3d_with_indices",
        "avg_pool3d",
    ):
        table[getattr(aten, name)] = _per_input
    deform = getattr(getattr(torch.ops, "torchvision", None), "deform_conv2d", None)
    if deform is not None:
        with contextlib.suppress(AttributeError, RuntimeError):
            table[deform] = _deform_conv
    return table


class _OpRecorder(TorchDispatchMode):
    """Records the operator packets that run (to name the ones that count zero)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[Any] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.seen.add(func._overloadpacket)
        return func(*args, **(kwargs or {}))


# ---------------------------------------------------------------------------------- counting
def _allow_data_dependent_meta() -> contextlib.AbstractContextManager[Any]:
    """On ``meta``, let ``nonzero`` assume every element is non-zero (RoI level mapping)."""
    try:
        from torch.fx.experimental import _config as fx_config

        patch: Any = getattr(fx_config, "patch")  # noqa: B009 - set at runtime by install_config_module
        return patch(meta_nonzero_assume_all_nonzero=True)
    except (ImportError, AttributeError, KeyError):
        return contextlib.nullcontext()


def _count(
    model: nn.Module, forward: Callable[[torch.Tensor], Any], x: torch.Tensor
) -> tuple[FlopCounterMode, _OpRecorder, dict[str, int]]:
    counter = FlopCounterMode(display=False, custom_mapping=_formulas())
    recorder = _OpRecorder()
    # FLOPs per top-level child: the counter's running total, read around the outermost call of
    # any module inside that child (roi_head's sub-modules are called, roi_head itself is not).
    owner: dict[nn.Module, str] = {}
    for name, child in model.named_children():
        for module in child.modules():
            owner.setdefault(module, name)
    active: dict[str, int] = {}
    start: dict[str, int] = {}
    by_module: dict[str, int] = {}

    def pre(module: nn.Module, args: Any) -> None:
        name = owner[module]
        if not active.get(name):
            start[name] = counter.get_total_flops()
        active[name] = active.get(name, 0) + 1

    def post(module: nn.Module, args: Any, output: Any) -> None:
        name = owner[module]
        active[name] -= 1
        if not active[name]:
            by_module[name] = by_module.get(name, 0) + counter.get_total_flops() - start[name]

    handles = [m.register_forward_pre_hook(pre) for m in owner]
    handles += [m.register_forward_hook(post) for m in owner]
    context = _allow_data_dependent_meta() if x.device.type == "meta" else contextlib.nullcontext()
    try:
        with context, counter, recorder, torch.no_grad():
            forward(x)
    finally:
        for handle in handles:
            handle.remove()
    return counter, recorder, by_module


def _forward_of(model: nn.Module) -> Callable[[torch.Tensor], Any]:
    """``model.forward_dummy`` (what v2 counted), else the model's own ``forward``."""
    forward = getattr(model, "forward_dummy", None)
    if callable(forward):
        return forward
    if type(model).forward is nn.Module.forward:
        raise NotImplementedError(
            f"FLOPs counter is currently not supported for {type(model).__name__}: "
            "it has neither forward_dummy(img) nor forward(img)"
        )
    return model


def count_complexity(
    model: nn.Module,
    input_shape: Sequence[int],
    forward: Callable[[torch.Tensor], Any] | None = None,
) -> ComplexityInfo:
    """Count FLOPs (v2/mmcv style) and parameters of an already built ``model``.

    The forward pass runs on the device of the model's parameters (``meta`` works and is fast).

    Args:
        model: The model; put into eval mode.
        input_shape: ``(C, H, W)``; a batch of one is fed.
        forward: The function to count (default ``model.forward_dummy``, else ``model``).

    Raises:
        NotImplementedError: no ``forward`` given and the model has no forward to call.

    Example:
        >>> conv = nn.Conv2d(3, 8, 3, padding=1)
        >>> count_complexity(conv, (3, 10, 10), forward=conv).flops  # 100*8*27 MACs + 800 bias
        22400
    """
    model.eval()
    fn = forward if forward is not None else _forward_of(model)
    device = model_device(model)
    x = (torch.empty if device.type == "meta" else torch.rand)(1, *input_shape, device=device)
    counter, recorder, by_module = _count(model, fn, x)
    by_operator = {str(k): int(v) for k, v in counter.get_flop_counts()["Global"].items()}
    counted = set(counter.flop_registry)
    uncounted = sorted(
        str(op) for op in recorder.seen if op not in counted and not str(op).startswith("aten.")
    )
    return ComplexityInfo(
        flops=int(counter.get_total_flops()),
        params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        total_params=sum(p.numel() for p in model.parameters()),
        input_shape=tuple(int(v) for v in input_shape),
        by_operator=by_operator,
        by_module=by_module,
        uncounted_ops=tuple(uncounted),
        device=device.type,
    )


def get_model_complexity_info(
    build: Callable[[], nn.Module], input_shape: Sequence[int]
) -> ComplexityInfo:
    """Build a model with ``build()`` on ``meta`` and count it (CPU if ``meta`` cannot run it).

    Args:
        build: Returns a freshly built model (called once or twice).
        input_shape: ``(C, H, W)``.

    Example:
        >>> info = get_model_complexity_info(lambda: nn.Sequential(nn.Conv2d(3, 4, 1)), (3, 8, 8))
        >>> info.flops, info.params  # 64*4*3 MACs + 256 bias adds; 12 weights + 4 biases
        (1024, 16)
    """
    with torch.device("meta"):
        model = build()
    forward = _forward_of(model)  # a model without a forward fails here, not on the meta device
    try:
        return count_complexity(model, input_shape, forward=forward)
    except (NotImplementedError, RuntimeError, ValueError) as exc:
        _LOG.info("FLOPs: the meta device cannot run this model (%s); counting on CPU", exc)
    model = build()
    return count_complexity(model, input_shape, forward=_forward_of(model))


# ------------------------------------------------------------------------------- formatting
def padded_input_shape(shape: Sequence[int], size_divisor: int = 32) -> tuple[int, int, int]:
    """``--shape`` (``[H, W]`` or ``[S]``) to ``(3, H, W)`` rounded up to ``size_divisor``.

    Example:
        >>> padded_input_shape([1281, 800]), padded_input_shape([640], -1)
        ((3, 1312, 800), (3, 640, 640))
    """
    if len(shape) == 1:
        h = w = int(shape[0])
    elif len(shape) == 2:
        h, w = (int(v) for v in shape)
    else:
        raise ValueError(f"invalid input shape {list(shape)}: give H W or a single size")
    if h <= 0 or w <= 0:
        raise ValueError(f"invalid input shape {list(shape)}: sizes must be positive")
    if size_divisor > 0:
        h = -(-h // size_divisor) * size_divisor
        w = -(-w // size_divisor) * size_divisor
    return 3, h, w


def flops_to_string(flops: float, units: str = "GFLOPs", precision: int = 2) -> str:
    """mmcv's format: ``'239.32 GFLOPs'``.

    Example:
        >>> flops_to_string(239_324_000_000)
        '239.32 GFLOPs'
    """
    scale = {"GFLOPs": 1e9, "MFLOPs": 1e6, "KFLOPs": 1e3, "FLOPs": 1.0}[units]
    return f"{round(flops / scale, precision)} {units}"


def params_to_string(params: float, units: str = "M", precision: int = 2) -> str:
    """mmcv's format: ``'37.74 M'``.

    Example:
        >>> params_to_string(37_743_348)
        '37.74 M'
    """
    scale = {"M": 1e6, "K": 1e3, "": 1.0}[units]
    return f"{round(params / scale, precision)} {units}".rstrip()

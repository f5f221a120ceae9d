"""ONNX symbolics that torchvision does not ship: ``deform_conv2d`` → ONNX ``DeformConv``.

ONNX added ``DeformConv`` in opset 19 with torchvision's operand layout (offsets as
``(dy, dx)`` pairs per deformable group and kernel position, optional modulation mask), and
ONNX Runtime runs it on the CPU. Deformable heads (VFNet, DCN backbones) export from opset 19.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFORM_CONV_OPSET", "register_symbolics"]

DEFORM_CONV_OPSET = 19
_REGISTERED = False


def _deform_conv2d(
    g: Any,
    input: Any,
    weight: Any,
    offset: Any,
    mask: Any,
    bias: Any,
    stride_h: Any,
    stride_w: Any,
    pad_h: Any,
    pad_w: Any,
    dil_h: Any,
    dil_w: Any,
    n_weight_grps: Any,
    n_offset_grps: Any,
    use_mask: Any,
) -> Any:
    from torch.onnx import symbolic_helper

    weight_shape = symbolic_helper._get_tensor_sizes(weight)
    if weight_shape is None or any(not isinstance(v, int) for v in weight_shape[2:]):
        raise RuntimeError("deform_conv2d export needs a weight with a static kernel size")
    stride = (symbolic_helper._get_const(v, "i", "stride") for v in (stride_h, stride_w))
    pad = [symbolic_helper._get_const(v, "i", "pad") for v in (pad_h, pad_w)]
    dilation = [symbolic_helper._get_const(v, "i", "dilation") for v in (dil_h, dil_w)]
    inputs = [input, weight, offset, bias]
    if symbolic_helper._get_const(use_mask, "b", "use_mask"):
        inputs.append(mask)
    return g.op(
        "DeformConv",
        *inputs,
        dilations_i=dilation,
        group_i=symbolic_helper._get_const(n_weight_grps, "i", "groups"),
        kernel_shape_i=list(weight_shape[2:]),
        offset_group_i=symbolic_helper._get_const(n_offset_grps, "i", "offset_groups"),
        pads_i=pad + pad,
        strides_i=list(stride),
    )


def register_symbolics() -> None:
    """Register the symbolics with the TorchScript-based ONNX exporter (once)."""
    global _REGISTERED
    if _REGISTERED:
        return
    import torch
    import torchvision  # noqa: F401  (defines the torchvision:: operators)

    torch.onnx.register_custom_op_symbolic(
        "torchvision::deform_conv2d", _deform_conv2d, DEFORM_CONV_OPSET
    )
    _REGISTERED = True

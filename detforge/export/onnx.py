"""Export a detector to ONNX (TorchScript-based exporter) and run it with ONNX Runtime.

The graph is :class:`~detforge.export.graph.DetectorGraph`: input ``input`` ``[1, 3, H, W]``
(normalised, padded), outputs ``dets [N, 5]``, ``labels [N]`` (+ ``masks [N, h, w]``), or the
raw head outputs. NMS becomes ``NonMaxSuppression`` (opset >= 11); aligned ``RoIAlign`` is
exact from opset 16, so two-stage detectors default to 16 and everything else to v2's 11.
``onnx`` and ``onnxruntime`` come with the ``export`` extra; ``onnxsim`` is optional.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from detforge.export.graph import DetectorGraph
from detforge.export.symbolics import DEFORM_CONV_OPSET, register_symbolics

__all__ = [
    "DEFAULT_OPSET",
    "export_onnx",
    "onnx_session",
    "require_onnxsim",
    "resolve_opset",
    "run_onnx",
    "simplify_onnx",
]

DEFAULT_OPSET = 11
_MIN_OPSET = 11
_ALIGNED_OPSET = 16


def _require(module: str, extra: str = "export") -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{module} is not installed; install it with `pip install {module}` "
            f"(or `pip install detforge[{extra}]`)"
        ) from None


def resolve_opset(graph: DetectorGraph, opset_version: int | None) -> int:
    """The opset to export with: ``opset_version``, or by default 19 for deformable
    convolutions, 16 for graphs with aligned RoIAlign and 11 (v2's default) otherwise. Below 16
    aligned RoIAlign is emulated, which differs for RoIs smaller than one feature cell (a
    warning says so)."""
    if opset_version is None:
        if graph.deformable:
            return DEFORM_CONV_OPSET
        return _ALIGNED_OPSET if graph.needs_opset16 else DEFAULT_OPSET
    if graph.deformable and opset_version < DEFORM_CONV_OPSET:
        raise ValueError(
            f"the model has deformable convolutions, which ONNX has from opset "
            f"{DEFORM_CONV_OPSET} (DeformConv); got --opset-version {opset_version}"
        )
    if opset_version < _MIN_OPSET:
        raise ValueError(
            f"opset {opset_version} is too old: NonMaxSuppression needs opset >= {_MIN_OPSET}"
        )
    if graph.needs_opset16 and opset_version < _ALIGNED_OPSET:
        warnings.warn(
            f"RoIAlign(aligned=True) is exact in ONNX from opset {_ALIGNED_OPSET}; with opset "
            f"{opset_version} it is emulated by shifting the RoIs half a feature pixel, which "
            "differs for RoIs smaller than one feature cell",
            stacklevel=2,
        )
    return opset_version


def _dynamic_axes(names: Sequence[str], postprocess: bool) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {"input": {2: "height", 3: "width"}}
    for name in names:
        if postprocess:
            axes[name] = {0: "num_dets"}
        else:
            axes[name] = {2: f"{name}_height", 3: f"{name}_width"}
    return axes


def export_onnx(
    model: nn.Module,
    img: torch.Tensor,
    out_file: str | os.PathLike[str],
    opset_version: int | None = None,
    dynamic_export: bool = False,
    postprocess: bool = True,
    verbose: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Trace ``model`` on ``img`` and write an ONNX file.

    Args:
        model: A detforge detector (single-stage, Faster R-CNN or Mask R-CNN), eval mode.
        img: The normalised, padded input ``Tensor[1, 3, H, W]`` to trace with.
        out_file: Where to write the ``.onnx`` file.
        opset_version: ONNX opset (default: see :func:`resolve_opset`).
        dynamic_export: Dynamic height and width (the number of detections is always dynamic).
        postprocess: Post-processing inside the graph; ``False`` exports the raw head outputs.
        verbose: Print the traced graph (v2's ``--show``).
        metadata: Extra ``metadata_props`` (values JSON-encoded unless strings).

    Returns:
        ``dict(opset=..., input_names=[...], output_names=[...], input_shape=(...))``.

    Example:
        >>> info = export_onnx(model, img, 'retinanet.onnx')  # doctest: +SKIP
        >>> info['output_names']  # doctest: +SKIP
        ['dets', 'labels']
    """
    onnx = _require("onnx")
    register_symbolics()
    if img.dim() != 4 or img.shape[0] != 1 or img.shape[1] != 3:
        raise ValueError(f"export needs one image [1, 3, H, W], got {tuple(img.shape)}")
    graph = DetectorGraph(model, postprocess=postprocess).eval()
    opset = resolve_opset(graph, opset_version)
    graph.legacy_roi_align = opset < _ALIGNED_OPSET
    names = graph.output_names
    out_path = os.fspath(out_file)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.onnx")
        try:
            with torch.no_grad():
                torch.onnx.export(
                    graph,
                    (img,),
                    out_path,
                    dynamo=False,
                    opset_version=opset,
                    input_names=["input"],
                    output_names=names,
                    dynamic_axes=_dynamic_axes(names, postprocess) if dynamic_export else None,
                    do_constant_folding=True,
                    verbose=verbose,
                )
        except Exception as exc:  # the exporter's own messages name the failing operator
            raise RuntimeError(
                f"ONNX export of {type(model).__name__} failed (opset {opset}): {exc}"
            ) from exc
    proto = onnx.load(out_path)
    onnx.checker.check_model(proto)
    props = {
        "producer": "detforge",
        "input_shape": list(img.shape) if not dynamic_export else [1, 3, "height", "width"],
        "postprocess": postprocess,
        **dict(metadata or {}),
    }
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    onnx.save(proto, out_path)
    return dict(
        opset=opset, input_names=["input"], output_names=names, input_shape=tuple(img.shape)
    )


def require_onnxsim() -> None:
    """Raise an ``ImportError`` saying how to install onnxsim when it is missing (checked
    without importing it, so that the CLI can fail before loading a model)."""
    if importlib.util.find_spec("onnxsim") is None:
        raise ImportError(
            "--simplify needs onnxsim, which is not installed: `pip install onnxsim` "
            "(or export without --simplify)"
        )


def simplify_onnx(path: str | os.PathLike[str]) -> None:
    """Simplify the ONNX file in place with onnxsim (optional; a clear error without it)."""
    onnx = _require("onnx")
    require_onnxsim()
    import onnxsim

    model = onnx.load(os.fspath(path))
    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise RuntimeError(f"onnxsim could not validate the simplified model of {path}")
    onnx.save(simplified, os.fspath(path))


def onnx_session(path: str | os.PathLike[str]) -> Any:
    """An ONNX Runtime CPU session for ``path``."""
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        os.fspath(path), sess_options=options, providers=["CPUExecutionProvider"]
    )


def run_onnx(session_or_path: Any, img: torch.Tensor | np.ndarray) -> list[np.ndarray]:
    """Run an exported graph on ``img`` ``[1, 3, H, W]``; the outputs in graph order."""
    session = (
        onnx_session(session_or_path)
        if isinstance(session_or_path, str | os.PathLike)
        else session_or_path
    )
    array = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else img
    name = session.get_inputs()[0].name
    return list(session.run(None, {name: np.ascontiguousarray(array, dtype=np.float32)}))

"""Export detectors to ONNX and TorchScript with their post-processing inside the graph.

:class:`DetectorGraph` wraps a detector so that one normalised, padded image ``[1, 3, H, W]``
goes in and v2's ONNX outputs come out: ``dets [N, 5]`` (``x1, y1, x2, y2, score`` in the
input's frame), ``labels [N]`` and, for Mask R-CNN, ``masks [N, h, w]``. :func:`export_onnx`
and :func:`export_torchscript` trace it; :func:`pytorch_outputs` and :func:`compare_outputs`
check an export against the PyTorch model (``detforge export onnx ... --verify``).

Example:
    >>> from detforge.export import export_onnx, prepare_input, run_onnx  # doctest: +SKIP
    >>> img, meta = prepare_input(model.cfg, 'demo.jpg')  # doctest: +SKIP
    >>> export_onnx(model, img, 'model.onnx')  # doctest: +SKIP
    >>> dets, labels = run_onnx('model.onnx', img)  # doctest: +SKIP
"""

from detforge.export.graph import DetectorGraph, detector_kind, output_names
from detforge.export.inputs import input_meta_for_graph, parse_shape, prepare_input
from detforge.export.onnx import (
    export_onnx,
    onnx_session,
    require_onnxsim,
    run_onnx,
    simplify_onnx,
)
from detforge.export.torchscript import export_torchscript, run_torchscript
from detforge.export.verify import VerifyReport, compare_outputs, pytorch_outputs

__all__ = [
    "DetectorGraph",
    "VerifyReport",
    "compare_outputs",
    "detector_kind",
    "export_onnx",
    "export_torchscript",
    "input_meta_for_graph",
    "onnx_session",
    "output_names",
    "parse_shape",
    "prepare_input",
    "pytorch_outputs",
    "require_onnxsim",
    "run_onnx",
    "run_torchscript",
    "simplify_onnx",
]

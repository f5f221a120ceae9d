"""Export a detector as a traced TorchScript module (``torch.jit.trace`` of the same graph
as ONNX export), and run it.

Tracing records the post-processing with symbolic sizes, so the module also runs on inputs of
other sizes and returns as many detections as it finds.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch
from torch import nn

from detforge.export.graph import DetectorGraph

__all__ = ["export_torchscript", "run_torchscript"]


def export_torchscript(
    model: nn.Module,
    img: torch.Tensor,
    out_file: str | os.PathLike[str],
    postprocess: bool = True,
) -> Any:
    """Trace ``model`` (with its post-processing unless ``postprocess=False``) on ``img``
    ``[1, 3, H, W]`` and save it to ``out_file``.

    Returns:
        The traced ``torch.jit.ScriptModule``.

    Example:
        >>> module = export_torchscript(model, img, 'retinanet.pt')  # doctest: +SKIP
        >>> dets, labels = torch.jit.load('retinanet.pt')(img)  # doctest: +SKIP
    """
    if img.dim() != 4 or img.shape[0] != 1 or img.shape[1] != 3:
        raise ValueError(f"export needs one image [1, 3, H, W], got {tuple(img.shape)}")
    graph = DetectorGraph(model, postprocess=postprocess).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
        with torch.no_grad():
            traced = torch.jit.trace(graph, (img,), check_trace=False)
    out_path = os.fspath(out_file)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    traced.save(out_path)
    return traced


def run_torchscript(module_or_path: Any, img: torch.Tensor) -> list[Any]:
    """Run a traced module (or the file it was saved to) on ``img``; outputs as numpy arrays."""
    module = module_or_path
    if isinstance(module_or_path, str | os.PathLike):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
            module = torch.jit.load(os.fspath(module_or_path), map_location="cpu")
    with torch.no_grad():
        outs = module(img)
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    return [out.detach().cpu().numpy() for out in outs]

"""mmcv's CARAFE kernels compiled for the CPU, for golden fixtures (PEER venv only).

mmcv 2.1.0 has CUDA/MLU/NPU kernels for CARAFE but no CPU one, so on a CPU-only machine its
``CARAFEPack`` cannot run. This module compiles mmcv's own kernel source,
``mmcv/ops/csrc/common/cuda/carafe_naive_cuda_kernel.cuh`` (forward and backward), as plain
C++: the CUDA qualifiers become empty, ``CUDA_1D_KERNEL_LOOP`` a serial loop over every output
element and ``atomicAdd`` a plain ``+=`` (one thread). The arithmetic per output element is the
kernel's, unchanged; mmcv's optimised ``carafe`` kernel (the one ``CARAFEPack`` calls on a GPU)
runs the same loops in the same order over an NHWC copy of the data.

:func:`patch_mmcv` makes ``mmcv.ops.carafe.carafe`` (used by ``CARAFEPack``) call it.

The kernel file is read from ``$MMCV_SRC`` (default: the mmcv 2.1.0 sdist that
``shared/tools/peers/build.sh`` unpacks into ``<peers>/src/mmcv-2.1.0``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

_KERNEL = "mmcv/ops/csrc/common/cuda/carafe_naive_cuda_kernel.cuh"
_DEFAULT_SRC = Path(__file__).resolve().parents[3] / "peers" / "src" / "mmcv-2.1.0"

_PRELUDE = """
#include <torch/extension.h>
#define __device__
#define __global__
#define CUDA_1D_KERNEL_LOOP(i, n) for (int i = 0; i < (n); ++i)
template <typename T> inline void atomicAdd(T *address, T value) { *address += value; }
"""

_BINDINGS = """
torch::Tensor forward(torch::Tensor features, torch::Tensor masks, int64_t kernel_size,
                      int64_t group_size, int64_t scale_factor) {
  auto f = features.contiguous();
  auto m = masks.contiguous();
  auto out = torch::zeros({f.size(0), f.size(1), m.size(2), m.size(3)}, f.options());
  carafe_naive_forward_cuda_kernel<float>(
      out.numel(), f.data_ptr<float>(), m.data_ptr<float>(), out.data_ptr<float>(),
      kernel_size, group_size, scale_factor, out.size(1), out.size(2), out.size(3));
  return out;
}

std::vector<torch::Tensor> backward(torch::Tensor grad, torch::Tensor features,
                                    torch::Tensor masks, int64_t kernel_size,
                                    int64_t group_size, int64_t scale_factor) {
  auto g = grad.contiguous();
  auto f = features.contiguous();
  auto m = masks.contiguous();
  auto gf = torch::zeros_like(f);
  auto gm = torch::zeros_like(m);
  carafe_naive_backward_cuda_kernel<float>(
      g.numel(), g.data_ptr<float>(), f.data_ptr<float>(), m.data_ptr<float>(),
      gf.data_ptr<float>(), gm.data_ptr<float>(), kernel_size, group_size, scale_factor,
      g.size(1), g.size(2), g.size(3));
  return {gf, gm};
}
"""

_EXT: Any = None


def kernel_source() -> str:
    """The kernel header without its include guard and CUDA helper includes."""
    path = Path(os.environ.get("MMCV_SRC", _DEFAULT_SRC)) / _KERNEL
    text = path.read_text()
    text = re.sub(r"#ifdef MMCV_USE_PARROTS.*?#endif\n", "", text, flags=re.S)
    return "\n".join(
        line for line in text.splitlines() if not line.startswith(("#ifndef", "#define", "#endif"))
    )


def extension() -> Any:
    """The compiled module (``forward``, ``backward``), built once per process."""
    global _EXT
    if _EXT is None:
        from torch.utils.cpp_extension import load_inline

        _EXT = load_inline(
            name="mmcv_carafe_naive_cpu",
            cpp_sources=_PRELUDE + kernel_source() + _BINDINGS,
            functions=["forward", "backward"],
            extra_cflags=["-O2", "-std=c++20"],
        )
    return _EXT


class _CarafeCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, features: Any, masks: Any, k: int, g: int, s: int) -> Any:
        ctx.save_for_backward(features, masks)
        ctx.args = (k, g, s)
        return extension().forward(features, masks, k, g, s)

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        features, masks = ctx.saved_tensors
        gf, gm = extension().backward(grad, features, masks, *ctx.args)
        return gf, gm, None, None, None


def carafe_cpu(features: Any, masks: Any, kernel_size: int, group_size: int, scale: int) -> Any:
    return _CarafeCPU.apply(features, masks, kernel_size, group_size, scale)


def patch_mmcv() -> None:
    """Route ``mmcv.ops.carafe.carafe`` (what ``CARAFEPack`` calls) to the CPU build."""
    import sys

    import mmcv.ops  # noqa: F401  (mmcv.ops.carafe the attribute is the function, not the module)

    sys.modules["mmcv.ops.carafe"].carafe = carafe_cpu

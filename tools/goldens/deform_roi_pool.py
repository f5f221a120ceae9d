"""Golden fixture of ``DeformRoIPoolPack`` / ``ModulatedDeformRoIPoolPack`` (dcn, dcnv2).

mmcv 2.1.0 has no CPU kernel for deformable RoI pooling, so this script compiles mmcv's own
CUDA kernel source (``deform_roi_pool_cuda_kernel.cuh`` and ``bilinear_interpolate*`` from
``common_cuda_helper.hpp``, taken verbatim from ``$MMCV_SRC``) as plain C++ with a few
macros (``__global__``/``__device__`` empty, ``CUDA_1D_KERNEL_LOOP`` a for loop, ``atomicAdd``
a ``+=``), loads it with ``torch.utils.cpp_extension.load_inline`` and runs mmcv's
``DeformRoIPoolPack.forward`` logic (pool, ``offset_fc``, pool with offsets[, ``* mask``]) on
top of it. The modules' parameters are built by mmcv's classes (``mmcv.ops.deform_roi_pool``,
pure Python) and randomised, so the ``offset_fc``/``mask_fc`` keys are mmcv's.

Also stores the plain kernel (``deform_roi_pool`` with given offsets) and its gradients w.r.t.
the input and the offsets (mmcv's backward kernel) for RoIs away from the map borders.

Run: /work/peers/venv/bin/python tools/goldens/deform_roi_pool.py   (from the repo root)
"""

from __future__ import annotations

import re

import torch
from v2_peer import MMCV_SRC, out_dir, randomize, versions, write_json, write_layouts

NAME = "deform_roi_pool"
CUDA = MMCV_SRC / "mmcv" / "ops" / "csrc" / "common" / "cuda"

_SHIM = r"""
#include <torch/extension.h>
#include <algorithm>
#include <cmath>
using std::max;
using std::min;
#define __global__
#define __device__ inline
#define CUDA_1D_KERNEL_LOOP(i, n) for (int i = 0; i < (n); ++i)
#define atomicAdd(ptr, val) (*(ptr) += (val))
"""

_GLUE = r"""
torch::Tensor forward(torch::Tensor input, torch::Tensor rois, torch::Tensor offset,
                      int64_t ph, int64_t pw, double scale, int64_t sr, double gamma) {
  auto out = torch::zeros({rois.size(0), input.size(1), ph, pw}, input.options());
  const float* off = offset.numel() ? offset.data_ptr<float>() : nullptr;
  deform_roi_pool_forward_cuda_kernel<float>(out.numel(), input.data_ptr<float>(),
      rois.data_ptr<float>(), off, out.data_ptr<float>(), ph, pw, (float)scale, sr,
      (float)gamma, input.size(1), input.size(2), input.size(3));
  return out;
}
std::vector<torch::Tensor> backward(torch::Tensor grad_out, torch::Tensor input,
                                    torch::Tensor rois, torch::Tensor offset, int64_t ph,
                                    int64_t pw, double scale, int64_t sr, double gamma) {
  auto grad_input = torch::zeros_like(input);
  auto grad_offset = torch::zeros_like(offset);
  const float* off = offset.numel() ? offset.data_ptr<float>() : nullptr;
  float* goff = offset.numel() ? grad_offset.data_ptr<float>() : nullptr;
  deform_roi_pool_backward_cuda_kernel<float>(grad_out.numel(), grad_out.data_ptr<float>(),
      input.data_ptr<float>(), rois.data_ptr<float>(), off, grad_input.data_ptr<float>(), goff,
      ph, pw, (float)scale, sr, (float)gamma, input.size(1), input.size(2), input.size(3));
  return {grad_input, grad_offset};
}
"""


def _function(text: str, name: str) -> str:
    """The ``template <typename T> ... name(...) { ... }`` definition in ``text``."""
    start = text.index(f"{name}(")
    start = text.rindex("template <typename T>", 0, start)
    end = text.index("\n}\n", start) + 3
    return text[start:end]


def compile_kernel():
    from torch.utils.cpp_extension import load_inline

    helper = (CUDA / "common_cuda_helper.hpp").read_text()
    kernel = (CUDA / "deform_roi_pool_cuda_kernel.cuh").read_text()
    kernel = "\n".join(line for line in kernel.splitlines() if not line.startswith("#include"))
    kernel = re.sub(r"#(ifdef|ifndef|else|endif|define DEFORM)[^\n]*", "", kernel)
    source = (
        _SHIM
        + _function(helper, "bilinear_interpolate")
        + _function(helper, "bilinear_interpolate_gradient")
        + kernel
        + _GLUE
    )
    return load_inline(
        "mmcv_deform_roi_pool_cpu",
        cpp_sources=[source],
        functions=["forward", "backward"],
        extra_cflags=["-O2"],
        verbose=False,
    )


def main() -> None:
    from mmcv.ops.deform_roi_pool import DeformRoIPoolPack, ModulatedDeformRoIPoolPack

    ext = compile_kernel()
    out = out_dir(NAME)
    torch.manual_seed(0)
    channels, size = 8, (7, 7)
    feats = torch.randn(2, channels, 24, 20)
    scale = 0.25
    xy = torch.rand(12, 2) * torch.tensor([70.0, 85.0]) - 4.0
    wh = torch.rand(12, 2) * 40 + 2
    rois = torch.cat([torch.tensor([0.0] * 6 + [1.0] * 6)[:, None], xy, xy + wh], 1)
    rois[0] = torch.tensor([0.0, 12.0, 8.0, 52.0, 56.0])  # integer corners: exact bin sizes

    def pool(inp, r, offset, sampling_ratio=0, gamma=0.1):
        empty = torch.zeros(0)
        return ext.forward(
            inp.contiguous(),
            r.contiguous(),
            empty if offset is None else offset.contiguous(),
            size[0],
            size[1],
            scale,
            sampling_ratio,
            gamma,
        )

    expected: dict[str, torch.Tensor] = {}
    weights: dict[str, dict[str, torch.Tensor]] = {}
    for key, cls in (("dpool", DeformRoIPoolPack), ("mdpool", ModulatedDeformRoIPoolPack)):
        layer = cls(size, output_channels=channels, deform_fc_channels=16, spatial_scale=scale)
        randomize(layer, seed=1 if key == "dpool" else 2)
        weights[key] = layer.state_dict()
        with torch.no_grad():
            plain = pool(feats, rois, None)
            offset = layer.offset_fc(plain.view(len(rois), -1)).view(len(rois), 2, *size)
            pooled = pool(feats, rois, offset)
            if key == "mdpool":
                mask = layer.mask_fc(plain.view(len(rois), -1)).view(len(rois), 1, *size)
                pooled = pooled * mask
        expected[key] = pooled
        expected[f"{key}_offset"] = offset

    # the kernel alone, with given offsets and a fixed sampling ratio, and its gradients
    offset = torch.randn(len(rois), 2, *size) * 0.5
    expected["kernel"] = pool(feats, rois, offset, sampling_ratio=2, gamma=0.2)
    inner = rois.clone()
    inner[:, 1:] = torch.tensor([20.0, 20.0, 50.0, 60.0]) + torch.rand(len(rois), 4) * 8
    small_offset = torch.randn(len(rois), 2, *size) * 0.05
    grad_out = torch.randn(len(rois), channels, *size)
    grad_input, grad_offset = ext.backward(
        grad_out, feats, inner, small_offset, size[0], size[1], scale, 0, 0.1
    )
    expected.update(
        inner_rois=inner,
        inner_offset=small_offset,
        grad_out=grad_out,
        grad_input=grad_input,
        grad_offset=grad_offset,
    )
    torch.save(weights, out / "weights.pt")
    torch.save({"feats": feats, "rois": rois, "offset": offset}, out / "input.pt")
    torch.save(expected, out / "expected.pt")
    write_json(out / "versions.json", versions())

    write_layouts(
        out,
        [
            ("dcn/faster_rcnn_r50_fpn_dpool_1x_coco.py", ()),
            ("dcnv2/faster_rcnn_r50_fpn_mdpool_1x_coco.py", ()),
        ],
    )


if __name__ == "__main__":
    main()

"""Golden fixture for CARAFE (the op and ``CARAFEPack``): tests/data/goldens/carafe/.

usage (repo root): /work/peers/venv/bin/python tools/goldens/carafe.py

- ``op.pt``: seeded features/masks (several kernel sizes, groups, scales, non-square maps), the
  output of mmcv's CARAFE kernel (compiled for the CPU, see mmcv_carafe_cpu.py), and the
  kernel's gradients for a seeded ``grad_output``.
- ``pack.pt``: mmcv's ``CARAFEPack`` (kwargs, seeded random weights, input, output), its
  reassembly routed to the same kernel.
"""

from __future__ import annotations

import torch
from mmcv_carafe_cpu import carafe_cpu, patch_mmcv
from neck_common import GOLDENS, randomise, seed_all, versions, write_json

OP_CASES = [  # (n, c, h, w), kernel, groups, scale
    ((1, 4, 5, 7), 5, 1, 2),
    ((2, 6, 4, 3), 3, 3, 2),
    ((1, 4, 3, 4), 1, 2, 3),
    ((1, 8, 6, 5), 5, 2, 1),
]


def main() -> None:
    seed_all(0)
    out_dir = GOLDENS / "carafe"
    out_dir.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    cases = []
    for (n, c, h, w), k, groups, s in OP_CASES:
        feat = torch.randn((n, c, h, w), generator=g).requires_grad_(True)
        masks = torch.randn((n, groups * k * k, h * s, w * s), generator=g).requires_grad_(True)
        out = carafe_cpu(feat, masks, k, groups, s)
        grad_out = torch.randn(out.shape, generator=g)
        out.backward(grad_out)
        cases.append(
            dict(
                features=feat.detach().clone(),
                masks=masks.detach().clone(),
                kernel_size=k,
                group_size=groups,
                scale_factor=s,
                output=out.detach().clone(),
                grad_output=grad_out,
                grad_features=feat.grad.clone(),
                grad_masks=masks.grad.clone(),
            )
        )
        print("op", (n, c, h, w), k, groups, s, tuple(out.shape))
    torch.save({"cases": cases}, out_dir / "op.pt")

    patch_mmcv()
    from mmcv.ops import CARAFEPack

    kwargs = dict(
        channels=8,
        scale_factor=2,
        up_kernel=5,
        up_group=2,
        encoder_kernel=3,
        encoder_dilation=2,
        compressed_channels=4,
    )
    pack = CARAFEPack(**kwargs)
    randomise(pack, 1)
    x = torch.randn((1, 8, 6, 5), generator=g)
    with torch.no_grad():
        y = pack(x)
    torch.save(
        {
            "kwargs": kwargs,
            "weights": {k: v.clone() for k, v in pack.state_dict().items()},
            "input": x,
            "output": y,
        },
        out_dir / "pack.pt",
    )
    write_json(out_dir / "versions.json", versions())
    print("pack", tuple(y.shape))


if __name__ == "__main__":
    main()

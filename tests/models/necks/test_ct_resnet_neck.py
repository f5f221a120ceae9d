"""CTResNetNeck (CenterNet): the plain-conv golden, the full-size layout, v2's init.

The DCNv2 variant is checked against MMDetection by the centernet fixture
(``test_one_stage_fixtures.py``).
"""

from __future__ import annotations

import pytest
import torch

from detforge.models.layers import ModulatedDeformConv2dPack
from detforge.models.necks import CTResNetNeck
from tests.models.component_golden import check_golden, check_layout


def test_golden_without_dcn() -> None:
    check_golden("ct_resnet_neck")


def test_full_size_centernet_r18_layout() -> None:
    check_layout("ct_resnet_neck", "layout_centernet_r18.json")


def test_dcn_by_default_and_shapes() -> None:
    neck = CTResNetNeck(in_channel=16, num_deconv_filters=(8, 4), num_deconv_kernels=(4, 4))
    assert isinstance(neck.deconv_layers[0].conv, ModulatedDeformConv2dPack)
    assert isinstance(neck.deconv_layers[1].conv, torch.nn.ConvTranspose2d)
    assert neck.deconv_layers[0].conv.bias is None  # followed by BN
    with torch.no_grad():
        (out,) = neck.eval()([torch.rand(1, 16, 3, 5)])
    assert out.shape == (1, 4, 12, 20)
    with pytest.raises(ValueError, match="same length"):
        CTResNetNeck(in_channel=16, num_deconv_filters=(8,), num_deconv_kernels=(4, 4))


def test_init_weights_writes_bilinear_kernels() -> None:
    neck = CTResNetNeck(in_channel=4, num_deconv_filters=(3,), num_deconv_kernels=(4,))
    neck.init_weights()
    w = neck.deconv_layers[1].conv.weight
    ramp = torch.tensor([0.25, 0.75, 0.75, 0.25])
    for c in range(3):
        torch.testing.assert_close(w[c, 0], ramp[:, None] * ramp[None, :])
    assert bool((neck.deconv_layers[1].bn.weight == 1).all())
    # a plain-conv neck resets its 3x3 convs to PyTorch's default init
    plain = CTResNetNeck(
        in_channel=4, num_deconv_filters=(3,), num_deconv_kernels=(4,), use_dcn=False
    )
    torch.nn.init.constant_(plain.deconv_layers[0].conv.weight, 9.0)
    plain.init_weights()
    assert bool(plain.deconv_layers[0].conv.weight.abs().max() <= 1 / 36**0.5)

"""``Scale``: one learnable factor per instance, named ``scale`` in the state_dict."""

from __future__ import annotations

import torch

from detforge.models.layers import Scale


def test_scale_multiplies_and_learns() -> None:
    layer = Scale(0.5)
    x = torch.arange(4.0)
    y = layer(x)
    assert y.tolist() == [0.0, 0.5, 1.0, 1.5]
    y.sum().backward()
    assert layer.scale.grad is not None and float(layer.scale.grad) == 6.0
    assert list(layer.state_dict()) == ["scale"] and layer.scale.shape == ()
    assert layer.scale.dtype == torch.float32

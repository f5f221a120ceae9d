"""SSDAnchorGenerator: v2's hard-coded SSD300/SSD512 sizes and anchor order (values printed by
MMDetection 3.3.0's ``SSDAnchorGenerator``, whose arithmetic is v2.28's)."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.prior_generators import SSDAnchorGenerator

RATIOS_300 = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
RATIOS_512 = [[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]]
STRIDES_512 = [8, 16, 32, 64, 128, 256, 512]


@pytest.mark.parametrize(
    ("input_size", "ratio_range", "min_sizes", "last_scale"),
    [
        (300, (0.15, 0.9), [21, 45, 99, 153, 207, 261], 315 / 261),
        (300, (0.2, 0.9), [30, 60, 111, 162, 213, 264], 1.092328667640686**2),
        (512, (0.1, 0.9), [20, 51, 133, 215, 296, 378, 460], 1.0854772329330444**2),
        (512, (0.15, 0.9), [35, 76, 153, 230, 307, 384, 460], 1.0804588794708252**2),
    ],
)
def test_preset_sizes(
    input_size: int, ratio_range: tuple[float, float], min_sizes: list[int], last_scale: float
) -> None:
    strides = [8, 16, 32, 64, 100, 300] if input_size == 300 else STRIDES_512
    ratios = RATIOS_300 if input_size == 300 else RATIOS_512
    gen = SSDAnchorGenerator(
        strides=strides,
        ratios=ratios,
        basesize_ratio_range=ratio_range,
        input_size=input_size,
        scale_major=False,
    )
    assert gen.base_sizes == min_sizes
    assert float(gen.level_scales[-1][1]) ** 2 == pytest.approx(last_scale, rel=1e-6)
    assert gen.num_base_priors == [2 + 2 * len(r) for r in ratios]


def test_voc300_level_1_base_anchors_in_v2_order() -> None:
    """min square, sqrt(min*max) square, then 1/2, 2, 1/3, 3 boxes, centred at stride / 2."""
    gen = SSDAnchorGenerator(
        strides=[8, 16, 32, 64, 100, 300],
        ratios=RATIOS_300,
        basesize_ratio_range=(0.2, 0.9),
        input_size=300,
        scale_major=False,
    )
    want = torch.tensor(
        [
            [-22.0, -22.0, 38.0, 38.0],
            [-32.8044090, -32.8044090, 48.8044090, 48.8044090],
            [-34.4264069, -13.2132034, 50.4264069, 29.2132034],
            [-13.2132034, -34.4264069, 29.2132034, 50.4264069],
            [-43.9615250, -9.3205070, 59.9615250, 25.3205070],
            [-9.3205070, -43.9615250, 25.3205070, 59.9615250],
        ]
    )
    torch.testing.assert_close(gen.base_anchors[1], want, atol=1e-5, rtol=0)


def test_bad_arguments_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="input_size must be 300 or 512"):
        SSDAnchorGenerator(strides=[8] * 6, ratios=[[2]] * 6, input_size=320)
    with pytest.raises(ValueError, match="both min_sizes and max_sizes"):
        SSDAnchorGenerator(strides=[8], ratios=[[2]], min_sizes=[4])
    with pytest.raises(ValueError, match="2 strides for 1 ratio lists"):
        SSDAnchorGenerator(strides=[8, 16], ratios=[[2]])
    with pytest.raises(ValueError, match="needs at least 3 levels, got 2"):
        SSDAnchorGenerator(strides=[8, 16], ratios=[[2], [2]])
    with pytest.raises(ValueError, match="gives 39 anchor sizes for 30 levels"):
        SSDAnchorGenerator(strides=[8] * 30, ratios=[[2]] * 30)

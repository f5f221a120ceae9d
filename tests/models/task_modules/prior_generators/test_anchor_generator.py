"""AnchorGenerator: MMDetection's literal anchors and valid flags, and properties."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.prior_generators import AnchorGenerator
from detforge.registry import TASK_UTILS, build_module

RETINA_LEVEL0 = [
    [-22.6274, -11.3137, 22.6274, 11.3137],
    [-28.5088, -14.2544, 28.5088, 14.2544],
    [-35.9188, -17.9594, 35.9188, 17.9594],
    [-16.0000, -16.0000, 16.0000, 16.0000],
    [-20.1587, -20.1587, 20.1587, 20.1587],
    [-25.3984, -25.3984, 25.3984, 25.3984],
    [-11.3137, -22.6274, 11.3137, 22.6274],
    [-14.2544, -28.5088, 14.2544, 28.5088],
    [-17.9594, -35.9188, 17.9594, 35.9188],
]
RETINA_LEVEL4 = [
    [-362.0387, -181.0193, 362.0387, 181.0193],
    [-456.1401, -228.0701, 456.1401, 228.0701],
    [-574.7006, -287.3503, 574.7006, 287.3503],
    [-256.0000, -256.0000, 256.0000, 256.0000],
    [-322.5398, -322.5398, 322.5398, 322.5398],
    [-406.3747, -406.3747, 406.3747, 406.3747],
    [-181.0193, -362.0387, 181.0193, 362.0387],
    [-228.0701, -456.1401, 228.0701, 456.1401],
    [-287.3503, -574.7006, 287.3503, 574.7006],
]


def _retina() -> AnchorGenerator:
    return build_module(
        dict(
            type="AnchorGenerator",
            octave_base_scale=4,
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32, 64, 128],
        ),
        TASK_UTILS,
    )


def test_square_strides() -> None:
    gen = AnchorGenerator([10], [1.0], [1.0], [10])
    expected = [[-5, -5, 5, 5], [5, -5, 15, 5], [-5, 5, 5, 15], [5, 5, 15, 15]]
    assert torch.equal(gen.grid_anchors([(2, 2)], device="cpu")[0], torch.tensor(expected).float())


def test_rectangular_strides() -> None:
    gen = AnchorGenerator([(10, 20)], [1.0], [1.0], [10])
    expected = [[-5, -5, 5, 5], [5, -5, 15, 5], [-5, 15, 5, 25], [5, 15, 15, 25]]
    assert torch.equal(gen.grid_priors([(2, 2)], device="cpu")[0], torch.tensor(expected).float())


def test_retinanet_base_anchors_and_valid_flags() -> None:
    gen = _retina()
    assert gen.num_base_anchors == gen.num_base_priors == [9] * 5
    assert torch.allclose(gen.base_anchors[0], torch.tensor(RETINA_LEVEL0))
    assert torch.allclose(gen.base_anchors[4], torch.tensor(RETINA_LEVEL4))
    for level in range(1, 4):  # each level doubles the previous one
        torch.testing.assert_close(gen.base_anchors[level], gen.base_anchors[0] * 2**level)
    featmaps = [(80, 80), (40, 40), (20, 20), (10, 10), (5, 5)]
    flags = gen.valid_flags(featmaps, (640, 640), device="cpu")
    assert [int(f.sum()) for f in flags] == [57600, 14400, 3600, 900, 225]
    anchors = gen.grid_priors(featmaps, device="cpu")
    assert [len(a) for a in anchors] == [len(f) for f in flags]


def test_valid_flags_mark_the_padding_of_smaller_images() -> None:
    gen = _retina()
    featmaps = [(100, 152), (50, 76), (25, 38), (13, 19), (7, 10)]
    flags = gen.valid_flags(featmaps, (800, 1216), device="cpu")
    assert [int(f.sum()) for f in flags] == [136800, 34200, 8550, 2223, 630]
    # A 20 x 30 image in a 32 x 32 batch: stride 8 keeps ceil(20/8) = 3 rows of 4 cells.
    gen = AnchorGenerator(strides=[8], ratios=[1.0, 2.0], scales=[1.0])
    flags = gen.valid_flags([(4, 4)], (20, 30, 3), device="cpu")[0].view(4, 4, 2)
    assert flags[:3].all() and not flags[3].any()


def test_standard_config_counts() -> None:
    gen = build_module(
        dict(type="AnchorGenerator", scales=[8], ratios=[0.5, 1.0, 2.0], strides=[4, 8]),
        TASK_UTILS,
    )
    assert gen.num_base_priors == [3, 3] and gen.num_levels == 2
    assert gen.base_sizes == [4, 8]
    # ratio 0.5 is a wide box (h / w = 0.5); area stays (8 * 4)^2 for every ratio.
    wh = gen.base_anchors[0][:, 2:] - gen.base_anchors[0][:, :2]
    torch.testing.assert_close(wh.prod(dim=1), torch.full((3,), 32.0**2))
    assert wh[0, 0] > wh[0, 1] and wh[2, 0] < wh[2, 1]


def test_scale_major_order() -> None:
    by_ratio = AnchorGenerator([16], ratios=[0.5, 2.0], scales=[1.0, 2.0])
    by_scale = AnchorGenerator([16], ratios=[0.5, 2.0], scales=[1.0, 2.0], scale_major=False)
    # scale_major: scales vary fastest; otherwise ratios vary fastest.
    torch.testing.assert_close(by_ratio.base_anchors[0][[0, 2, 1, 3]], by_scale.base_anchors[0])


def test_centers_and_center_offset() -> None:
    offset = AnchorGenerator([16], [1.0], [1.0], center_offset=0.5)
    torch.testing.assert_close(offset.base_anchors[0], torch.tensor([[0.0, 0.0, 16.0, 16.0]]))
    centered = AnchorGenerator([16], [1.0], [1.0], centers=[(3.0, 5.0)])
    torch.testing.assert_close(centered.base_anchors[0], torch.tensor([[-5.0, -3.0, 11.0, 13.0]]))


def test_sparse_priors_equal_grid_priors() -> None:
    inds = torch.tensor([0, 2, 4, 5, 6, 9])
    featmaps = [(3, 5), (6, 4)]
    for gen, idx in (
        (AnchorGenerator(strides=[16, 32], ratios=[1.0], scales=[1.0], base_sizes=[4, 8]), inds),
        (
            AnchorGenerator([16, 32], ratios=[1.0, 2.5], scales=[1.0, 5.0], base_sizes=[4, 8]),
            torch.tensor([4, 5, 6, 7, 0, 2, 50, 4, 5, 6, 9]),
        ),
    ):
        grid = gen.grid_priors(featmaps, device="cpu")
        for level, size in enumerate(featmaps):
            sparse = gen.sparse_priors(idx, size, level, device="cpu")
            assert torch.equal(sparse, grid[level][idx])


def test_dtype_and_grid_anchors_alias() -> None:
    gen = _retina()
    featmaps = [(6, 7), (3, 4), (2, 2), (1, 1), (1, 1)]
    fp32 = gen.grid_priors(featmaps, device="cpu")
    fp64 = gen.grid_priors(featmaps, dtype=torch.float64, device="cpu")
    assert all(a.dtype == torch.float64 for a in fp64)
    for a, b, c in zip(fp32, fp64, gen.grid_anchors(featmaps, device="cpu"), strict=True):
        assert torch.equal(a, b.float()) and torch.equal(a, c)
    single = gen.single_level_grid_anchors(gen.base_anchors[1], (3, 4), stride=(16, 16))
    assert torch.equal(single, fp32[1])
    # Anchors are ordered cell by cell, row-major, A per cell.
    level0 = fp32[0].view(6, 7, 9, 4)
    torch.testing.assert_close(
        level0[2, 5] - level0[0, 0], torch.tensor([40.0, 16.0] * 2).expand(9, 4)
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            dict(strides=[8], ratios=[1.0], scales=[1.0], octave_base_scale=4, scales_per_octave=3),
            "either",
        ),
        (dict(strides=[8], ratios=[1.0]), "either"),
        (dict(strides=[8], ratios=[1.0], scales=[1.0], center_offset=1.5), r"\[0, 1\]"),
        (dict(strides=[8], ratios=[1.0], scales=[1.0], base_sizes=[8, 16]), "base_sizes"),
        (
            dict(strides=[8], ratios=[1.0], scales=[1.0], centers=[(0, 0)], center_offset=0.5),
            "centers",
        ),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AnchorGenerator(**kwargs)


def test_level_count_mismatch() -> None:
    with pytest.raises(ValueError, match="2 levels"):
        AnchorGenerator([8, 16], [1.0], [1.0]).grid_priors([(2, 2)], device="cpu")

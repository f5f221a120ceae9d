"""``MlvlPointGenerator`` and ``PointGenerator``: mmdet test_anchor.py cases, properties."""

from __future__ import annotations

import pytest
import torch

from detforge.models.task_modules.prior_generators import MlvlPointGenerator, PointGenerator
from detforge.registry import TASK_UTILS, build_module


def test_build_and_num_base_priors() -> None:
    gen = build_module(dict(type="MlvlPointGenerator", strides=[4, 8], offset=0), TASK_UTILS)
    assert isinstance(gen, MlvlPointGenerator)
    assert gen.num_base_priors == [1, 1]
    assert gen.num_levels == 2


def test_mmdet_standard_points_cases() -> None:
    """The CPU half of mmdet's ``test_standard_points_generator``."""
    points = MlvlPointGenerator(strides=[4, 10], offset=0)
    half = MlvlPointGenerator(strides=[4, 10], offset=0.5)
    assert points.num_levels == 2
    with pytest.raises(ValueError, match="1 feature map sizes for 2 levels"):
        points.grid_priors(featmap_sizes=[(2, 2)], device="cpu")
    priors = points.grid_priors(featmap_sizes=[(2, 2), (4, 8)], device="cpu")
    with_stride = points.grid_priors(featmap_sizes=[(2, 2), (4, 8)], with_stride=True, device="cpu")
    assert len(priors) == 2
    assert with_stride[0].size(1) == 4
    assert with_stride[0][0][2] == 4 and with_stride[0][0][3] == 4
    assert with_stride[1][0][2] == 10 and with_stride[1][0][3] == 10
    assert (priors[0][1] - priors[0][0]).sum() == 4
    assert priors[0].shape == (4, 2)
    assert (priors[1][1] - priors[1][0]).sum() == 10
    assert priors[1].shape == (4 * 8, 2)
    offset = half.grid_priors(featmap_sizes=[(2, 2), (4, 8)], device="cpu")
    assert (offset[0][0] - priors[0][0]).sum() == 4 * 0.5 * 2
    assert (offset[1][0] - priors[1][0]).sum() == 10 * 0.5 * 2


def test_literal_grid_rectangular_strides() -> None:
    gen = MlvlPointGenerator(strides=[(4, 8)], offset=0.5)
    got = gen.grid_priors([(2, 3)], device="cpu", with_stride=True)[0]
    expected = torch.tensor(
        [
            [2.0, 4.0, 4.0, 8.0],
            [6.0, 4.0, 4.0, 8.0],
            [10.0, 4.0, 4.0, 8.0],
            [2.0, 12.0, 4.0, 8.0],
            [6.0, 12.0, 4.0, 8.0],
            [10.0, 12.0, 4.0, 8.0],
        ]
    )
    torch.testing.assert_close(got, expected, atol=0, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_dtype_follows_request(dtype: torch.dtype) -> None:
    gen = MlvlPointGenerator(strides=[8], offset=0.5)
    assert gen.grid_priors([(3, 3)], dtype=dtype)[0].dtype == dtype


def test_mmdet_sparse_prior_cases() -> None:
    """mmdet's ``test_sparse_prior`` (points part): sparse priors equal the indexed grid."""
    gen = MlvlPointGenerator(strides=[4, 10], offset=0)
    idxs = torch.tensor([0, 2, 4, 5, 6, 9])
    sizes = [(3, 5), (6, 4)]
    grid = gen.grid_priors(featmap_sizes=sizes, with_stride=False, device="cpu")
    for level in range(2):
        sparse = gen.sparse_priors(idxs, sizes[level], level_idx=level, device="cpu")
        assert not sparse.is_cuda
        assert (sparse == grid[level][idxs]).all()


def test_valid_flags_follow_pad_shape() -> None:
    gen = MlvlPointGenerator(strides=[8, 16])
    flags = gen.valid_flags([(4, 5), (2, 3)], pad_shape=(17, 24, 3))
    # level 0: ceil(17/8)=3 rows, ceil(24/8)=3 cols; level 1: ceil(17/16)=2, ceil(24/16)=2
    assert flags[0].view(4, 5)[:3, :3].all() and flags[0].sum() == 9
    assert flags[1].view(2, 3)[:2, :2].all() and flags[1].sum() == 4
    assert flags[0].dtype == torch.bool


def test_valid_size_larger_than_feature_map_is_an_error() -> None:
    with pytest.raises(ValueError, match="exceeds the feature map size"):
        MlvlPointGenerator(strides=[8]).single_level_valid_flags((2, 2), (3, 2))


def test_legacy_point_generator() -> None:
    gen = PointGenerator()
    pts = gen.grid_points((2, 2), stride=4, device="cpu")
    expected = torch.tensor([[0, 0, 4], [4, 0, 4], [0, 4, 4], [4, 4, 4]], dtype=torch.float32)
    torch.testing.assert_close(pts, expected, atol=0, rtol=0)
    assert gen.valid_flags((2, 3), (1, 2)).tolist() == [True, True, False, False, False, False]
    assert build_module(dict(type="PointGenerator"), TASK_UTILS).__class__ is PointGenerator

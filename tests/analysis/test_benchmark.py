"""``measure_inference_speed``: warm-up excluded, v2's lines, numbers from a fake clock."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detforge.analysis.benchmark import format_repeats, measure_inference_speed


class _Clocked(nn.Module):
    """Advances a fake clock by ``costs[i]`` seconds on its i-th call."""

    def __init__(self, costs: list[float]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.costs = costs
        self.now = 0.0
        self.calls: list[dict] = []

    def forward(self, img, img_metas, return_loss: bool = False, rescale: bool = True):
        assert not return_loss and rescale
        self.calls.append(dict(img=img, img_metas=img_metas))
        self.now += self.costs[len(self.calls) - 1]
        return [None]


def _loader(n: int):
    return [dict(img=[torch.zeros(1, 3, 4, 4)], img_metas=[[dict(id=i)]]) for i in range(n)]


def test_warmup_is_excluded_and_lines_follow_v2() -> None:
    costs = [1.0] * 5 + [0.1, 0.1, 0.3, 0.3, 0.2, 0.2, 9.0]  # slow warm-up, then 0.2 s mean
    model = _Clocked(costs)
    lines: list[str] = []
    result = measure_inference_speed(
        model, _loader(12), max_iter=11, log_interval=4, print_fn=lines.append,
        timer=lambda: model.now,
    )  # fmt: skip
    assert len(model.calls) == 11  # max_iter stops before the 12th image
    assert result.num_timed == 6
    assert result.fps == pytest.approx(6 / 1.2)
    assert result.ms_per_img == pytest.approx(200)
    assert lines == [
        "Done image [8  / 11], fps: 6.0 img / s, times per image: 166.7 ms / img",  # 3 in 0.5 s
        "Overall fps: 5.0 img / s, times per image: 200.0 ms / img",
    ]


def test_tensor_batches_are_wrapped_and_short_loaders_still_report() -> None:
    model = _Clocked([0.5] * 8)
    batches = [dict(img=torch.zeros(1, 3, 4, 4), img_metas=[dict(id=i)]) for i in range(8)]
    result = measure_inference_speed(
        model, batches, max_iter=2000, print_fn=lambda s: None, timer=lambda: model.now
    )
    assert result.num_timed == 3 and result.fps == pytest.approx(2.0)
    assert isinstance(model.calls[0]["img"], list)  # one augmentation, as the test API wants
    with pytest.raises(ValueError, match="warm-up"):
        measure_inference_speed(_Clocked([1.0] * 5), _loader(5), print_fn=lambda s: None)


def test_repeat_summary_line() -> None:
    assert format_repeats([10.0, 20.0]) == (
        "Overall fps: [10.0, 20.0][15.0] img / s, times per image: [100.0, 50.0][75.0] ms / img"
    )
    # ms from the unrounded fps: 1000 / 7.96 = 125.6 (not 1000 / 8.0 = 125.0),
    # 1000 / 13.3334 = 75.0 (not 1000 / 13.3 = 75.2); means over the rounded values
    assert format_repeats([7.96, 13.3334]) == (
        "Overall fps: [8.0, 13.3][10.7] img / s, times per image: [125.6, 75.0][100.3] ms / img"
    )

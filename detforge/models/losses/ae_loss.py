"""Associative embedding loss (Newell et al. 2017) as CornerNet uses it, MMDetection v2 numerics.

Every ground-truth box has a top-left and a bottom-right corner cell; ``e_tl``/``e_br`` are the
predicted embeddings there and ``e = (e_tl + e_br) / 2``. Per image with ``N`` boxes:

* pull: ``sum((e_tl - e)² + (e_br - e)²) / N`` draws the two corners of a box together;
* push: ``sum_{i != j} relu(1 - |e_i - e_j|) / (N (N - 1))`` (summed over the embedding
  channels inside the absolute value) drives boxes apart; 0 with fewer than two boxes.

Both are multiplied by their weights and summed over the images (not averaged).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from detforge.registry import MODELS

__all__ = ["AssociativeEmbeddingLoss", "ae_loss_per_image"]

#: per box ``((tl_y, tl_x), (br_y, br_x))``: its corner cells on the feature map
CornerMatch = Sequence[Sequence[Sequence[int]]]


def ae_loss_per_image(
    tl_preds: torch.Tensor, br_preds: torch.Tensor, match: CornerMatch
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pull, push)`` of one image's embedding maps ``[C, H, W]`` (module docstring).

    Example:
        >>> tl = torch.zeros(1, 2, 2); br = torch.zeros(1, 2, 2)
        >>> tl[0, 0, 0], br[0, 1, 1] = 1.0, 3.0
        >>> [round(float(v), 4) for v in ae_loss_per_image(tl, br, [((0, 0), (1, 1))])]
        [2.0, 0.0]
    """
    if len(match) == 0:
        zero = tl_preds.sum() * 0.0
        return zero, zero
    tl_list, br_list, mean_list = [], [], []
    for (tl_y, tl_x), (br_y, br_x) in match:
        tl_e = tl_preds[:, tl_y, tl_x].view(-1, 1)
        br_e = br_preds[:, br_y, br_x].view(-1, 1)
        tl_list.append(tl_e)
        br_list.append(br_e)
        mean_list.append((tl_e + br_e) / 2.0)
    tl_all, br_all, means = torch.cat(tl_list), torch.cat(br_list), torch.cat(mean_list)
    n, m = tl_all.size()
    pull = ((tl_all - means).pow(2) + (br_all - means).pow(2)).sum() / n
    if n == 1:
        return pull, tl_preds.sum() * 0.0
    margin = 1  # CornerNet's setting (section 3.3 of the paper)
    conf = means.expand((n, n, m)).permute(1, 0, 2) - means
    off_diagonal = 1 - torch.eye(n).type_as(means)
    conf = off_diagonal * (margin - conf.sum(-1).abs())
    return pull, F.relu(conf).sum() / (n * (n - 1))


@MODELS.register_module()
class AssociativeEmbeddingLoss(nn.Module):
    """Pull and push losses of corner embeddings (``mmdet``'s ``AssociativeEmbeddingLoss``).

    Args:
        pull_weight: Weight of the pull loss.
        push_weight: Weight of the push loss.

    Example:
        >>> loss = AssociativeEmbeddingLoss(pull_weight=0.5, push_weight=0.5)
        >>> pull, push = loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2),
        ...                   [[((0, 0), (1, 1)), ((0, 1), (1, 1))]])
        >>> float(pull), float(push)
        (0.0, 0.5)
    """

    def __init__(self, pull_weight: float = 0.25, push_weight: float = 0.25) -> None:
        super().__init__()
        self.pull_weight = pull_weight
        self.push_weight = push_weight

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, match: Sequence[CornerMatch]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pull, push)`` summed over the images of the top-left ``pred`` and bottom-right
        ``target`` embedding maps ``[B, C, H, W]`` with the corner cells ``match``."""
        if len(match) != pred.size(0):
            raise ValueError(
                f"AssociativeEmbeddingLoss: {len(match)} corner matches for {pred.size(0)} images"
            )
        pull_all: torch.Tensor = pred.new_zeros(())
        push_all: torch.Tensor = pred.new_zeros(())
        for i in range(pred.size(0)):
            pull, push = ae_loss_per_image(pred[i], target[i], match[i])
            pull_all = pull_all + self.pull_weight * pull
            push_all = push_all + self.push_weight * push
        return pull_all, push_all

"""Load MMDetection 3.x DETR / Deformable DETR checkpoints: their keys renamed to v2.28's.

3.x moved DETR's input projection into a ``ChannelMapper`` neck and the transformer, the query
embedding and Deformable DETR's level embedding and reference-point layer from
``bbox_head.transformer`` onto the detector, and replaced mmcv's generic layers
(``attentions.N``, ``ffns.N``) with named ones (``self_attn``, ``cross_attn``, ``ffn``). Every
tensor keeps its shape. The map (``i`` a layer index, ``*`` the unchanged rest, ``T`` =
``bbox_head.transformer``):

- ``neck.convs.0.conv.*`` (DETR only) → ``bbox_head.input_proj.*``;
- ``{encoder,decoder}.layers.i.self_attn.*`` → ``T.{encoder,decoder}.layers.i.attentions.0.*``;
- ``decoder.layers.i.cross_attn.*`` → ``T.decoder.layers.i.attentions.1.*``;
- ``{encoder,decoder}.layers.i.ffn.*`` → ``T.{encoder,decoder}.layers.i.ffns.0.*``;
- other ``encoder.*``, ``decoder.*`` (norms, post_norm) → ``T.encoder.*``, ``T.decoder.*``;
- ``query_embedding.weight`` → ``bbox_head.query_embedding.weight``;
- ``level_embed`` → ``T.level_embeds``; ``reference_points_fc.*`` → ``T.reference_points.*``;
- ``memory_trans_fc.*``, ``memory_trans_norm.*`` → ``T.enc_output.*``, ``T.enc_output_norm.*``;
- ``pos_trans_fc.*``, ``pos_trans_norm.*`` → ``T.pos_trans.*``, ``T.pos_trans_norm.*``;
- ``backbone.*``, ``bbox_head.*`` and Deformable DETR's ``neck.*`` unchanged.

Use::

    state = torch.load(path, weights_only=True)['state_dict']
    model.load_state_dict(convert_v3_detr_keys(state))
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping

import torch

__all__ = ["convert_v3_detr_keys"]

_T = "bbox_head.transformer."
_LAYER = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.(self_attn|cross_attn|ffn)\.(.*)$")
_MODULE = {"self_attn": "attentions.0", "cross_attn": "attentions.1", "ffn": "ffns.0"}
_PREFIXES = (
    ("level_embed", _T + "level_embeds"),
    ("reference_points_fc.", _T + "reference_points."),
    ("memory_trans_fc.", _T + "enc_output."),
    ("memory_trans_norm.", _T + "enc_output_norm."),
    ("pos_trans_fc.", _T + "pos_trans."),
    ("pos_trans_norm.", _T + "pos_trans_norm."),
    ("query_embedding.", "bbox_head.query_embedding."),
    ("encoder.", _T + "encoder."),
    ("decoder.", _T + "decoder."),
)


def convert_v3_detr_keys(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """A 3.x DETR or Deformable DETR state dict with v2.28's keys (table in the module docstring).

    Pass a whole state dict: DETR is recognised by having no ``level_embed``, and its
    single-level ``neck.convs.0.conv``
    becomes the head's ``input_proj``.

    Example:
        >>> sd = convert_v3_detr_keys({'decoder.layers.1.cross_attn.attn.in_proj_bias': 0,
        ...                            'neck.convs.0.conv.bias': 1})
        >>> for key in sd: print(key)
        bbox_head.transformer.decoder.layers.1.attentions.1.attn.in_proj_bias
        bbox_head.input_proj.bias
    """
    deformable = "level_embed" in state_dict
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        out[_v2_key(key, deformable)] = value
    return out


def _v2_key(key: str, deformable: bool) -> str:
    if not deformable and key.startswith("neck.convs.0.conv."):
        return "bbox_head.input_proj." + key[len("neck.convs.0.conv.") :]
    match = _LAYER.match(key)
    if match:
        part, index, module, rest = match.groups()
        return f"{_T}{part}.layers.{index}.{_MODULE[module]}.{rest}"
    for old, new in _PREFIXES:
        if key.startswith(old):
            return new + key[len(old) :]
    return key

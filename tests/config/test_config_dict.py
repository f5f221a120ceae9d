"""Tests for ConfigDict (mmcv 1.x / addict semantics)."""

from __future__ import annotations

import copy
import pickle
from collections import namedtuple

import pytest

from detforge.config.config_dict import ConfigDict


def _sample() -> ConfigDict:
    return ConfigDict(
        model=dict(
            type="RetinaNet",
            backbone=dict(type="ResNet", depth=50, out_indices=(0, 1, 2, 3)),
            neck=dict(type="FPN", in_channels=[256, 512, 1024, 2048], num_outs=5),
        ),
        data=dict(train=dict(pipeline=[dict(type="LoadImageFromFile"), dict(type="Resize")])),
        pairs=(dict(a=1), [dict(b=2)]),
    )


def _assert_no_plain_dicts(value):
    """Every dict reachable through dicts, lists and tuples is a ConfigDict."""
    if isinstance(value, dict):
        assert type(value) is ConfigDict
        for v in value.values():
            _assert_no_plain_dicts(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _assert_no_plain_dicts(v)


def _assert_only_plain(value):
    """No ConfigDict is reachable; dict/list/tuple are the builtin types."""
    if isinstance(value, dict):
        assert type(value) is dict
        for v in value.values():
            _assert_only_plain(v)
    elif isinstance(value, list):
        assert type(value) is list
        for v in value:
            _assert_only_plain(v)
    elif isinstance(value, tuple):
        assert type(value) is tuple
        for v in value:
            _assert_only_plain(v)


# --------------------------------------------------------------------------- conversion


def test_nested_dicts_become_config_dicts_on_construction():
    cfg = _sample()
    _assert_no_plain_dicts(cfg)
    assert type(cfg.model.backbone) is ConfigDict
    assert type(cfg.data.train.pipeline[0]) is ConfigDict
    assert type(cfg.pairs) is tuple
    assert type(cfg.pairs[0]) is ConfigDict
    assert type(cfg.pairs[1][0]) is ConfigDict
    assert cfg.model.backbone.depth == 50
    assert cfg.data.train.pipeline[1].type == "Resize"
    assert cfg.pairs[1][0].b == 2
    assert type(cfg.model.backbone.out_indices) is tuple


def test_construction_from_mapping_and_kwargs():
    cfg = ConfigDict({"a": {"x": 1}}, b=[{"y": 2}])
    assert cfg.a.x == 1
    assert cfg.b[0].y == 2
    assert type(cfg.b[0]) is ConfigDict


def test_construction_from_pairs():
    cfg = ConfigDict([("a", {"x": 1})])
    assert type(cfg.a) is ConfigDict


@pytest.mark.parametrize(
    "value",
    [
        {"x": {"y": 1}},
        [{"x": 1}, [{"y": 2}]],
        ({"x": 1}, ({"y": 2},)),
        [({"x": {"z": 3}},)],
    ],
    ids=["dict", "list", "tuple", "mixed"],
)
def test_attribute_assignment_converts(value):
    cfg = ConfigDict()
    cfg.item = value
    _assert_no_plain_dicts(cfg)
    expected_type = ConfigDict if isinstance(value, dict) else type(value)
    assert type(cfg.item) is expected_type
    assert cfg["item"] == value


@pytest.mark.parametrize(
    "value",
    [
        {"x": {"y": 1}},
        [{"x": 1}, [{"y": 2}]],
        ({"x": 1}, ({"y": 2},)),
    ],
    ids=["dict", "list", "tuple"],
)
def test_item_assignment_converts(value):
    cfg = ConfigDict()
    cfg["item"] = value
    _assert_no_plain_dicts(cfg)
    assert cfg.item == value


def test_nested_attribute_assignment_converts():
    cfg = _sample()
    cfg.model.neck.extra = {"conv": {"k": 3}}
    assert type(cfg.model.neck.extra.conv) is ConfigDict
    assert cfg["model"]["neck"]["extra"]["conv"]["k"] == 3


def test_setdefault_converts():
    cfg = ConfigDict()
    value = cfg.setdefault("a", {"b": 1})
    assert type(value) is ConfigDict
    assert value is cfg.a
    assert cfg.setdefault("a", {"c": 2}) == {"b": 1}


def test_namedtuple_is_kept():
    point = namedtuple("Point", "x y")
    cfg = ConfigDict(p=point({"a": 1}, 2))
    assert type(cfg.p) is point
    assert cfg.to_dict()["p"] == point({"a": 1}, 2)


def test_other_values_are_left_alone():
    marker = object()
    cfg = ConfigDict(a=marker, b={1, 2}, c="s", d=None)
    assert cfg.a is marker
    assert cfg.b == {1, 2}
    assert cfg.d is None


# --------------------------------------------------------------------------- missing keys


def test_missing_attribute_raises_attribute_error_with_hint():
    cfg = _sample()
    with pytest.raises(AttributeError) as info:
        _ = cfg.model.neck.num_out
    message = str(info.value)
    assert "num_out" in message
    assert "did you mean 'num_outs'" in message
    assert not isinstance(info.value, KeyError)


def test_missing_attribute_without_close_key_has_no_hint():
    cfg = ConfigDict(a=1)
    with pytest.raises(AttributeError) as info:
        _ = cfg.completely_different
    assert "did you mean" not in str(info.value)


def test_missing_item_raises_key_error():
    cfg = _sample()
    with pytest.raises(KeyError):
        _ = cfg["missing"]
    with pytest.raises(KeyError):
        _ = cfg.model["num_outs"]


def test_no_auto_vivification():
    cfg = ConfigDict()
    with pytest.raises(AttributeError):
        _ = cfg.a.b
    assert "a" not in cfg
    assert len(cfg) == 0


def test_getattr_default_and_hasattr():
    cfg = ConfigDict(a=1)
    assert getattr(cfg, "b", "default") == "default"
    assert hasattr(cfg, "a")
    assert not hasattr(cfg, "b")


@pytest.mark.parametrize("name", ["items", "keys", "values", "update", "get", "pop", "copy"])
def test_setting_a_dict_method_name_raises(name):
    cfg = ConfigDict()
    with pytest.raises(AttributeError, match=name):
        setattr(cfg, name, 1)
    assert name not in cfg
    assert callable(getattr(cfg, name))


def test_dict_method_name_as_item_is_allowed():
    cfg = ConfigDict()
    cfg["items"] = 3
    assert cfg["items"] == 3
    assert callable(cfg.items)


# --------------------------------------------------------------------------- update


def test_update_merges_recursively():
    cfg = ConfigDict({"a": {"x": 1}})
    cfg.update({"a": {"y": 2}})
    assert cfg == {"a": {"x": 1, "y": 2}}
    assert type(cfg.a) is ConfigDict


def test_update_merges_deeply_and_with_kwargs():
    cfg = _sample()
    cfg.update({"model": {"neck": {"num_outs": 6}}}, data={"train": {"samples": 2}})
    assert cfg.model.neck.num_outs == 6
    assert cfg.model.neck.in_channels == [256, 512, 1024, 2048]
    assert cfg.model.backbone.depth == 50
    assert cfg.data.train.samples == 2
    assert cfg.data.train.pipeline[0].type == "LoadImageFromFile"


def test_update_replaces_non_dict_values():
    cfg = ConfigDict(a={"x": 1}, b=[1], c=1)
    cfg.update(a=5, b=[2], c={"z": {"w": 1}})
    assert cfg == {"a": 5, "b": [2], "c": {"z": {"w": 1}}}
    assert type(cfg.c.z) is ConfigDict


def test_update_replaces_lists_instead_of_merging():
    cfg = ConfigDict(a=[{"x": 1}, {"y": 2}])
    cfg.update(a=[{"z": 3}])
    assert cfg.a == [{"z": 3}]


def test_update_dict_over_scalar():
    cfg = ConfigDict(a=1)
    cfg.update(a={"x": {"y": 1}})
    assert type(cfg.a.x) is ConfigDict


def test_update_too_many_positional_arguments():
    with pytest.raises(TypeError):
        ConfigDict().update({}, {})


# --------------------------------------------------------------------------- to_dict / copies


def test_to_dict_returns_plain_containers():
    cfg = _sample()
    plain = cfg.to_dict()
    _assert_only_plain(plain)
    assert plain == cfg
    assert type(plain["pairs"]) is tuple
    assert type(plain["model"]["backbone"]["out_indices"]) is tuple


def test_to_dict_is_a_deep_copy():
    cfg = _sample()
    plain = cfg.to_dict()
    plain["model"]["neck"]["in_channels"].append(4096)
    plain["model"]["backbone"]["depth"] = 101
    plain["data"]["train"]["pipeline"][0]["type"] = "Changed"
    assert cfg.model.neck.in_channels == [256, 512, 1024, 2048]
    assert cfg.model.backbone.depth == 50
    assert cfg.data.train.pipeline[0].type == "LoadImageFromFile"
    assert plain["model"] is not cfg.model


def test_copy_is_shallow_and_a_config_dict():
    cfg = _sample()
    for shallow in (cfg.copy(), copy.copy(cfg)):
        assert type(shallow) is ConfigDict
        assert shallow == cfg
        assert shallow is not cfg
        assert shallow.model is cfg.model
        shallow.new_key = 1
        assert "new_key" not in cfg
    cfg.copy().model.backbone.depth = 18
    assert cfg.model.backbone.depth == 18


def test_deepcopy_preserves_equality_and_types():
    cfg = _sample()
    clone = copy.deepcopy(cfg)
    assert clone == cfg
    assert type(clone) is ConfigDict
    _assert_no_plain_dicts(clone)
    assert type(clone.pairs) is tuple
    assert clone.model is not cfg.model
    assert clone.model.neck.in_channels is not cfg.model.neck.in_channels
    clone.model.backbone.depth = 101
    assert cfg.model.backbone.depth == 50


def test_deepcopy_keeps_shared_references_shared():
    shared = ConfigDict(x=1)
    cfg = ConfigDict(a=shared)
    cfg["b"] = shared
    clone = copy.deepcopy(cfg)
    assert clone.a is clone.b
    assert clone.a is not shared


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(protocol):
    cfg = _sample()
    restored = pickle.loads(pickle.dumps(cfg, protocol=protocol))
    assert restored == cfg
    assert type(restored) is ConfigDict
    _assert_no_plain_dicts(restored)
    assert type(restored.pairs) is tuple
    assert type(restored.model.backbone.out_indices) is tuple
    assert restored.model.neck.num_outs == 5


# --------------------------------------------------------------------------- deletion, dir


def test_del_by_attribute():
    cfg = _sample()
    del cfg.pairs
    assert "pairs" not in cfg
    del cfg.model.neck
    assert "neck" not in cfg.model
    assert cfg.model.backbone.depth == 50


def test_del_missing_attribute_raises_attribute_error():
    cfg = ConfigDict(a=1)
    with pytest.raises(AttributeError):
        del cfg.b
    assert cfg == {"a": 1}


def test_del_by_item():
    cfg = ConfigDict(a=1, b=2)
    del cfg["a"]
    assert cfg == {"b": 2}
    with pytest.raises(KeyError):
        del cfg["a"]


def test_dir_lists_keys():
    cfg = ConfigDict(alpha=1, beta=2)
    names = dir(cfg)
    assert "alpha" in names
    assert "beta" in names
    assert "items" in names


def test_is_a_dict_and_compares_with_dicts():
    cfg = ConfigDict(a={"b": 1})
    assert isinstance(cfg, dict)
    assert cfg == {"a": {"b": 1}}
    assert dict.__eq__({"a": {"b": 1}}, cfg)


def test_or_operators_convert_and_none_is_skipped():
    cfg = ConfigDict(a=1)
    cfg |= {"b": {"x": 1}}
    assert isinstance(cfg["b"], ConfigDict) and cfg.b.x == 1
    merged = cfg | {"c": {"y": 2}}
    assert isinstance(merged, ConfigDict) and isinstance(merged.c, ConfigDict)
    assert "c" not in cfg
    assert ConfigDict(None) == {}

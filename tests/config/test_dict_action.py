"""Tests for DictAction (``--cfg-options``) and parse_cfg_value, against mmcv 1.x's grammar."""

from __future__ import annotations

import argparse

import pytest

from detforge.config.dict_action import DictAction, parse_cfg_value
from detforge.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detforge-test")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)
    return parser


def _parse(*words: str) -> dict:
    return _parser().parse_args(["--cfg-options", *words]).cfg_options


def test_mmcv_example_in_one_call():
    # mmcv's own test_dict_action, each value one argv word as a shell would pass it
    options = _parse(
        "item2.a=1",
        "item2.b=[(a,b), [1,2], false]",
        "item3=1,2",
        "item4=none",
        "item5=None",
    )
    assert options == {
        "item2.a": 1,
        "item2.b": [("a", "b"), [1, 2], False],
        "item3": [1, 2],
        "item4": "none",
        "item5": None,
    }
    assert type(options["item2.b"][0]) is tuple
    assert type(options["item2.b"][1]) is list


@pytest.mark.parametrize(
    ("word", "key", "expected"),
    [
        ("item2.a=1", "item2.a", 1),
        ("item2.b=[(a,b), [1,2], false]", "item2.b", [("a", "b"), [1, 2], False]),
        ("item3=1,2", "item3", [1, 2]),
        ("item4=none", "item4", "none"),
        ("item5=None", "item5", None),
        ("item6=(1,2,3)", "item6", (1, 2, 3)),
        ("item7=[[1,2],[3,4]]", "item7", [[1, 2], [3, 4]]),
        ("optimizer.lr=1.5", "optimizer.lr", 1.5),
        ("optimizer.lr=1e-3", "optimizer.lr", 0.001),
        ("x=-2", "x", -2),
        ("flag=true", "flag", True),
        ("flag=TRUE", "flag", True),
        ("flag=False", "flag", False),
        ("flag=fAlSe", "flag", False),
        ("name='abc'", "name", "abc"),
        ('name="abc"', "name", "abc"),
        ("name=abc", "name", "abc"),
        ("name=a b", "name", "ab"),
        ("x=a=b", "x", "a=b"),
        ("x=[]", "x", []),
        ("x=()", "x", ()),
        ("x=", "x", ""),
        ("x=NONE", "x", "NONE"),
        ("x=['a','b']", "x", ["a", "b"]),
        ("x=[1, 2.5, None, true, c]", "x", [1, 2.5, None, True, "c"]),
        ("x=((1,2),[3,(4,)])", "x", ((1, 2), [3, (4,)])),
        (
            "data.train.pipeline.1.img_scale=(1333,800)",
            "data.train.pipeline.1.img_scale",
            (1333, 800),
        ),
    ],
)
def test_single_value(word, key, expected):
    options = _parse(word)
    assert options == {key: expected}
    assert type(options[key]) is type(expected)


def test_nested_container_types():
    value = _parse("x=[(1,[2,(3,4)]),5]")["x"]
    assert value == [(1, [2, (3, 4)]), 5]
    assert type(value[0]) is tuple
    assert type(value[0][1]) is list
    assert type(value[0][1][1]) is tuple


def test_later_word_with_same_key_wins():
    assert _parse("a=1", "a=2") == {"a": 2}


def test_second_option_replaces_the_first():
    parser = _parser()
    args = parser.parse_args(["--cfg-options", "a=1", "b=2", "--cfg-options", "c=3"])
    assert args.cfg_options == {"c": 3}


def test_option_absent_gives_none():
    assert _parser().parse_args([]).cfg_options is None


@pytest.mark.parametrize("word", ["x=[[1,2]", "x=(1,2", "x=[1,2)]"])
def test_imbalanced_brackets_make_the_parser_exit(word, capsys):
    with pytest.raises(SystemExit) as info:
        _parse(word)
    assert info.value.code == 2
    assert "Imbalanced brackets" in capsys.readouterr().err


@pytest.mark.parametrize("word", ["novalue", "=1"])
def test_word_without_key_value_makes_the_parser_exit(word, capsys):
    with pytest.raises(SystemExit) as info:
        _parse(word)
    assert info.value.code == 2
    assert word in capsys.readouterr().err


def test_no_words_makes_the_parser_exit():
    with pytest.raises(SystemExit):
        _parser().parse_args(["--cfg-options"])


@pytest.mark.parametrize("value", ["[[1,2]", "(1,2", "[1,2))"])
def test_parse_cfg_value_imbalanced_raises_config_error(value):
    with pytest.raises(ConfigError, match="Imbalanced brackets"):
        parse_cfg_value(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[(a,b), [1,2], false]", [("a", "b"), [1, 2], False]),
        ("none", "none"),
        ("None", None),
        ("1,2,3", [1, 2, 3]),
        ("'(1, 2)'", (1, 2)),
        ("3", 3),
        ("3.0", 3.0),
    ],
)
def test_parse_cfg_value_directly(value, expected):
    result = parse_cfg_value(value)
    assert result == expected
    assert type(result) is type(expected)


def test_top_level_list_of_tuples_and_stray_closers():
    assert parse_cfg_value("(1,2),(3,4)") == [(1, 2), (3, 4)]
    assert parse_cfg_value("[1,2],[3]") == [[1, 2], [3]]
    with pytest.raises(ConfigError, match="Imbalanced"):
        parse_cfg_value("),(")

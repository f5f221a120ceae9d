"""Tests for the safe literal evaluator and the CFG_OPTIONS environment variable."""

from __future__ import annotations

import pytest

from detforge.config.loading import cfg_options_from_env
from detforge.config.safe_eval import UnsafeExpressionError, safe_literal_eval
from detforge.errors import ConfigError, ConfigTypeError

CFG_OPTIONS_EXAMPLE = (
    '{"optimizer.lr":0.005, '
    '"lr_config":dict(_delete_=True,policy="step",warmup="linear",warmup_iters=500,'
    "warmup_ratio=0.001,step=[8,11]), "
    '"model.neck.in_channels":[256,512,1024,2048], '
    '"train_cfg.rpn_proposal":dict(nms_across_levels=False,nms_pre=2000,nms_post=1000,'
    "max_num=1000,min_bbox_size=0), "
    '"model":dict(pretrained="torchvision://resnet50",backbone=dict(type="ResNet",depth=50,'
    "out_indices=(0,1,2,3),frozen_stages=1))}"
)

CFG_OPTIONS_EXPECTED = {
    "optimizer.lr": 0.005,
    "lr_config": {
        "_delete_": True,
        "policy": "step",
        "warmup": "linear",
        "warmup_iters": 500,
        "warmup_ratio": 0.001,
        "step": [8, 11],
    },
    "model.neck.in_channels": [256, 512, 1024, 2048],
    "train_cfg.rpn_proposal": {
        "nms_across_levels": False,
        "nms_pre": 2000,
        "nms_post": 1000,
        "max_num": 1000,
        "min_bbox_size": 0,
    },
    "model": {
        "pretrained": "torchvision://resnet50",
        "backbone": {
            "type": "ResNet",
            "depth": 50,
            "out_indices": (0, 1, 2, 3),
            "frozen_stages": 1,
        },
    },
}


def test_cfg_options_example_parses_exactly():
    value = safe_literal_eval(CFG_OPTIONS_EXAMPLE)
    assert value == CFG_OPTIONS_EXPECTED
    out_indices = value["model"]["backbone"]["out_indices"]
    assert type(out_indices) is tuple
    assert type(value["lr_config"]["step"]) is list
    assert type(value["lr_config"]["_delete_"]) is bool
    assert type(value["lr_config"]["warmup_iters"]) is int
    assert type(value["optimizer.lr"]) is float
    assert list(value) == [
        "optimizer.lr",
        "lr_config",
        "model.neck.in_channels",
        "train_cfg.rpn_proposal",
        "model",
    ]


def test_cfg_options_example_from_env():
    value = cfg_options_from_env({"CFG_OPTIONS": "  " + CFG_OPTIONS_EXAMPLE + "\n"})
    assert value == CFG_OPTIONS_EXPECTED
    assert type(value["model"]["backbone"]["out_indices"]) is tuple


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-1", -1),
        ("+2", 2),
        ("-0.5", -0.5),
        ("-1e-3", -0.001),
        ("--1", 1),
        ("[-1, -2.5, 3]", [-1, -2.5, 3]),
        ("[[1, 2], [3, [4, (5, 6)]]]", [[1, 2], [3, [4, (5, 6)]]]),
        ("((1, 2), [3], ())", ((1, 2), [3], ())),
        ("(1,)", (1,)),
        ("(1)", 1),
        ("[]", []),
        ("()", ()),
        ("None", None),
        ("True", True),
        ("False", False),
        ("[None, True, False]", [None, True, False]),
        ("'abc'", "abc"),
        ('"a" "b"', "ab"),
        ("{}", {}),
        ("dict()", {}),
        ("{'a': 1, 2: 'b', (1, 2): None}", {"a": 1, 2: "b", (1, 2): None}),
        ("{'a': {'b': {'c': [1, {'d': -2}]}}}", {"a": {"b": {"c": [1, {"d": -2}]}}}),
        ("dict(a=dict(b=(1, 2)), c={'d': [True]})", {"a": {"b": (1, 2)}, "c": {"d": [True]}}),
        ("  [1, 2]  \n", [1, 2]),
    ],
)
def test_literals(text, expected):
    value = safe_literal_eval(text)
    assert value == expected
    assert type(value) is type(expected)


def test_tuples_stay_tuples_when_nested():
    value = safe_literal_eval("{'a': [(1, 2), {'b': ((3,), [4])}]}")
    assert type(value["a"][0]) is tuple
    assert type(value["a"][1]["b"]) is tuple
    assert type(value["a"][1]["b"][0]) is tuple
    assert type(value["a"][1]["b"][1]) is list


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        ("__import__('os').system('true')", "__import__('os').system('true')"),
        ("().__class__.__bases__", "().__class__.__bases__"),
        ("lambda: 1", "lambda: 1"),
        ("{**x}", "x"),
        ("dict(**{})", "{}"),
        ("dict([('a', 1)])", "[('a', 1)]"),
        ("[x for x in y]", "[x for x in y]"),
        ("1 + 1", "1 + 1"),
        ("open('f')", "open('f')"),
        ("os", "os"),
        ("{'a': os}", "os"),
        ("[1, print(1)]", "print(1)"),
        ("dict(a=eval('1'))", "eval('1')"),
        ("{1, 2}", "{1, 2}"),
        ("1j", "1j"),
        ("b'x'", "b'x'"),
        ("-True", "-True"),
        ("-'a'", "-'a'"),
        ("f'{x}'", "f'{x}'"),
        ("a if b else c", "a if b else c"),
        ("x[0]", "x[0]"),
        ("(y := 1)", "y := 1"),
        ("not 1", "not 1"),
        ("1 < 2", "1 < 2"),
        ("...", "..."),
    ],
)
def test_unsafe_expressions_are_refused(text, offending):
    with pytest.raises(UnsafeExpressionError) as info:
        safe_literal_eval(text, "CFG_OPTIONS")
    message = str(info.value)
    assert offending in message
    assert "CFG_OPTIONS" in message
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("text", ["{'a': 1", "dict(a=)", "1 2", ")", "", "import os"])
def test_syntax_errors_are_refused(text):
    with pytest.raises(UnsafeExpressionError, match="not a valid Python expression"):
        safe_literal_eval(text)


def test_syntax_error_message_contains_the_text():
    with pytest.raises(UnsafeExpressionError) as info:
        safe_literal_eval("{'a': 1", "CFG_OPTIONS")
    assert "{'a': 1" in str(info.value)
    assert "CFG_OPTIONS" in str(info.value)


def test_error_points_at_the_offending_column():
    with pytest.raises(UnsafeExpressionError) as info:
        safe_literal_eval("[1, 2, os]")
    assert "column 8" in str(info.value)
    assert "\n           ^" in str(info.value)


@pytest.mark.parametrize(
    "template",
    [
        "__import__('os').system('touch ' + {p!r})",
        "{{'a': __import__('os').system('touch ' + {p!r})}}",
        "dict(a=[1, __import__('os').system('touch ' + {p!r})])",
        "(lambda: __import__('os').system('touch ' + {p!r}))()",
        "[__import__('os').system('touch ' + {p!r}) for _ in [1]]",
    ],
)
def test_canary_is_never_run(tmp_path, template):
    canary = tmp_path / "canary"
    text = template.format(p=str(canary))
    with pytest.raises(UnsafeExpressionError):
        safe_literal_eval(text)
    with pytest.raises(UnsafeExpressionError):
        cfg_options_from_env({"CFG_OPTIONS": text})
    assert not canary.exists()
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize("environ", [{}, {"CFG_OPTIONS": ""}, {"CFG_OPTIONS": "   \n"}])
def test_cfg_options_from_env_empty_or_missing(environ):
    assert cfg_options_from_env(environ) == {}


def test_cfg_options_from_env_reads_os_environ(monkeypatch):
    monkeypatch.setenv("CFG_OPTIONS", '{"optimizer.lr": 0.02}')
    assert cfg_options_from_env() == {"optimizer.lr": 0.02}
    monkeypatch.delenv("CFG_OPTIONS")
    assert cfg_options_from_env() == {}


@pytest.mark.parametrize("text", ["[1,2]", "1", "'abc'", "None", "(1, 2)", "True"])
def test_cfg_options_from_env_non_dict(text):
    with pytest.raises(ConfigTypeError) as info:
        cfg_options_from_env({"CFG_OPTIONS": text})
    assert "CFG_OPTIONS" in str(info.value)
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("text", ["{1: 2}", "{'': 1}", "{(1, 2): 3}"])
def test_cfg_options_from_env_bad_keys(text):
    with pytest.raises(ConfigTypeError, match="keys"):
        cfg_options_from_env({"CFG_OPTIONS": text})


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "{'a': open('f')}",
        "dict(**{'a': 1})",
        "{'a': 1 + 1}",
    ],
)
def test_cfg_options_from_env_malicious(text):
    with pytest.raises(UnsafeExpressionError) as info:
        cfg_options_from_env({"CFG_OPTIONS": text})
    assert "CFG_OPTIONS" in str(info.value)


@pytest.mark.parametrize("text", ["{{}: 1}", "{(1, [2]): 3}", "dict(a=1, a=2)"])
def test_unhashable_keys_and_repeated_keywords_are_refused(text):
    with pytest.raises(UnsafeExpressionError):
        safe_literal_eval(text)

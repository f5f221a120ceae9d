"""Seeded fuzz cases for everything a user types into a config, and the verdict on each.

Three generators, each a pure function of its seed:

* :func:`override_cases`: ``--cfg-options KEY=VALUE`` words: real config paths of the shipped
  configs, mutated (into a scalar, a string index into a list, an index out of range, empty
  components, ``_base_``/``custom_imports``), with values from the DictAction grammar and broken
  variants of it (missing commas, stray or unbalanced brackets, 1,000-deep nesting);
* :func:`env_cases`: ``CFG_OPTIONS`` dict expressions (literals, ``dict(...)``, and what the
  safe evaluator must refuse: names, calls, lambdas, 1,000-deep unary operators, ...);
* :func:`file_cases`: mutations of real files from ``configs/`` (deleted or duplicated lines,
  wrong value types, typos in keys, unknown keys, broken ``_base_`` paths, syntax errors).

:func:`run_case` (and :func:`run_file_case`, which writes the mutated file into a copy of
``configs/``) loads each case through :func:`detforge.config.load_config` (the entry point of
every command) and, where that succeeds, builds ``cfg.model`` on the ``meta`` device (no
weights, no data). :func:`verdict` says what is wrong with the outcome: nothing when it worked
or failed with one of the project's error types whose message names the culprit.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from detforge.analysis.results import ResultsError
from detforge.config import load_config
from detforge.config.dict_action import parse_cfg_options
from detforge.datasets.issues import DatasetError
from detforge.errors import ConfigError
from detforge.models import build_detector
from detforge.utils.checkpoint import CheckpointError
from detforge.utils.image import ImageLoadError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TOP_CONFIGS = sorted(p for p in CONFIGS.rglob("*.py") if "_base_" not in p.parts)
PROJECT_ERRORS = (ConfigError, DatasetError, CheckpointError, ImageLoadError, ResultsError)
# words too common to show that a message names the culprit
_GENERIC = {"type", "dict", "True", "False", "None", "model", "data", "cfg", "x"}
OVERRIDE_CONFIGS = (
    "faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py",
    "retinanet/retinanet_r50_fpn_1x_coco.py",
    "mask_rcnn/mask_rcnn_r50_fpn_1x_coco.py",
)


@dataclass
class Case:
    """One fuzz input: the config file, the overrides, and what a good error must name."""

    config: Path
    words: list[str] = field(default_factory=list)
    env: str | None = None
    culprits: list[str] = field(default_factory=list)
    label: str = ""
    file_rel: str | None = None
    file_text: str | None = None


# ----------------------------------------------------------------------- config paths


def config_paths(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every dotted path of a merged config (list elements by index), with its value."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return
    for key, inner in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        yield path, inner
        yield from config_paths(inner, path)


_WORDS = ["abc", "x", "None", "none", "true", "False", "nms", "SGD", "FPNN", "", "1e-3", "-2"]
_BROKEN = [
    "[(1333,800)(1333,640)]",
    "(1333,800)(1333,640)",
    "[1,2",
    "1,2]",
    ")(",
    "[,]",
    "[1,,2]",
    ",",
    "a(1,2)",
    "(1,2)a",
    "[]]",
    "((",
    "'[1,2]",
    "[(1,2),(3,4)",
]


def _value_text(rng: random.Random, real: Any) -> str:
    roll = rng.random()
    if roll < 0.15:
        return rng.choice(_WORDS)
    if roll < 0.3:
        return rng.choice(_BROKEN)
    if roll < 0.38:
        depth = rng.choice([20, 150, 1000])
        opener, closer = rng.choice([("[", "]"), ("(", ")")])
        return opener * depth + "1" + closer * rng.choice([depth, depth - 1])
    if roll < 0.5:
        return str(rng.choice([0, 1, -1, 7, 10**30, 0.5, 1e308, -0.0]))
    text = str(real).replace(" ", "")
    if roll < 0.75 or not text:
        return text
    # delete or duplicate one character of the real value (often a comma or a bracket)
    i = rng.randrange(len(text))
    return text[:i] + text[i + 1 :] if rng.random() < 0.5 else text[:i] + text[i] + text[i:]


def _mutate_key(rng: random.Random, path: str) -> str:
    parts = path.split(".")
    roll = rng.random()
    if roll < 0.35:
        return path
    if roll < 0.45:
        return path + rng.choice([".x", ".0", ".0.x", ".type"])
    if roll < 0.55:
        digits = [i for i, p in enumerate(parts) if p.isdigit()]
        if digits:
            i = rng.choice(digits)
            parts[i] = rng.choice(["x", "-1", "99", "1.5", ""])
            return ".".join(parts)
        return path + ".99.x"
    if roll < 0.65:
        i = rng.randrange(len(parts))
        word = parts[i]
        if len(word) > 2:
            j = rng.randrange(len(word))
            parts[i] = word[:j] + word[j + 1 :]
        return ".".join(parts)
    if roll < 0.72:
        return rng.choice(
            ["_base_", "_base_.x", "custom_imports", "custom_imports.imports", "filename", "text"]
        )
    if roll < 0.8:
        i = rng.randrange(len(parts) + 1)
        return ".".join([*parts[:i], "", *parts[i:]])
    if roll < 0.9 and len(parts) > 1:
        return ".".join(parts[:-1])
    return path + "." + rng.choice(["iou_threshol", "nonexistent", "0", "_delete_"])


def override_cases(seed: int, count: int) -> list[Case]:
    """``count`` seeded ``--cfg-options`` cases (one to three ``KEY=VALUE`` words each)."""
    rng = random.Random(seed)
    tables = {}
    for name in OVERRIDE_CONFIGS:
        raw = load_config(CONFIGS / name, environ={}).raw.to_dict()
        tables[name] = list(config_paths(raw))
    cases = []
    for _ in range(count):
        name = rng.choice(OVERRIDE_CONFIGS)
        words = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            path, value = rng.choice(tables[name])
            key = _mutate_key(rng, path)
            words.append(f"{key}={_value_text(rng, value)}")
        keys = [w.partition("=")[0] for w in words]
        cases.append(Case(CONFIGS / name, words=words, culprits=keys, label=" ".join(words)))
    return cases


# ---------------------------------------------------------------------- CFG_OPTIONS


_BAD_EXPRESSIONS = [
    "__import__('os').system('true')",
    "lambda: 1",
    "open('x')",
    "[i for i in range(3)]",
    "{1, 2}",
    "b'abc'",
    "f'{1}'",
    "1 + 2",
    "a.b",
    "-'x'",
    "not 1",
    "dict(**x)",
    "dict(1, 2)",
    "{**x}",
    "...",
    "1j",
]


def _literal(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 2 or roll < 0.4:
        return rng.choice(["1", "0.5", "-3", "None", "True", "'abc'", '"nms"', "[]", "()"])
    if roll < 0.55:
        return "[" + ", ".join(_literal(rng, depth + 1) for _ in range(rng.randrange(3))) + "]"
    if roll < 0.65:
        return "(" + ", ".join(_literal(rng, depth + 1) for _ in range(rng.randrange(1, 3))) + ",)"
    if roll < 0.8:
        keys = rng.sample(["type", "lr", "x", "_delete_", "iou_threshold", "_base_"], 2)
        return "dict(" + ", ".join(f"{k}={_literal(rng, depth + 1)}" for k in keys) + ")"
    if roll < 0.9:
        return "{" + f"'a': {_literal(rng, depth + 1)}" + "}"
    if roll < 0.95:
        return rng.choice(_BAD_EXPRESSIONS)
    return rng.choice(["-", "+", "~"]) * rng.choice([3, 200, 1000]) + "1"


def env_cases(seed: int, count: int) -> list[Case]:
    """``count`` seeded ``CFG_OPTIONS`` dict expressions."""
    rng = random.Random(seed)
    name = OVERRIDE_CONFIGS[0]
    raw = load_config(CONFIGS / name, environ={}).raw.to_dict()
    table = list(config_paths(raw))
    cases = []
    for _ in range(count):
        roll = rng.random()
        keys = [_mutate_key(rng, rng.choice(table)[0]) for _ in range(rng.choice([1, 2, 3]))]
        if roll < 0.1:
            text = rng.choice([*_BAD_EXPRESSIONS, "[1, 2]", "'x'", "{1: 2}", "{'': 1}", "{"])
        elif roll < 0.2:  # a key and one of its children: the first value may be no dict
            key = keys[0]
            text = f"{{{key!r}: {_literal(rng)}, '{key}.lr': 1}}"
            keys = [key, f"{key}.lr"]
        elif roll < 0.3:
            text = "(" * rng.choice([5, 300]) + "{'a': 1}" + ")" * rng.choice([5, 300])
        else:
            text = "{" + ", ".join(f"{k!r}: {_literal(rng)}" for k in keys) + "}"
        cases.append(Case(CONFIGS / name, env=text, culprits=["CFG_OPTIONS", *keys], label=text))
    return cases


# ---------------------------------------------------------------------- config files


def _bases(path: Path) -> list[Path]:
    """``path`` and every file of its ``_base_`` chain."""
    text = path.read_text()
    found = [path]
    match = re.search(r"^_base_\s*=\s*(\[.*?\]|'[^']*'|\"[^\"]*\")", text, re.S | re.M)
    if match:
        for rel in re.findall(r"['\"]([^'\"]+\.py)['\"]", match.group(1)):
            found.extend(_bases((path.parent / rel).resolve()))
    return found


_VALUE = re.compile(r"(?<=[=\[(,:]) ?('[^']*'|-?\d+\.?\d*(?:e-?\d+)?|True|False|None)")
_KEY = re.compile(r"\b([a-z_][a-z0-9_]*)=")


def _mutate_line(rng: random.Random, line: str) -> tuple[str, list[str]]:
    """One mutated line and the words of it an error message may name."""
    names = _KEY.findall(line) + re.findall(r"'([^']+)'", line)
    roll = rng.random()
    if roll < 0.3 and _VALUE.search(line):
        spots = list(_VALUE.finditer(line))
        m = rng.choice(spots)
        new = rng.choice(["'abc'", "-1", "0", "None", "[]", "dict()", "(1, 2)", "1.5", "True"])
        return line[: m.start(1)] + new + line[m.end(1) :], names
    if roll < 0.5 and _KEY.search(line):
        m = rng.choice(list(_KEY.finditer(line)))
        word = m.group(1)
        typo = word[:-1] if len(word) > 3 and rng.random() < 0.5 else word + "s"
        return line[: m.start(1)] + typo + line[m.end(1) :], [*names, typo]
    if roll < 0.6 and "dict(" in line:
        return line.replace("dict(", "dict(unknown_key=1, ", 1), [*names, "unknown_key"]
    if roll < 0.7 and ".py'" in line:
        return line.replace(".py'", "_missing.py'", 1), [*names, "_missing.py"]
    if roll < 0.8:
        i = rng.randrange(len(line) + 1)
        junk = rng.choice(["(", ")", ",", ":", "=", "]", "'", "[", "dict("])
        return line[:i] + junk + line[i:], names
    return line, names


def file_cases(seed: int, count: int) -> list[Case]:
    """``count`` seeded mutations of real config files (run by :func:`run_file_case`)."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        top = rng.choice(TOP_CONFIGS)
        target = rng.choice(_bases(top))
        lines = target.read_text().splitlines()
        mutated = list(lines)
        changed: list[str] = [target.name]
        for _ in range(rng.choice([1, 1, 2])):
            i = rng.randrange(len(mutated))
            roll = rng.random()
            if roll < 0.25:
                changed += _KEY.findall(mutated[i]) + re.findall(r"'([^']+)'", mutated[i])
                del mutated[i]
            elif roll < 0.35:
                mutated.insert(i, mutated[i])
            else:
                mutated[i], names = _mutate_line(rng, mutated[i])
                changed += names
            if not mutated:
                break
        rel = target.relative_to(CONFIGS)
        cases.append(
            Case(
                top,
                culprits=[w for w in changed if w not in _GENERIC],
                label=f"{rel}: " + "\n".join(sorted(set(mutated) - set(lines)))[:200],
                file_rel=str(rel),
                file_text="\n".join(mutated) + "\n",
            )
        )
    return cases


def _changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Config paths where ``new`` differs from ``old`` (the culprits of a mutated file)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in old.keys() | new.keys():
            here = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                found.append(here)
            else:
                found += _changed_paths(old[key], new[key], here)
        return found
    if isinstance(old, list | tuple) and isinstance(new, list | tuple) and len(old) == len(new):
        return [
            p
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for p in _changed_paths(a, b, f"{prefix}.{i}")
        ]
    return [] if old == new else [prefix]


_ORIGINALS: dict[Path, dict[str, Any]] = {}


def _original(config: Path) -> dict[str, Any]:
    """The unmutated config as loaded (cached)."""
    if config not in _ORIGINALS:
        _ORIGINALS[config] = load_config(config, environ={}).cfg.to_dict()
    return _ORIGINALS[config]


def run_file_case(tmp: Path, case: Case) -> BaseException | None:
    """Write ``configs/`` into ``tmp`` with the case's mutated file, load and build the top
    config, put the file back. The config paths the mutation changed join the culprits."""
    assert case.file_rel is not None and case.file_text is not None
    if not (tmp / "configs").is_dir():
        shutil.copytree(CONFIGS, tmp / "configs")
    original = _original(case.config)
    target = tmp / "configs" / case.file_rel
    target.write_text(case.file_text)
    try:
        cfg = load_config(tmp / "configs" / case.config.relative_to(CONFIGS), environ={}).cfg
        case.culprits += _changed_paths(original, cfg.to_dict())
        _build(cfg, original)
    except Exception as exc:  # the verdict is the point
        return exc
    finally:
        shutil.copyfile(CONFIGS / case.file_rel, target)
    return None


# --------------------------------------------------------------------------- running


def _build(cfg: Any, original: dict[str, Any]) -> None:
    """Build ``cfg.model`` unless it is the unmutated config's model (which builds)."""
    if "model" not in cfg or cfg.model == original.get("model"):
        return
    with torch.device("meta"):  # no weights: fast, and nothing is initialised
        build_detector(cfg.model)


def run_case(case: Case) -> BaseException | None:
    """Load the case as every command does and build its model; the exception, if any."""
    try:
        options = parse_cfg_options(case.words) if case.words else None
        environ = {} if case.env is None else {"CFG_OPTIONS": case.env}
        cfg = load_config(case.config, cfg_options=options, environ=environ).cfg
        _build(cfg, _original(case.config))
    except Exception as exc:  # the verdict is the point
        return exc
    return None


def _names(message: str, culprit: str) -> bool:
    """Whether ``message`` names ``culprit`` (an option key, config path, file or word)."""
    if not culprit:
        return False
    if culprit in message:
        return True
    parts = culprit.split(".")
    if len(parts) < 2:
        return False
    # a dotted prefix of two or more components: the path of the component that failed
    if any(".".join(parts[:n]) in message for n in range(2, len(parts))):
        return True
    # the parent and the quoted key: "model: the config dict has no 'type' key"
    if ".".join(parts[:-1]) in message and re.search(rf"'{re.escape(parts[-1])}'", message):
        return True
    if re.search(rf"\b{re.escape(parts[-2])}\W+{re.escape(parts[-1])}\b", message):
        return True  # "model: type must be a str ..."
    # a component of the key as a word: "model: unexpected key 'rpn_hea'", or a head's view
    # of its own train_cfg ("model.roi_head.train_cfg.sampler: ...")
    words = [p for p in parts[1:] if not p.isdigit() and p not in _GENERIC]
    return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", message) for w in words)


def verdict(exc: BaseException | None, case: Case) -> str | None:
    """``None`` when the outcome is fine, else what is wrong with it."""
    if exc is None:
        return None
    message = str(exc)
    if not isinstance(exc, PROJECT_ERRORS):
        return f"{type(exc).__name__} (not a project error): {message[:200]}"
    if any(_names(message, culprit) for culprit in case.culprits):
        return None
    return f"{type(exc).__name__} names none of {case.culprits}: {message[:200]}"

"""Result and annotation pickles load as data; a pickle that carries code is refused unrun."""

from __future__ import annotations

import codecs
import collections
import functools
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detforge.structures.masks import encode_mask_results
from detforge.utils.safe_pickle import PickleLoadError, UnsafePickleError, load_pickle
from tests.conftest import write_code_pickle


def _v2_results() -> list[Any]:
    """Two images of v2 mask results (boxes per class, RLE masks per class), as ``test`` writes."""
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:6] = True
    boxes = [np.array([[2, 1, 6, 4, 0.9]], np.float32), np.zeros((0, 5), np.float32)]
    return [(boxes, encode_mask_results([[mask], []])), [np.zeros((0, 5), np.float32)] * 2]


def _assert_same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


DATA = {
    "v2 results with RLE masks": _v2_results(),
    "middle-format annotations": [
        dict(
            filename="a.jpg",
            width=8,
            height=6,
            ann=dict(
                bboxes=np.array([[1, 1, 4, 4]], np.float32),
                labels=np.array([0], np.int64),
                bboxes_ignore=np.zeros((0, 4), np.float32),
            ),
        )
    ],
    "test-robustness aggregate": {"gaussian_noise": {0: {"bbox_mAP": np.float64(0.31)}}},
    "other data kinds": [
        collections.OrderedDict(a=1),
        {1, 2},
        frozenset({3}),
        b"",
        bytearray(b"x"),
        1 + 2j,
        np.dtype("f4"),
        np.int64(3),
        np.bool_(True),
        np.array(["a", "bc"]),
        np.array([None, (1, 2)], dtype=object),
        np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]),
        np.arange(6, dtype=np.float32).reshape(2, 3).T,
    ],
}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("name", DATA)
def test_data_pickles_load_unchanged(name: str, protocol: int, tmp_path: Path) -> None:
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(DATA[name], protocol=protocol))
    _assert_same(load_pickle(path), DATA[name])


def test_numpy_1_module_names_load_without_warnings(tmp_path: Path) -> None:
    """Files written under numpy 1 name ``numpy.core.multiarray``; numpy 2 ``numpy._core``."""
    data = pickle.dumps([np.float32(2.5), np.ones((2, 2), np.float32)], protocol=2)
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert old != data and b"numpy._core" not in old
    path = tmp_path / "old.pkl"
    path.write_bytes(old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scalar, array = load_pickle(path)
    assert scalar == np.float32(2.5) and array.tolist() == [[1, 1], [1, 1]]


class _Payload:
    def __init__(self, call: Any, *args: Any) -> None:
        self.call, self.args = call, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.call, self.args


class _Custom:
    pass


def _payload(name: str, marker: Path) -> Any:
    command = f"touch {marker}"
    return {
        "functools.partial": lambda: _Payload(functools.partial(os.system, command)),
        "eval": lambda: _Payload(eval, f"open({str(marker)!r}, 'w')"),
        "custom class": lambda: [_Custom()],
        "codec other than latin1": lambda: _Payload(codecs.encode, "eJw=", "base64"),
    }[name]()


@pytest.mark.parametrize(
    "name", ["os.system", "functools.partial", "eval", "custom class", "codec other than latin1"]
)
def test_code_is_refused_and_does_not_run(name: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    if name == "os.system":
        write_code_pickle(path, marker)
    else:
        path.write_bytes(pickle.dumps(_payload(name, marker), protocol=2))
    with pytest.raises(UnsafePickleError) as info:
        load_pickle(path, "results file")
    message = str(info.value)
    assert message.startswith(f"results file {path} holds code or objects that are not plain data")
    assert "it was not loaded" in message
    assert not marker.exists()
    assert isinstance(info.value, pickle.UnpicklingError)


def test_the_refused_payload_is_real(tmp_path: Path) -> None:
    """Plain ``pickle.load`` of the same file does run the command."""
    marker = tmp_path / "ran"
    write_code_pickle(tmp_path / "evil.pkl", marker)
    pickle.loads((tmp_path / "evil.pkl").read_bytes())
    assert marker.exists()


def test_a_file_that_is_no_pickle_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pkl"
    path.write_bytes(pickle.dumps(_v2_results())[:40])
    with pytest.raises(PickleLoadError, match=r"broken\.pkl is not a readable pickle") as info:
        load_pickle(path)
    assert not isinstance(info.value, UnsafePickleError)
    with pytest.raises(FileNotFoundError):
        load_pickle(tmp_path / "missing.pkl")

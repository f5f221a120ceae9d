"""``detforge robustness-eval``: the printout on a crafted results file equals hand numbers."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from detforge.cli.main import main
from tests.analysis.test_robustness import CRAFTED


def test_prints_p_mpc_rpc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model_results.pkl"
    path.write_bytes(pickle.dumps(CRAFTED))
    argv = ["robustness-eval", str(path), "--metric", "AP", "AP50", "--prints", "P", "mPC", "rPC"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "model: model_results.pkl" in out
    # P: 0.40 / 0.50; mPC over fog+snow severities 1-5: 0.21 / 0.31; rPC 52.5 % / 62.0 %
    for line in ["AP    =  0.400", "AP50  =  0.500", "AP    =  0.210", "AP50  =  0.310",
                 "AP    => 52.5 %", "AP50  => 62.0 %"]:  # fmt: skip
        assert line in out
    assert main(["robustness-eval", str(path), "--aggregate", "all"]) == 0
    out = capsys.readouterr().out  # all 12 numbers, mPC with saturate: (0.21*10 + 0.05*5) / 15
    assert "Mean Performance under Corruption [mPC] (bbox)" in out
    assert f"maxDets=100 ] = {(0.21 * 10 + 0.05 * 5) / 15:0.3f}" in out


def test_wrong_task_is_named(tmp_path: Path) -> None:
    path = tmp_path / "r_results.pkl"
    path.write_bytes(pickle.dumps(CRAFTED))
    with pytest.raises(SystemExit, match="no 'segm' results"):
        main(["robustness-eval", str(path), "--task", "segm"])
    assert main(["robustness-eval", str(tmp_path / "missing.pkl")]) == 1

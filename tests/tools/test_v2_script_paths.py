"""The older v2 script paths the seeds use run the same subcommands as the current ones."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("script", "usage"),
    [
        ("analyze_logs.py", "usage: detforge analyze-logs"),
        ("get_flops.py", "usage: detforge get-flops"),
        ("publish_model.py", "usage: detforge publish-model"),
    ],
)
def test_old_v2_tool_paths_run_their_subcommand(
    script: str, usage: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", [script, "--help"])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(ROOT / "tools" / script), run_name="__main__")
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(usage)

"""The one command from nothing to a dream, at tiny scale."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=900
    )


def test_quickstart_end_to_end_then_resumes_and_plays(tmp_path: Path) -> None:
    args = [
        str(ROOT / "train.py"),
        "--quickstart",
        "--preset",
        "tiny",
        "--quiet",
        "--threads",
        "1",
        "--out",
        "runs/q",
        "--data",
        "data/q",
    ]
    first = _run(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    for stage in range(1, 6):
        assert f"[{stage}/5]" in first.stdout
    assert "about" in first.stdout and "min left in all" in first.stdout  # overall ETA
    assert "python play.py --env health_gathering --checkpoint runs/q/worldmodel.pt" in first.stdout
    out = tmp_path / "runs" / "q"
    state = json.loads((out / "quickstart.json").read_text())
    assert list(state) == ["agent", "collect", "tokenizer", "prior", "evaluate"]
    assert (out / "worldmodel.pt").exists() and (out / "eval-quick" / "report.md").exists()
    assert (tmp_path / "runs" / "agents" / "health_gathering" / "ppo.pt").exists()
    again = _run(*args, cwd=tmp_path)  # a rerun resumes: everything is done already
    assert again.returncode == 0 and again.stdout.count("done earlier, skipped") == 5
    play = _run(
        str(ROOT / "play.py"),
        "--checkpoint",
        "runs/q/worldmodel.pt",
        "--headless",
        "--steps",
        "5",
        "--mode",
        "side-by-side",
        cwd=tmp_path,
    )
    assert play.returncode == 0 and "played 5 steps" in play.stdout

"""`callwise simulate` refuses options that do not go together, in one line, before loading any model."""

import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "callwise.cli.main"]
CALLS = Path(__file__).resolve().parents[2] / "examples" / "calls"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWISE_") and k != "DATABASE_URL"}
    return subprocess.run(CLI + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_hang_up_is_a_live_callers_option(tmp_path: Path) -> None:
    res = _run(["simulate", str(CALLS / "refund.wav"), "--hang-up"], tmp_path)
    assert res.returncode != 0 and "--hang-up is a --live caller leaving the line" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr


def test_a_live_call_with_a_missing_screen_image_is_refused(tmp_path: Path) -> None:
    res = _run(["simulate", str(CALLS / "refund.wav"), "--live", "--screen", str(tmp_path / "none.png")], tmp_path)
    assert res.returncode != 0 and "no such file" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr

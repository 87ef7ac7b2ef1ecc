"""The CLI's commands that load no model import no heavy library (a behaviour test, not a timed one).

Start-up times are measured in ``docs/costs.md``; here we check the cause: after ``noise list``,
``--help`` or a rejected ``run``, ``sys.modules`` holds none of torch, transformers, MONAI or Holoscan.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "monai", "holoscan", "highdicom", "monai.deploy", "torchio")

_PROBE = """
import contextlib, io, json, sys
from monai_imc.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy, "out": out.getvalue()}}))
"""


def _probe(*argv: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_noise_list_imports_no_model_library() -> None:
    result = _probe("noise", "list")
    assert result["code"] == 0
    assert result["heavy"] == []
    assert "motion" in result["out"] and "typo" in result["out"], "the list still names every noise"


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["noise", "preview", "--help"],
        ["run", "-i", "/nonexistent/imc-study", "-o", "/tmp/imc-never-written"],
    ],
)
def test_help_and_rejected_run_import_no_model_library(argv: list[str]) -> None:
    result = _probe(*argv)
    assert result["code"] in (0, 2)
    assert result["heavy"] == []

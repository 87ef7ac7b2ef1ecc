"""Optional dependencies fail before work starts, with the install hint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from monai_imc.cli import main
from monai_imc.optional import OptionalImportError, require


def test_require_names_the_extra_to_install() -> None:
    require("json", extra="bench", purpose="x")  # present: no error
    with pytest.raises(OptionalImportError, match=r"pip install 'monai-imc\[bench\]'"):
        require("monai_imc_no_such_module", extra="bench", purpose="the plots")


@pytest.mark.parametrize("command", ["bench", "train-reference"])
def test_commands_stop_before_work_without_matplotlib(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # matplotlib is installed here; a None entry in sys.modules makes its import fail as on a base install
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "out"
    argv = {
        "bench": [
            "bench",
            "--model",
            str(tmp_path / "no-model"),
            "--dataset",
            "slake:/nowhere",
            "--out",
            str(out),
        ],
        "train-reference": ["train-reference", "--data", "/nowhere", "--out", str(out)],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "matplotlib" in err and "pip install 'monai-imc[bench]'" in err
    assert not out.exists()  # nothing was started

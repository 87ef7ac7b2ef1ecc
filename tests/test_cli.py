"""The ``monai-imc`` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import itertools
import subprocess
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
from helpers import dicom_path
from PIL import Image

from monai_imc.cli import main


def test_console_script_is_installed() -> None:
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("monai-imc") == "monai_imc.cli:main"


def test_preview_writes_a_grid_of_noise_by_severity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grid.png"
    # in-process (the command's own entry point); the installed console script is checked above
    code = main(["noise", "preview", "--image", str(dicom_path("CT_small.dcm")), "--noises", "blur,motion",
                 "--tile", "100", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = subprocess.CompletedProcess([], code, captured.out, captured.err)
    grid = Image.open(out)
    assert grid.size == (120 + 6 * 104, 26 + 2 * (100 + 20 + 4))
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in result.stdout.splitlines()
            if line.split() and line.split()[0] in ("blur", "motion")}
    for name, values in rows.items():
        assert len(values) == 5 and all(a > b for a, b in itertools.pairwise(values)), (name, values)
    pixels = np.asarray(grid.convert("L"))
    assert pixels.std() > 10, "the grid holds images, not a blank canvas"
    assert not list(tmp_path.glob(".grid.png.*")), "no temporary file left behind"


def test_preview_on_the_default_image_and_a_jpeg(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["noise", "preview", "--noises", "spike", "--severities", "1,5", "--out", str(tmp_path / "a.png")]) == 0
    assert "MR2_UNCI.dcm" in capsys.readouterr().out and (tmp_path / "a.png").is_file()
    jpeg = data_dir / "slake/imgs/xmlab1/source.jpg"
    assert main(["noise", "preview", "--image", str(jpeg), "--noises", "jpeg", "--out", str(tmp_path / "b.png")]) == 0


def test_text_prints_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    question = "Is there a pneumothorax in the left lung?"
    code = main(["noise", "text", question, "--noises", "typo,distractor"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert question in lines[0]
    variants = [line for line in lines[1:] if line.startswith(("typo", "distractor"))]
    assert len(variants) == 10
    assert all(line.split()[1] in "12345" and int(line.split()[2]) > 0 for line in variants)


def test_list_names_every_noise(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["noise", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in ("motion", "ghosting", "typo", "distractor"):
        assert any(line.startswith(name) for line in lines)


def test_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "report.txt"
    bad.write_text("hello")
    cases = [
        (("noise", "preview", "--image", str(bad), "--out", str(tmp_path / "x.png")), "report.txt"),
        (("noise", "preview", "--noises", "fog", "--out", str(tmp_path / "x.png")), "unknown noise 'fog'"),
        (("noise", "preview", "--severities", "7", "--noises", "blur", "--out", str(tmp_path / "x.png")), "severity 7"),
        (("noise", "text", "  "), "empty"),
        (("noise", "text", "Is it?", "--noises", "blur"), "'blur' is an image noise"),
    ]
    for args, message in cases:
        assert main(list(args)) == 2, args
        assert message in capsys.readouterr().err, args
    assert not (tmp_path / "x.png").exists()

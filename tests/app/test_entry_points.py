"""The app's entry points: ``python app_package`` with the HOLOSCAN_* variables and with -i/-o/-m,
``monai-imc sample-study`` + ``monai-imc run`` (README's first command), and the library without Holoscan."""

from __future__ import annotations

import ast
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from helpers import REPO, dicom_path

from monai_imc import cli
from monai_imc.deploy.context import IMCContext
from monai_imc.deploy.report import REPORT_NAME
from monai_imc.deploy.sample import SampleStudy


def _small_study(sample: SampleStudy, folder: Path, names: tuple[str, ...] = ("ct", "mr_motion4")) -> Path:
    for series in sample.series:
        if series.name in names:
            shutil.copytree(series.path.parent, folder / series.name)
    shutil.copy(sample.sidecar, folder / sample.sidecar.name)
    return folder


def _env(**extra: str) -> dict[str, str]:
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HOLOSCAN_LOG_LEVEL="WARN",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    env.update(extra)
    return env


def test_app_package_with_holoscan_variables_and_its_exit_code(
    sample_study: SampleStudy, tmp_path: Path
) -> None:
    """``python app_package`` with HOLOSCAN_INPUT_PATH / OUTPUT_PATH / MODEL_PATH (a folder holding the
    bundle, as a MAP's models folder): the good series gets its SR, the broken file makes the exit code 1."""
    study = _small_study(sample_study, tmp_path / "in", ("ct",))
    broken = study / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    out = tmp_path / "out"
    env = _env(
        HOLOSCAN_INPUT_PATH=str(study),
        HOLOSCAN_OUTPUT_PATH=str(out),
        HOLOSCAN_MODEL_PATH=str(REPO / "bundles"),
    )
    run = subprocess.run(
        [sys.executable, "app_package"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["written"] == 1 and report["exit_code"] == 1
    assert [o["name"] for o in report["outcomes"] if o["status"] == "failed"] == [str(broken)]
    (written,) = [o for o in report["outcomes"] if o["status"] == "written"]
    assert pydicom.dcmread(written["sr_path"]).StudyInstanceUID == sample_study.study_instance_uid
    assert str(broken) in run.stdout + run.stderr  # the reason is logged, naming the file


def test_app_package_reads_i_o_m_like_the_sdk_examples(
    imc: IMCContext, sample_study: SampleStudy, tmp_path: Path
) -> None:
    """``app_package/app.py``'s IMCApp takes -i/-o/-m through the SDK's app context (in-process here)."""
    spec = importlib.util.spec_from_file_location("imc_app_package_app", REPO / "app_package" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    study = _small_study(sample_study, tmp_path / "in", ("mr_motion4",))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level  # the SDK's app context sets up logging: put it back
    try:
        app = module.IMCApp(
            [
                sys.executable,
                "app_package",
                "-i",
                str(study),
                "-o",
                str(tmp_path / "out"),
                "-m",
                str(REPO / "bundles" / "monai_imc_vqa"),
            ],
            imc=imc,
        )
        app.run()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert app.exit_code == 0 and len(app.report.written) == 1
    assert app.report.input == str(study) and app.report.output == str(tmp_path / "out")
    assert module.read_imc_section(module.CONFIG) == {"device": None, "stow_url": None}


def test_readme_first_command_sample_study_then_run(
    imc: IMCContext, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two commands in-process; the run gets the session's copy of the default bundle's context (the
    same bundle and device it asks for) instead of loading the model once more."""
    from monai_imc.deploy.context import default_bundle
    from monai_imc.operators import application

    asked = []

    def shared_context(path: Path, device: str | None = None) -> IMCContext:
        asked.append((Path(path).resolve(), device))
        return imc

    monkeypatch.setattr(application, "load_context", shared_context)
    assert cli.main(["sample-study", str(tmp_path / "study")]) == 0
    listing = capsys.readouterr().out
    assert "mr_motion4" in listing and "motion severity 4" in listing
    code = cli.main(["run", "-i", str(tmp_path / "study"), "-o", str(tmp_path / "out"), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
    assert printed.count("SR IMC_SR_") == report["written"] == 9
    assert "artifact " in printed and "calibration " in printed and "answer: " in printed
    assert "9 SR(s) written" in printed and "exit code 0" in printed
    # the bundle restores a perceived k-space spike (its restore step) and says so
    (spike,) = [block for block in printed.split("\nseries ") if "mr_spike4" in block.splitlines()[0]]
    assert "spike artifact" in spike and "restored: k-space spike notch" in spike
    assert asked == [(default_bundle().resolve(), "cpu")]


def test_run_names_a_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "-i", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_only_the_operators_import_the_sdk() -> None:
    """The library (and so its tests) never needs Holoscan: only monai_imc/operators imports the SDK.

    (With the SDK installed, ``import monai`` itself imports ``monai.deploy``: MONAI loads its subpackages.)
    """
    offenders = []
    for path in sorted((REPO / "monai_imc").rglob("*.py")):
        if "operators" in path.relative_to(REPO / "monai_imc").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(("holoscan", "monai.deploy"))]
    assert offenders == []
    operators = (REPO / "monai_imc" / "operators" / "application.py").read_text(encoding="utf-8")
    assert "from monai.deploy" in operators  # the check above looks at real import statements


BAD_ARGUMENTS = {
    "input missing": (["-i", "{tmp}/nowhere", "-o", "{tmp}/out"], "does not exist"),
    "input a file": (["-i", "{tmp}/a_file", "-o", "{tmp}/out"], "is a file, not a folder: give the folder"),
    "input empty": (["-i", "{tmp}/empty", "-o", "{tmp}/out"], "holds no file"),
    "output a file": (["-i", "{tmp}/study", "-o", "{tmp}/a_file"], "is a file: give a folder"),
    "bundle missing": (
        ["-i", "{tmp}/study", "-o", "{tmp}/out", "--bundle", "{tmp}/no_bundle"],
        "does not exist",
    ),
    "bundle empty": (["-i", "{tmp}/study", "-o", "{tmp}/out", "--bundle", "{tmp}/empty"], "no MONAI bundle"),
    "stow credentials": (
        ["-i", "{tmp}/study", "-o", "{tmp}/out", "--stow", "http://user:secret@pacs:8042/dicom-web"],
        "credentials in the URL are refused",
    ),
    "stow not http": (
        ["-i", "{tmp}/study", "-o", "{tmp}/out", "--stow", "ftp://pacs/x"],
        "not an http(s) URL",
    ),
    "device": (["-i", "{tmp}/study", "-o", "{tmp}/out", "--device", "tpu"], "use cpu, cuda or cuda:N"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_bad_arguments_fail_before_anything_heavy_loads(case: str, tmp_path: Path) -> None:
    """Exit code 2, one line saying what to do, and neither Holoscan, torch nor transformers imported
    (the check runs before them: a wrong path costs no model load)."""
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "study").mkdir()
    shutil.copy(dicom_path("CT_small.dcm"), tmp_path / "study" / "ct.dcm")
    argv, expected = BAD_ARGUMENTS[case]
    argv = ["run", *(a.format(tmp=tmp_path) for a in argv)]
    probe = (
        "import sys; from monai_imc import cli; code = cli.main(sys.argv[1:]); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'holoscan', 'torch', 'transformers'}); "
        "print(code, heavy)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.stdout.strip() == "2 []", run.stdout + run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("monai-imc: error: ") and expected in line, line
    assert "secret" not in line
    assert not (tmp_path / "out").exists()

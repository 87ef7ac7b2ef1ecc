"""The MONAI bundle: metadata fields, and every part of configs/inference.json built by MONAI's ConfigParser.

The bundle's own weights are swapped for a tiny LLaVA and a bank built here, the way a user swaps them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers import REPO, dicom_path
from monai.bundle import ConfigParser

from monai_imc.bank_build import build_bank
from monai_imc.data.views import load_view, model_view
from monai_imc.imageio import read_image
from monai_imc.models import load_model
from monai_imc.models.tiny import build_tiny_checkpoint
from monai_imc.noise.preview import shrink
from monai_imc.pipeline import IMCPipeline
from monai_imc.refine import SMSRefiner

BUNDLE = REPO / "bundles" / "monai_imc_vqa"


def test_metadata_has_the_fields_monai_bundles_require() -> None:
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    for key in ("version", "changelog", "monai_version", "pytorch_version", "numpy_version",
                "required_packages_version", "task", "description", "authors", "copyright",
                "network_data_format"):
        assert key in meta, key
    assert meta["version"] in meta["changelog"]
    assert {"inputs", "outputs"} <= set(meta["network_data_format"])
    assert (BUNDLE / "LICENSE").is_file() and (BUNDLE / "docs" / "README.md").is_file()


def test_inference_config_builds_every_part(tmp_path: Path) -> None:
    model_dir = build_tiny_checkpoint("llava", tmp_path / "model", seed=0)
    model = load_model(str(model_dir), device="cpu")
    views = []
    for name in ("CT_small.dcm", "MR_small.dcm", "693_UNCI.dcm", "MR2_UNCI.dcm"):
        image = read_image(dicom_path(name))
        views.append(model_view(type(image)(shrink(image.array, 64), image.source, image.modality, image.window)))
    build_bank(model, views, ["blur"], [1, 5], seed=0).save(tmp_path / "bank")

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.json"))
    parser["bundle_root"] = str(BUNDLE)
    parser["model_path"] = str(model_dir)
    parser["bank_path"] = str(tmp_path / "bank")
    parser["device"] = "cpu"
    pipeline = parser.get_parsed_content("pipeline")
    refiner = parser.get_parsed_content("refiner")
    assert isinstance(pipeline, IMCPipeline) and isinstance(refiner, SMSRefiner)
    assert pipeline.model is refiner.model, "one model, loaded once, shared by every part"
    result = pipeline.answer(np.asarray(views[0]), parser["standing_questions"][0], max_new_tokens=4)
    assert result.question == parser["standing_questions"][0] and isinstance(result.answer, str)
    assert parser["text_fields"] == ["ReasonForTheRequestedProcedure", "RequestedProcedureDescription",
                                     "StudyDescription"]


def test_metadata_network_data_format_describes_every_input_and_output() -> None:
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    assert meta["schema"].startswith("https://github.com/Project-MONAI/")
    fmt = meta["network_data_format"]
    for entry in [*fmt["inputs"].values(), *fmt["outputs"].values()]:
        assert {"type", "format"} <= set(entry)
    image = fmt["inputs"]["image"]
    assert {"num_channels", "spatial_shape", "dtype", "value_range"} <= set(image)


def _tiny_bundle(root: Path, edit) -> Path:
    """A copy of the bundle's config over a tiny LLaVA and a bank built here; ``edit`` changes the config."""
    model_dir = build_tiny_checkpoint("llava", root / "models" / "reference-vlm", seed=0)
    model = load_model(str(model_dir), device="cpu")
    views = [load_view(dicom_path(n), max_size=64) for n in ("CT_small.dcm", "MR_small.dcm", "693_UNCI.dcm")]
    build_bank(model, views, ["blur"], [1, 5], seed=0).save(root / "models" / "prototype-bank")
    config = json.loads((BUNDLE / "configs" / "inference.json").read_text())
    config["device"] = "cpu"
    edit(config)
    (root / "configs").mkdir(parents=True)
    for other in (BUNDLE / "configs").iterdir():  # metadata, the site word list, the SMS calibration record
        if other.name != "inference.json":
            (root / "configs" / other.name).write_bytes(other.read_bytes())
    (root / "configs" / "inference.json").write_text(json.dumps(config))
    return root


def test_a_component_swapped_in_the_config_is_what_the_app_and_the_benchmark_run(tmp_path: Path) -> None:
    from monai_imc.bench.model_spec import load_bench_model
    from monai_imc.deploy.context import load_context
    from monai_imc.refine import SMSPrompts

    def edit(config: dict) -> None:
        config["refiner"].update(max_rounds=2, suspicion=1.5)
        config["pipeline"]["variant"] = "shift"
        config["standing_questions"] = ["Is this a CT?"]

    bundle = _tiny_bundle(tmp_path / "b", edit)
    context = load_context(bundle)
    assert (context.refiner.max_rounds, context.refiner.suspicion) == (2, 1.5)
    assert context.pipeline.calibrator.variant == "shift"
    assert context.settings.standing_questions == ("Is this a CT?",)
    loaded = load_bench_model(str(bundle))
    refiner = loaded.refiner(loaded.model, SMSPrompts.reference())
    assert (refiner.max_rounds, refiner.suspicion) == (2, 1.5) and refiner.model is loaded.model
    assert loaded.refiner_options["max_rounds"] == 2 and loaded.source == "bundle"
    # the bank is the config's component, not a path read beside it: swapped out, there is none
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    config["bank"] = "$None"
    (bundle / "configs" / "inference.json").write_text(json.dumps(config))
    assert load_bench_model(str(bundle)).bank is None


def test_monai_bundle_run_processes_a_folder_like_the_app(tmp_path: Path) -> None:
    from monai.bundle import run

    from monai_imc.deploy.context import load_context
    from monai_imc.deploy.process import process_folder

    bundle = _tiny_bundle(tmp_path / "b", lambda config: config.update(standing_questions=["Is this a CT?"]))
    study = tmp_path / "study"
    study.mkdir()
    (study / "ct.dcm").write_bytes(dicom_path("CT_small.dcm").read_bytes())
    run(
        config_file=str(bundle / "configs" / "inference.json"),
        bundle_root=str(bundle),
        input_dir=str(study),
        output_dir=str(tmp_path / "out"),
    )
    report = json.loads((tmp_path / "out" / "imc_run_report.json").read_text())
    app = process_folder(study, tmp_path / "app", load_context(bundle), progress=False)
    assert (report["written"], report["failed"]) == (len(app.written), 0) == (1, 0)
    assert len(list((tmp_path / "out").glob("*.dcm"))) == 1

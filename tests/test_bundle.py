"""The MONAI bundle: metadata fields, and every part of configs/inference.json built by MONAI's ConfigParser.

The bundle's own weights are swapped for a tiny LLaVA and a bank built here, the way a user swaps them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers import REPO, dicom_path
from monai.bundle import ConfigParser

from monai_imc.imageio import model_view, read_image
from monai_imc.models import load_model
from monai_imc.models.tiny import build_tiny_checkpoint
from monai_imc.noise.preview import shrink
from monai_imc.pipeline import IMCPipeline
from monai_imc.prototypes import build_bank
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

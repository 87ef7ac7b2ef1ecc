"""The one data layer: dataset readers, canonical image keys, the held-out rule, and file -> model view.

Every consumer (bank building, the reference model's training, the benchmark, the measurements and the
CLI) reads datasets and images through this package, so they agree on which images are held out and on
the pixels a model is shown.

- :mod:`monai_imc.data.rows`: :class:`VQARow`, :func:`image_key`, :func:`is_heldout_image`.
- :mod:`monai_imc.data.vqa`: SLAKE, VQA-RAD and JSONL readers by split (:func:`load_dataset`).
- :mod:`monai_imc.data.images`: the image files of a dataset spec or a folder (:func:`dataset_images`).
- :mod:`monai_imc.data.views`: :func:`load_view`, the one ``file -> model view`` function.
- :mod:`monai_imc.data.controls`: :func:`shuffled_images`, the shuffled-image control's other image.
- :mod:`monai_imc.data.regions`: :func:`lesion_region`, where a SLAKE image's finding is (local noise).
"""

from __future__ import annotations

from monai_imc.data.controls import shuffled_image_keys, shuffled_images
from monai_imc.data.images import IMAGE_SUFFIXES, dataset_images, folder_images
from monai_imc.data.regions import ABNORMALITY_LABELS, LesionRegion, lesion_region
from monai_imc.data.rows import HELDOUT_PERCENT, VQARow, image_key, is_heldout_image
from monai_imc.data.views import load_view, model_view
from monai_imc.data.vqa import (
    SPLITS,
    load_dataset,
    load_vqa,
    parse_spec,
    read_jsonl,
    read_slake,
    read_vqa_rad,
    source_rows,
    training_pool,
)

__all__ = [
    "ABNORMALITY_LABELS",
    "HELDOUT_PERCENT",
    "IMAGE_SUFFIXES",
    "SPLITS",
    "LesionRegion",
    "VQARow",
    "dataset_images",
    "folder_images",
    "image_key",
    "is_heldout_image",
    "lesion_region",
    "load_dataset",
    "load_view",
    "load_vqa",
    "model_view",
    "parse_spec",
    "read_jsonl",
    "read_slake",
    "read_vqa_rad",
    "shuffled_image_keys",
    "shuffled_images",
    "source_rows",
    "training_pool",
]

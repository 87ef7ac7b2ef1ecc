"""Perceiver verdicts on the sample study series (one key view each), without answering: a quick check.

python -m monai_imc.cli sample-study /tmp/p15_study && PYTHONPATH=. python bench/perceive_sample_study.py
"""

from pathlib import Path

import pydicom

from monai_imc.dicom.views import series_views
from monai_imc.models import load_model
from monai_imc.perceive import ArtifactPerceiver
from monai_imc.prototypes import PrototypeBank

root = Path("/tmp/p15_study")
model = load_model("bundles/monai_imc_vqa/models/reference-vlm", device="cpu")
bank = PrototypeBank.load("bundles/monai_imc_vqa/models/prototype-bank", model=model)
perceiver = ArtifactPerceiver(bank)
for folder in sorted(p for p in root.iterdir() if p.is_dir()):
    ds = [pydicom.dcmread(f) for f in sorted(folder.rglob("*")) if f.is_file()]
    try:
        views = series_views(ds, n_views=1)
    except ValueError as exc:  # UnsupportedSeriesError is a ValueError
        print(folder.name, "no view:", exc, flush=True)
        continue
    v = views[0]
    p = perceiver.perceive(model.encode_images([v.pixels]), views=[v.pixels], modalities=[str(ds[0].get("Modality", ""))])[0]
    print(f"{folder.name:14s} {ds[0].get('Modality', '')}: {p.summary}", flush=True)

"""How well the perceiver names artifacts: token descriptor vs fused (tokens + physics) descriptor.

Builds a prototype bank (:func:`monai_imc.bank_build.build_bank`, the product's own path) on training
images of SLAKE and VQA-RAD, then perceives held-out TEST images of both, clean and under every image
noise and severity, once without views (the token discriminant) and once with them (the fused one).
Reports type accuracy per noise and severity (an image counts as right when the verdict is ``artifact``
with the right type), severity within +-1 level, clean false alarm, not-assessable share, and writes a
confusion matrix PNG. Test images are a fixed-seed subsample (``--test-images`` per dataset); VQA-RAD
test images that also appear in its train split are left out. (It replaces issue 5's comparison of
every-layer descriptors, which needed a second pass over the vision tower's hidden states.)

Usage::

    PYTHONPATH=. python bench/perceiver_descriptors.py --model bundles/monai_imc_vqa/models/reference-vlm \\
        --bank-images 40 --test-images 16 --out docs/perceiver --save-bank /tmp/bank
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from monai_imc.bank_build import build_bank
from monai_imc.bench.perceiver_report import Verdict, perceiver_metrics, plot_confusion
from monai_imc.data import dataset_images, load_view
from monai_imc.models import load_model
from monai_imc.noise import list_noises
from monai_imc.perceive import ARTIFACT, ArtifactPerceiver
from monai_imc.prototypes import PrototypeBank, corrupt, variant_seed

__all__ = ["main"]


def _sample(files: list[Path], n: int, seed: int) -> list[Path]:
    if n <= 0 or n >= len(files):
        return files
    pick = np.random.RandomState(seed).choice(len(files), size=n, replace=False)
    return [files[i] for i in sorted(pick.tolist())]


def _images(
    data: Path, split: str, n: int, seed: int, exclude: set[Path]
) -> tuple[list[np.ndarray], list[str]]:
    files: list[Path] = []
    slake = [p for p in dataset_images(f"slake:{data / 'slake'}", splits=[split]) if p not in exclude]
    rad = [p for p in dataset_images(f"vqa-rad:{data / 'vqa_rad'}", splits=[split]) if p not in exclude]
    files = _sample(slake, n, seed) + _sample(rad, n, seed + 1)
    views, ids = [], []
    for path in files:
        try:
            views.append(load_view(path, 256))
            ids.append(str(path))
        except ValueError as err:
            print(f"skipped: {err}", file=sys.stderr)
    return views, ids


#: Clean clinical DICOM of pydicom-data that no bank was built from: the out-of-distribution false alarms.
CLINICAL = (
    "693_UNCR.dcm", "MR2_UNCR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "examples_overlay.dcm", "RG1_UNCR.dcm",
    "RG3_UNCR.dcm", "US1_UNCR.dcm", "OBXXXX1A.dcm", "CT_small.dcm", "MR_small.dcm", "emri_small.dcm",
)


#: Other clean DICOM of pydicom-data (CT, none of them an image of :data:`CLINICAL`): the validation images
#: the bundled bank's measures were chosen on (a clean DICOM view must not look like an artifact).
CLINICAL_VALIDATION = ("eCT_Supplemental.dcm", "explicit_VR-UN.dcm", "J2K_pixelrep_mismatch.dcm")


def _clinical(
    model: object, perceiver: ArtifactPerceiver, names: tuple[str, ...] = CLINICAL, degenerate_too: bool = True
) -> list[dict[str, str]]:
    """The perceiver's verdict on clean DICOM ``names`` as the app sees them (key view, DICOM modality), and
    on degenerate views."""
    import pydicom
    from pydicom.data import get_testdata_file

    from monai_imc.dicom.views import series_views

    out = []
    for name in names:
        ds = pydicom.dcmread(get_testdata_file(name))
        view = series_views([ds], n_views=1)[0].pixels
        p = perceiver.perceive(model.encode_images([view]), views=[view], modalities=[str(ds.Modality)])[0]
        out.append({"image": name, "modality": str(ds.Modality), "size": "x".join(map(str, view.shape[:2])),
                    "verdict": p.verdict, "summary": p.summary})
    degenerate = {
        "1 x 1": np.full((1, 1), 128, np.uint8), "constant": np.full((64, 64), 77, np.uint8),
        "NaN": np.where(np.eye(64) > 0, np.nan, 0.5).astype(np.float32),
        "1 x 4000": np.tile(np.arange(4000) % 256, (1, 1)).astype(np.uint8),
        "8 x 8": np.tile(np.arange(8) * 30, (8, 1)).astype(np.uint8),
    } if degenerate_too else {}
    for name, view in degenerate.items():
        shown = np.nan_to_num(view) if name == "NaN" else view  # the model gets a finite image
        p = perceiver.perceive(model.encode_images([shown]), views=[view])[0]
        out.append({"image": f"degenerate {name}", "modality": "", "size": "x".join(map(str, view.shape[:2])),
                    "verdict": p.verdict, "summary": p.summary})
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; print the table; write ``perceiver_report.json`` and confusion PNGs to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=os.environ.get("MONAI_IMC_DATA", "../shared/data"))
    parser.add_argument(
        "--bank-images", type=int, default=40, help="training images per dataset for the bank"
    )
    parser.add_argument(
        "--test-images", type=int, default=16, help="test images per dataset (fixed-seed sample)"
    )
    parser.add_argument(
        "--clean-test-images", type=int, default=0,
        help="clean false alarm also on this many test images per dataset, clean only (0: every test image)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/perceiver")
    parser.add_argument("--save-bank", default=None, help="also save the bank here")
    parser.add_argument("--bank", default=None,
                        help="perceive with this saved bank (e.g. the bundle's) instead of building one")
    args = parser.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    train_files = set(dataset_images(f"slake:{data / 'slake'}", ["train"])) | set(
        dataset_images(f"vqa-rad:{data / 'vqa_rad'}", ["train"])
    )
    test_views, test_ids = _images(data, "test", args.test_images, args.seed + 7, train_files)
    model = load_model(args.model, device="cpu")
    if args.bank:
        bank_views: list[np.ndarray] = []
        bank = PrototypeBank.load(args.bank, model=model)
    else:
        bank_views, _bank_ids = _images(data, "train", args.bank_images, args.seed, set())
        bank = build_bank(model, bank_views, seed=args.seed, image_ids=_bank_ids)
    if args.save_bank:
        bank.save(args.save_bank)
    built = time.perf_counter() - start
    perceiver = ArtifactPerceiver(bank)
    noises = list_noises("image")
    conditions = [("clean", 0)] + [(n, s) for n in noises for s in bank.severities]
    verdicts: dict[str, list[Verdict]] = {"tokens": [], "fused": []}  # what each descriptor said
    for i, view in enumerate(test_views):
        copies = [view] + [
            corrupt(view, n, s, variant_seed(args.seed + 99, i, noises.index(n))) for n, s in conditions[1:]
        ]
        copies = [c[..., 0] if c.ndim == 3 and c.shape[-1] == 1 else c for c in copies]
        for start_b in range(0, len(copies), 8):
            batch = copies[start_b : start_b + 8]
            features = model.encode_images(batch)
            for name, found in (
                ("tokens", perceiver.perceive(features)),
                ("fused", perceiver.perceive(features, batch)),
            ):
                for (noise, severity), p in zip(conditions[start_b : start_b + 8], found):
                    verdicts[name].append(Verdict(test_ids[i], noise, severity, p.verdict, p.noise, p.severity))
    # Clean false alarm on many more test images: clean views are cheap (one encode, no noisy copies).
    clean_views, clean_ids = _images(data, "test", args.clean_test_images, args.seed + 7, train_files)
    clean_verdicts: dict[str, list[Verdict]] = {"tokens": [], "fused": []}
    for start_b in range(0, len(clean_views), 8):
        batch = [v[..., 0] if v.ndim == 3 and v.shape[-1] == 1 else v for v in clean_views[start_b : start_b + 8]]
        features = model.encode_images(batch)
        ids = clean_ids[start_b : start_b + 8]
        for name, found in (("tokens", perceiver.perceive(features)), ("fused", perceiver.perceive(features, batch))):
            clean_verdicts[name] += [Verdict(i, "clean", 0, p.verdict, p.noise, p.severity) for i, p in zip(ids, found)]
    elapsed = time.perf_counter() - start
    report = {
        "bank": args.bank or "built from train images",
        "bank_images": len(bank_views) or len(bank.manifest["images"]["train"]),
        "test_images": len(test_views),
        "test_ids": test_ids,
        "clean_test_images": len(clean_views),
        "seconds": {"bank": round(built, 1), "total": round(elapsed, 1)},
        "bank_choices": bank.manifest["choices"]["perceivers"],
        "descriptors": {},
    }
    print(
        f"bank from {len(bank_views)} train images ({built:.0f} s); {len(test_views)} test images x "
        f"{len(conditions)} conditions; {elapsed:.0f} s in all"
    )
    for name in ("tokens", "fused"):
        # the perceiver's metrics (%), as monai-imc bench reports them (monai_imc.bench.perceiver_report)
        result = perceiver_metrics(verdicts[name])
        everyone = perceiver_metrics(clean_verdicts[name])
        result["clean_false_alarm_all_test"] = everyone["clean_false_alarm"]
        result["clean_false_alarms_all_test"] = sum(v.verdict == ARTIFACT for v in clean_verdicts[name])
        result["type_accuracy_severity_5"] = (
            round(sum(c[5] for c in result["type_right"].values()) / len(noises), 2) if 5 in bank.severities else None
        )
        report["descriptors"][name] = result
        print(
            f"\n{name}: clean false alarm {result['clean_false_alarm']:.1f}% "
            f"({result['clean_false_alarms_all_test']} of {len(clean_views)} clean test images: "
            f"{result['clean_false_alarm_all_test']:.1f}%), type accuracy s>=3 "
            f"{result['type_accuracy_severity_3_plus']:.1f}%, s5 {result['type_accuracy_severity_5']:.1f}%, "
            f"severity within 1 {result['severity_within_1']:.1f}%, noisy not assessable {result['noisy_not_assessable']:.1f}%"
        )
        print(f"  {'noise':11s} " + " ".join(f"s{s}   " for s in bank.severities))
        for noise in noises:
            print(f"  {noise:11s} " + " ".join(f"{result['type_right'][noise][s]:5.1f}" for s in bank.severities))
        plot_confusion(
            result["confusion"], out / f"perceiver_confusion_{name}.png",
            f"perceiver, {name} descriptor: type right at severity >= 3 {result['type_accuracy_severity_3_plus']:.1f}%",
        )
    validation = _clinical(model, perceiver, CLINICAL_VALIDATION, degenerate_too=False)
    report["clinical_validation"] = validation
    print(f"\nclean DICOM the measures were chosen on ({len(validation)}): "
          f"{sum(c['verdict'] == ARTIFACT for c in validation)} reported as artifacts")
    for c in validation:
        print(f"  {c['image']:36s} {c['modality']:3s} {c['size']:>10s}  {c['summary']}")
    clinical = _clinical(model, perceiver)
    report["clinical_unseen"] = clinical
    real = [c for c in clinical if not c["image"].startswith("degenerate")]
    print(f"\nclean clinical images no bank saw ({len(real)}): "
          f"{sum(c['verdict'] == ARTIFACT for c in real)} reported as artifacts")
    for c in clinical:
        print(f"  {c['image']:36s} {c['modality']:3s} {c['size']:>10s}  {c['summary']}")
    (out / "perceiver_report.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out / 'perceiver_report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

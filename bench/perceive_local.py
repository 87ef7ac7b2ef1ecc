"""The perceiver's verdict on locally corrupted images: every image noise globally vs inside a region only.

The bank was built from globally corrupted images; a local artifact (over a lesion, or over a part of the
field) is a shift it never saw. For a seeded sample of validation images (the images training held out,
SLAKE and VQA-RAD; every SLAKE validation image with a lesion box first), each image noise at one severity
is applied globally and locally (:mod:`monai_imc.noise.local`: the same draw, inside the image's lesion
region, else a seeded random rectangle of 10-20 % of the image), exactly as ``monai-imc bench --local``
makes its views (:func:`monai_imc.bench.records.noisy_image`). The bundle's own pipeline
(:class:`~monai_imc.pipeline.IMCPipeline`: its model and bank) encodes and perceives every view.

Per noise and scope: type right (verdict ``artifact`` naming the true noise), flagged (verdict ``artifact``,
any type; these images are calibrated), judged clean, not assessable; the clean images' false alarms beside.

Usage::

    PYTHONPATH=. nice -n 15 python bench/perceive_local.py --bundle bundles/monai_imc_vqa --images 25 --out docs/perceiver/local

Writes ``perceive_local.json`` and ``perceive_local.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from monai_imc.atomic import atomic_output
from monai_imc.bench.records import noisy_image
from monai_imc.data import VQARow, lesion_region, load_dataset, load_view
from monai_imc.noise import list_noises
from monai_imc.noise.local import local_noise_name
from monai_imc.perceive import ARTIFACT, CLEAN_VERDICT, NOT_ASSESSABLE

__all__ = ["main", "pick_images"]


def pick_images(data: Path, n: int, seed: int) -> list[tuple[VQARow, str]]:
    """``n`` validation images of SLAKE and VQA-RAD (one row each) with their local region kind: every SLAKE
    image with a lesion region first (seeded order), then a seeded sample of the others."""
    rows: dict[str, VQARow] = {}
    for spec in (f"slake:{data / 'slake'}", f"vqa-rad:{data / 'vqa_rad'}"):
        for row in load_dataset(spec, "validate"):
            rows.setdefault(row.image_key, row)
    keys = sorted(rows)
    lesion = [k for k in keys if lesion_region(rows[k].image) is not None]
    others = [k for k in keys if k not in set(lesion)]
    rng = np.random.RandomState(seed)
    order = [lesion[i] for i in rng.permutation(len(lesion))] + [
        others[i] for i in rng.permutation(len(others))
    ]
    return [(rows[k], "lesion" if k in lesion else "random") for k in order[:n]]


def _pct(values: list[bool]) -> float | None:
    return round(100.0 * sum(values) / len(values), 1) if values else None


def _summary(verdicts: list[tuple[str, str | None]], truth: str) -> dict[str, Any]:
    return {
        "n": len(verdicts),
        "type_right": _pct([v == ARTIFACT and p == truth for v, p in verdicts]),
        "flagged": _pct([v == ARTIFACT for v, _ in verdicts]),
        "clean": _pct([v == CLEAN_VERDICT for v, _ in verdicts]),
        "not_assessable": _pct([v == NOT_ASSESSABLE for v, _ in verdicts]),
    }


def _table(report: dict[str, Any]) -> str:
    lines = [
        (
            "| noise | global: type right % | global: flagged % | global: clean % "
            "| local: type right % | local: flagged % | local: clean % "
            "| local on a lesion: type right / flagged % | local on a random rectangle: type right / flagged % |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    clean = report["clean"]
    lines.append(f"| clean (no noise) | | false alarm {clean['flagged']} | {clean['clean']} | | | | | |")
    for noise, row in report["noises"].items():
        g, loc = row["global"], row["local"]
        cells = [f"{g['type_right']}", f"{g['flagged']}", f"{g['clean']}"]
        cells += [f"{loc['type_right']}", f"{loc['flagged']}", f"{loc['clean']}"]
        for kind in ("lesion", "random"):
            part = row[f"local_{kind}"]
            cells.append(f"{part['type_right']} / {part['flagged']} (n={part['n']})" if part["n"] else "")
        lines.append(f"| {noise} | " + " | ".join(cells) + " |")
    mean = report["mean"]
    lines.append(
        f"| **mean** | {mean['global']['type_right']} | {mean['global']['flagged']} | {mean['global']['clean']} "
        f"| {mean['local']['type_right']} | {mean['local']['flagged']} | {mean['local']['clean']} | | |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the measurement, print the table, write the JSON and Markdown reports."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", default="bundles/monai_imc_vqa")
    parser.add_argument("--data", default=os.environ.get("MONAI_IMC_DATA", "../shared/data"))
    parser.add_argument("--images", type=int, default=25, help="validation images (seeded sample)")
    parser.add_argument("--severity", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="image sample and noise seed")
    parser.add_argument(
        "--size", type=int, default=256, help="longest side of the views (the bench's default)"
    )
    parser.add_argument("--batch", type=int, default=8, help="views encoded per call")
    parser.add_argument("--out", default="docs/perceiver/local")
    args = parser.parse_args(argv)
    from monai_imc.deploy.context import load_context

    start = time.perf_counter()
    pipeline = load_context(args.bundle, device="cpu").pipeline
    images = pick_images(Path(args.data), args.images, args.seed)
    noises = list_noises("image")
    conditions = [("clean", "clean")] + [(n, s) for n in noises for s in ("global", "local")]
    verdicts: dict[tuple[str, str], list[tuple[str, str | None]]] = defaultdict(list)
    kinds: dict[tuple[str, str], list[tuple[str, str | None]]] = defaultdict(list)
    fractions = []
    for row, kind in tqdm(images, desc="images", unit="image"):
        view = load_view(row.image, args.size)
        chw = np.ascontiguousarray((view[..., None] if view.ndim == 2 else view).transpose(2, 0, 1))
        views = []
        for noise, scope in conditions:
            if noise == "clean":
                views.append(chw)
            else:
                name = noise if scope == "global" else local_noise_name(noise)
                views.append(noisy_image(chw, row, name, args.severity, str(args.seed)))
        if kind == "lesion":
            fractions.append(lesion_region(row.image).fraction)  # type: ignore[union-attr]
        hwc = [np.ascontiguousarray(v.transpose(1, 2, 0)) for v in views]
        hwc = [v[..., 0] if v.shape[-1] == 1 else v for v in hwc]
        for first in range(0, len(hwc), args.batch):
            batch = hwc[first : first + args.batch]
            found = pipeline.perceive(pipeline.encode(batch), views=batch)
            for (noise, scope), p in zip(conditions[first : first + args.batch], found):
                verdicts[(noise, scope)].append((p.verdict, p.noise))
                if scope == "local":
                    kinds[(noise, kind)].append((p.verdict, p.noise))
    report: dict[str, Any] = {
        "command": "python bench/perceive_local.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "bundle": args.bundle,
        "bank_hash": pipeline.bank.bank_hash if pipeline.bank is not None else None,
        "severity": args.severity,
        "images": [{"key": r.image_key, "region": k} for r, k in images],
        "lesion_images": sum(k == "lesion" for _, k in images),
        "lesion_area_mean": round(float(np.mean(fractions)), 3) if fractions else None,
        "clean": _summary(verdicts[("clean", "clean")], "clean"),
        "noises": {},
    }
    for noise in noises:
        report["noises"][noise] = {
            "global": _summary(verdicts[(noise, "global")], noise),
            "local": _summary(verdicts[(noise, "local")], noise),
            "local_lesion": _summary(kinds[(noise, "lesion")], noise),
            "local_random": _summary(kinds[(noise, "random")], noise),
        }
    report["mean"] = {
        scope: {
            m: round(float(np.mean([report["noises"][n][scope][m] for n in noises])), 1)
            for m in ("type_right", "flagged", "clean")
        }
        for scope in ("global", "local")
    }
    report["seconds"] = round(time.perf_counter() - start, 1)
    table = _table(report)
    print(table)
    print(
        f"{len(images)} images ({report['lesion_images']} with a SLAKE lesion region), {report['seconds']} s"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "perceive_local.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    with atomic_output(out / "perceive_local.md") as tmp:
        tmp.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

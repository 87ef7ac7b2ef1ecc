"""Which corrections of :mod:`monai_imc.restore` help: PSNR of the noisy and of the restored view against the
clean one, per image noise, the true type and severity given (no perceiver), on validation images.

The views are the benchmark's (:func:`monai_imc.data.load_view` at 256 px, the noise applied to the
channel-first uint8 view with the benchmark's seeds), ``--images`` of them, taken alternately from the
validation splits of SLAKE and VQA-RAD (one per image file) until the shorter one runs out. Every correction
of :data:`monai_imc.restore.CORRECTIONS` is measured, also those the default restorer leaves out.

    MONAI_IMC_DATA=../shared/data python bench/restore_psnr.py --images 20 --severity 3 --out docs/restore.md
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from monai_imc.bench.records import noise_seed
from monai_imc.data import load_dataset, load_view
from monai_imc.noise import get_noise, list_noises
from monai_imc.noise.metrics import psnr
from monai_imc.restore import restore_view


def _views(data: Path, n: int, size: int) -> list[tuple[str, np.ndarray]]:
    per = []
    for spec in (f"slake:{data / 'slake'}", f"vqa-rad:{data / 'vqa_rad'}"):
        seen: dict[str, object] = {}
        for row in load_dataset(spec, "validate"):
            seen.setdefault(row.image_key, row.image)
        per.append(list(seen.items()))
    longest = max(len(p) for p in per)
    picked = [p[i] for i in range(longest) for p in per if i < len(p)][:n]
    out = []
    for key, path in picked:
        view = load_view(path, size)
        out.append((key, view[..., None] if view.ndim == 2 else view))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("MONAI_IMC_DATA", "../shared/data"))
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--severity", type=int, default=3)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--noises", default="all")
    p.add_argument("--out", default=None, help="write the table (markdown) to this file too")
    args = p.parse_args(argv)
    views = _views(Path(args.data), args.images, args.size)
    noises = list_noises("image") if args.noises == "all" else args.noises.split(",")
    lines = [
        "| noise | action | applied | PSNR noisy (dB) | PSNR restored (dB) | gain (dB) | images better | s / image |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for noise in noises:
        before, after, seconds, actions, applied = [], [], [], [], 0
        for key, clean in views:
            chw = np.ascontiguousarray(np.moveaxis(clean, -1, 0))
            noisy_chw = get_noise(noise).apply(chw, severity=args.severity, seed=noise_seed("0", key, noise))
            noisy = np.ascontiguousarray(np.moveaxis(noisy_chw, 0, -1))
            start = time.perf_counter()
            restored, record = restore_view(noisy, noise, args.severity)
            seconds.append(time.perf_counter() - start)
            applied += record.applied
            actions.append(record.action if record.applied else f"none ({record.reason.split(' (')[0]})")
            before.append(psnr(clean.astype(np.float64), noisy.astype(np.float64)))
            after.append(psnr(clean.astype(np.float64), np.asarray(restored, dtype=np.float64)))
        b, a = np.array(before), np.array(after)
        better = int((a > b + 1e-9).sum())
        action = (
            max(set(actions), key=actions.count)
            if not applied
            else next(x for x in actions if x[:5] != "none ")
        )
        lines.append(
            f"| {noise} | {action} | {applied}/{len(b)} | {b.mean():.2f} | {a.mean():.2f} | {a.mean() - b.mean():+.2f} | "
            f"{better}/{len(b)} | {np.mean(seconds):.3f} |"
        )
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How well single-image measures tell a bias field from a clean image: ROC AUC of ``bias_trend``,
``left_right_asymmetry`` (monai_imc.quality) and the spread of the field N4 removes (SimpleITK, the restore step's
correction; MRIQC reads intensity non-uniformity with N4) between clean training views and the same views under every image noise at
severities 3 and 5 (an AUC near 0.5: the measure does not see that noise; above 0.5: it rises with it).

    python bench/bias_field_measures.py --data ../shared/data --views 40
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from monai_imc import quality
from monai_imc.data import dataset_images
from monai_imc.data.views import load_view
from monai_imc.noise import get_noise, list_noises
from monai_imc.restore import restore_view


def n4_spread(view: np.ndarray) -> float:
    """Spread of the field N4 removes (the restore step's own correction, ``monai_imc.restore.restore_view``
    at severity 3): the standard deviation of log(view / corrected view) over the view's brighter pixels."""
    hwc = np.moveaxis(view, 0, -1)
    corrected, _ = restore_view(hwc, "bias_field", 3)
    before, after = hwc.astype(np.float64).mean(-1), np.asarray(corrected, np.float64).mean(-1)
    inside = before > 0.1 * np.quantile(before, 0.99)
    return float(np.log((before[inside] + 1.0) / (after[inside] + 1.0)).std()) if inside.any() else 0.0


def features(view: np.ndarray) -> list[float]:
    """``bias_trend``, ``left_right_asymmetry`` and the N4 spread of one channel-first view."""
    plane = np.moveaxis(view, 0, -1) if view.shape[0] == 3 else view[0]
    q = quality.measures(plane, ("bias_trend", "left_right_asymmetry"))
    return [q["bias_trend"], q["left_right_asymmetry"], n4_spread(view)]


def auc(negative: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    return float((positive[:, None] > negative[None, :]).mean() + 0.5 * (positive[:, None] == negative[None, :]).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--views", type=int, default=40, help="training views, half per dataset (every 4th image)")
    args = p.parse_args(argv)
    data, half = Path(args.data), max(1, args.views // 2)
    paths = [q for spec in (f"slake:{data / 'slake'}", f"vqa-rad:{data / 'vqa_rad'}")
             for q in dataset_images(spec, ("train",))[1 : 1 + 4 * half : 4]]
    views = []
    for path in paths:
        view = np.asarray(load_view(path, 256))
        views.append(view[None] if view.ndim == 2 else np.moveaxis(view, -1, 0))
    start = time.perf_counter()
    clean = np.array([features(v) for v in views])
    print(f"{len(views)} views; the three measures took {1000 * (time.perf_counter() - start) / len(views):.0f} ms a view")
    print(f"{'noise':11s} sev  bias_trend  left_right  n4_spread   (ROC AUC against the clean views)")
    for name in list_noises("image"):
        for severity in (3, 5):
            noisy = np.array([features(get_noise(name).apply(v, severity, seed=i)) for i, v in enumerate(views)])
            print(f"{name:11s} {severity:3d}  " + "  ".join(f"{auc(clean[:, k], noisy[:, k]):10.2f}" for k in range(3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

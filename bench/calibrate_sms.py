"""Choose SMS's assessor threshold and reviewer margin on clean validation questions, and check them.

The two numbers the bundle's ``configs/inference.json`` gives the refiner (``suspicion``, ``accept_margin``)
come from here: clean SLAKE validation questions (never test), see :func:`monai_imc.refine.calibrate`.
It then refines noisy copies of other validation questions (every text noise at the chosen severity,
training-free seeds of its own) and reports how often the repair is exact, moves the text closer to the
clean one, or changes a clean question, with the model calls made.

    python bench/calibrate_sms.py --model bundles/monai_imc_vqa/models/reference-vlm --data ../shared/data \\
        --calibrate 300 --check 100 --out results/sms-calibration
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

from tqdm.auto import tqdm

from monai_imc.atomic import atomic_output
from monai_imc.models import load_model
from monai_imc.noise import get_noise, list_noises
from monai_imc.noise.metrics import edit_distance
from monai_imc.reference.data import load_vqa
from monai_imc.refine import SMSRefiner, calibrate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--calibrate", type=int, default=300, help="clean validation questions for the choice")
    p.add_argument("--check", type=int, default=100, help="other validation questions for the check")
    p.add_argument("--severity", type=int, default=3)
    p.add_argument("--flag-rate", type=float, default=0.4)
    p.add_argument("--false-edit-rate", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    model = load_model(args.model, device="cpu")
    questions = list(dict.fromkeys(r.question for r in load_vqa(args.data, "slake", "validate")))
    random.Random(args.seed).shuffle(questions)
    pick, check = questions[: args.calibrate], questions[args.calibrate : args.calibrate + args.check]
    suspicion, margin = calibrate(SMSRefiner(model), pick, args.flag_rate, args.false_edit_rate)
    refiner = SMSRefiner(model, suspicion=suspicion, accept_margin=margin)
    result: dict = {"command": " ".join(sys.argv), "suspicion": round(suspicion, 4), "accept_margin": round(margin, 4),
                    "calibration_questions": len(pick), "check_questions": len(check), "severity": args.severity}
    clean = [refiner.refine(q) for q in tqdm(check, desc="clean")]
    result["clean"] = {"changed_pct": round(100 * sum(r.changed for r in clean) / len(clean), 2),
                       "median_calls": statistics.median(r.calls for r in clean)}
    for noise in list_noises("text"):
        rows = []
        for j, q in enumerate(tqdm(check, desc=noise)):
            noisy = get_noise(noise).apply(q, severity=args.severity, seed=10_000 + args.seed * 1_000 + j)
            r = refiner.refine(noisy)
            rows.append((q, noisy, r))
        result[noise] = {
            "exact_pct": round(100 * sum(r.text == q for q, _n, r in rows) / len(rows), 2),
            "noisy_exact_pct": round(100 * sum(n == q for q, n, _r in rows) / len(rows), 2),
            "closer_pct": round(100 * sum(edit_distance(r.text, q) < edit_distance(n, q) for q, n, r in rows)
                                / len(rows), 2),
            "farther_pct": round(100 * sum(edit_distance(r.text, q) > edit_distance(n, q) for q, n, r in rows)
                                 / len(rows), 2),
            "changed_pct": round(100 * sum(r.changed for _q, _n, r in rows) / len(rows), 2),
            "median_calls": statistics.median(r.calls for _q, _n, r in rows),
        }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "calibration.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Measure SMS on the closed VQA test questions: recovery per noise, false edits, calls, time.

For every closed-ended test question (SLAKE test, VQA-RAD test; ``--sample N`` draws N per dataset with
``--seed``): the answer to the clean question, to its noisy copy (each text noise at ``--severities``), to
the SMS-refined copy, to the spell-check baseline's copy (:mod:`monai_imc.bench.spellcheck`, same
vocabulary, no model call) and to the one-call re-pass (the model asked once to fix the question, its reply
used as is). Also: the clean questions SMS edits (false edits, per dataset, every edit listed so that those
fixing a real typo of the dataset can be told apart; always over every clean closed test question), guard violations, model calls per question (median,
clean and noisy), and SMS's wall time on clean text against a plain answer, measured in the same run
(per question: encode + answer, then refine; ratio = (refine + answer) / answer, summed over questions).

    python bench/measure_sms.py --bundle bundles/monai_imc_vqa --data ../shared/data --severities 3 \\
        --out results/sms

Writes results.json and results.md under --out.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from monai_imc.atomic import atomic_output
from monai_imc.bench.model_spec import bundle_settings
from monai_imc.bench.spellcheck import SpellCheckBaseline
from monai_imc.cli import parse_severities
from monai_imc.guards import check_repair
from monai_imc.models import load_model
from monai_imc.noise import get_noise, list_noises
from monai_imc.refine import SMSRefiner

METHODS = ("sms", "spellcheck", "repass")


def recovery(clean: float, noisy: float, method: float) -> float | None:
    """(method - noisy) / (clean - noisy); ``None`` when the noise cost nothing."""
    lost = clean - noisy
    return round((method - noisy) / lost, 3) if abs(lost) > 1e-9 else None


def main(argv: list[str] | None = None) -> int:
    from monai_imc.reference.data import load_vqa, normalize_answer
    from monai_imc.reference.prompts import rewrite_messages, vqa_prompt

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="a MONAI bundle: its model and its refiner settings")
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--datasets", default="slake,vqa_rad")
    p.add_argument("--noises", default="all")
    p.add_argument("--severities", default="3")
    p.add_argument(
        "--sample", type=int, default=0, help="draw this many closed questions per dataset (0: all)"
    )
    p.add_argument("--seed", type=int, default=4321)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)

    model_path, _bank, options = bundle_settings(args.bundle)
    model = load_model(model_path, device="cpu")
    refiner = SMSRefiner(model, **options)
    checker = SpellCheckBaseline.like(refiner)
    noises = list_noises("text") if args.noises == "all" else args.noises.split(",")
    severities = parse_severities(args.severities)

    rows = []
    edits: dict[str, list[dict]] = defaultdict(list)
    all_closed: dict[str, int] = {}
    for name in args.datasets.split(","):
        closed = [r for r in load_vqa(args.data, name, "test") if r.closed]
        # False edits: every clean closed test question of the dataset (no answer needed, so never sampled).
        all_closed[name] = len(closed)
        for r in tqdm(closed, desc=f"clean {name}"):
            refined = refiner.refine(r.question)
            if refined.changed:
                edits[name].append(
                    {
                        "question": r.question,
                        "refined": refined.text,
                        "edits": [(e.before, e.after) for e in refined.edits],
                    }
                )
        if args.sample and args.sample < len(closed):
            closed = sorted(random.Random(args.seed).sample(closed, args.sample), key=lambda r: r.question)
        rows.extend((name, r) for r in closed)

    hits: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    calls: dict[str, list[int]] = defaultdict(list)
    per_dataset: dict[str, int] = defaultdict(int)
    violations = 0
    seconds = {"answer": 0.0, "sms": 0.0}
    features_cache: dict[str, object] = {}
    replies: dict[tuple[str, str], str] = {}  # the same question about the same image is answered once

    def answer(row: object, question: str) -> float:
        key = row.image_key  # type: ignore[attr-defined]
        if key not in features_cache:
            with Image.open(row.image) as im:  # type: ignore[attr-defined]
                features_cache[key] = model.encode_images(im.convert("RGB"))
        if (key, question) not in replies:
            replies[(key, question)] = model.generate(
                features_cache[key], vqa_prompt(question), max_new_tokens=12
            )
        return float(normalize_answer(replies[(key, question)]) == normalize_answer(row.answer))  # type: ignore[attr-defined]

    for i, (dataset, row) in enumerate(tqdm(rows, desc="questions")):
        per_dataset[dataset] += 1
        # One plain answer (encode + generate, nothing cached) and one SMS pass on the clean question, timed.
        start = time.perf_counter()
        with Image.open(row.image) as im:
            features = model.encode_images(im.convert("RGB"))
        reply = model.generate(features, vqa_prompt(row.question), max_new_tokens=12)
        seconds["answer"] += time.perf_counter() - start
        start = time.perf_counter()
        refined = refiner.refine(row.question)
        seconds["sms"] += time.perf_counter() - start
        features_cache.setdefault(row.image_key, features)
        replies.setdefault((row.image_key, row.question), reply)
        hits[("clean", 0, "none")].append(answer(row, row.question))
        calls["clean"].append(refined.calls)
        if refined.changed:
            edits[dataset].append(
                {
                    "question": row.question,
                    "refined": refined.text,
                    "edits": [(e.before, e.after) for e in refined.edits],
                }
            )
        hits[("clean", 0, "sms")].append(answer(row, refined.text))
        for n_i, noise in enumerate(noises):
            for s in severities:
                noisy = get_noise(noise).apply(row.question, severity=s, seed=args.seed + 1000 * i + n_i)
                result = refiner.refine(noisy)
                calls["noisy"].append(result.calls)
                violations += int(bool(check_repair(noisy, result.text)))
                repass = " ".join(model.chat(rewrite_messages(noisy), max_new_tokens=48).split()) or noisy
                hits[(noise, s, "none")].append(answer(row, noisy))
                hits[(noise, s, "sms")].append(answer(row, result.text))
                hits[(noise, s, "spellcheck")].append(answer(row, checker.correct(noisy)))
                hits[(noise, s, "repass")].append(answer(row, repass))

    def acc(key: tuple[str, int, str]) -> float:
        values = hits.get(key, [])
        return 100.0 * sum(values) / len(values) if values else float("nan")

    clean = acc(("clean", 0, "none"))
    table = []
    for noise in noises:
        for s in severities:
            row_ = {
                "noise": noise,
                "severity": s,
                "clean": round(clean, 2),
                "noisy": round(acc((noise, s, "none")), 2),
            }
            for method in METHODS:
                row_[method] = round(acc((noise, s, method)), 2)
                row_[f"recovery_{method}"] = recovery(clean, acc((noise, s, "none")), acc((noise, s, method)))
            table.append(row_)
    pooled = {}
    lost = sum(clean - acc((r["noise"], r["severity"], "none")) for r in table)
    for method in METHODS:
        gained = sum(
            acc((r["noise"], r["severity"], method)) - acc((r["noise"], r["severity"], "none")) for r in table
        )
        pooled[method] = round(gained / lost, 3) if abs(lost) > 1e-9 else None
    results = {
        "command": " ".join(
            ["python", "bench/measure_sms.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "closed_questions": len(rows),
        "per_dataset": dict(per_dataset),
        "sampled": bool(args.sample),
        "clean_closed_acc": round(clean, 2),
        "clean_closed_acc_sms": round(acc(("clean", 0, "sms")), 2),
        "clean_closed_questions": all_closed,
        "false_edit_pct": {d: round(100.0 * len(edits[d]) / n, 2) for d, n in all_closed.items()},
        "clean_edits": dict(edits),
        "guard_violations": violations,
        "median_calls_clean": statistics.median(calls["clean"]) if calls["clean"] else None,
        "median_calls_noisy": statistics.median(calls["noisy"]) if calls["noisy"] else None,
        "max_calls_noisy": max(calls["noisy"]) if calls["noisy"] else None,
        "seconds_plain_answer": round(seconds["answer"], 3),
        "seconds_sms_clean": round(seconds["sms"], 3),
        "time_ratio_clean": round((seconds["answer"] + seconds["sms"]) / seconds["answer"], 3),
        "pooled_recovery": pooled,
        "refiner": repr(refiner),
        "rows": table,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    lines = [
        (
            f"{len(rows)} closed questions ({dict(per_dataset)}{', sampled' if args.sample else ''}); clean acc "
            f"{results['clean_closed_acc']} (SMS on clean: {results['clean_closed_acc_sms']}); false edits % "
            f"{results['false_edit_pct']}; guard violations {violations}; median calls clean "
            f"{results['median_calls_clean']}, noisy {results['median_calls_noisy']} (max {results['max_calls_noisy']}); "
            f"time (answer + SMS) / answer on clean text {results['time_ratio_clean']}x; pooled recovery {pooled}"
        ),
        "",
        "| noise | severity | noisy | SMS | spell-check | re-pass | recovery SMS | recovery spell-check | recovery re-pass |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['noise']} | {r['severity']} | {r['noisy']} | {r['sms']} | {r['spellcheck']} | {r['repass']} | "
        f"{r['recovery_sms']} | {r['recovery_spellcheck']} | {r['recovery_repass']} |"
        for r in table
    ]
    lines += ["", "Clean questions SMS edited:"]
    lines += [f"- {d}: {e['question']!r} -> {e['refined']!r}" for d in edits for e in edits[d]]
    with atomic_output(out / "results.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Choose SMS's assessor threshold and reviewer margins on held-out questions, check them, store them.

One command (re-run it when the bundle's model changes)::

    python bench/calibrate_sms.py --bundle bundles/monai_imc_vqa --data ../shared/data \\
        --out results/sms-calibration --write-bundle

Honest by construction: the texts are held-out questions (those of the images
:func:`monai_imc.reference.train.training_rows` keeps out of training, and clinicians' rephrasings of VQA-RAD
training questions that no training or test row asks; never test questions), and the
vocabulary the specialists write from is the model's tokenizer words plus the words of the *training*
questions only (not ``words.txt``, which also holds the held-out words), plus the bundle's site list: so
the held-out questions hold words the vocabulary has not seen, as new text will. The clinical vocabulary
(Hunspell en-US and en-med, the site list) is the one the app uses.

The thresholds are chosen twice on one half of the texts and checked on the other (the two-fold false-edit
rate is reported), then chosen on all of them; noisy copies of the texts (every text noise at
``--severity``) show how often SMS moves a text closer to the clean one. ``--write-bundle`` writes the
thresholds into the bundle's ``configs/inference.json`` (``refiner`` section) and the margins and rates
into ``configs/sms_calibration.json``.
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
from monai_imc.bench.model_spec import bundle_settings
from monai_imc.model_vocabulary import Vocabulary
from monai_imc.models import load_model
from monai_imc.noise import get_noise, list_noises
from monai_imc.noise.metrics import edit_distance
from monai_imc.reference.data import question_words
from monai_imc.reference.train import training_rows
from monai_imc.refine import SMSRefiner, calibrate
from monai_imc.vocabulary import ClinicalVocabulary


def heldout_questions(data: str) -> tuple[list[str], list[str]]:
    """(held-out questions never asked verbatim in training nor in a test set, the training questions' words).

    The held-out questions are those of the images :func:`training_rows` keeps out, and the clinicians'
    rephrasings of VQA-RAD training questions (``question_rephrase`` of the public JSON, train rows only)
    that no training or test row asks.
    """
    train, heldout = training_rows(data)
    asked = {r.question.strip().lower() for r in train}
    raw = json.loads((Path(data) / "vqa_rad" / "VQA_RAD_Dataset_Public.json").read_text(encoding="utf-8"))
    tests = {str(x["question"]).strip().lower() for x in raw if str(x["phrase_type"]).startswith("test")}
    rephrased = [
        str(x["question_rephrase"]).strip()
        for x in raw
        if not str(x["phrase_type"]).startswith("test")
        and x.get("question_rephrase") not in (None, "", "NULL")
    ]
    texts = [
        q
        for q in dict.fromkeys([r.question for r in heldout] + rephrased)
        if q.strip().lower() not in asked and q.strip().lower() not in tests
    ]
    return texts, question_words(train)


def write_bundle(bundle: Path, settings: dict[str, float], record: dict) -> None:
    """The chosen thresholds into ``configs/inference.json`` (refiner section), the record beside it."""
    config = bundle / "configs" / "inference.json"
    data = json.loads(config.read_text())
    data["refiner"].update(settings)
    with atomic_output(config) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
    with atomic_output(bundle / "configs" / "sms_calibration.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="the bundle whose model is calibrated")
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--severity", type=int, default=3)
    p.add_argument(
        "--flag-rate", type=float, default=0.2, help="share of clean questions sent to specialists"
    )
    p.add_argument(
        "--sound-alike-flag-rate",
        type=float,
        default=0.0,
        help="further share of clean questions sent to specialists for a word that sounds like another",
    )
    p.add_argument(
        "--reading-flag-rate",
        type=float,
        default=None,
        help="chooses the surprisal from which a suspect text's sound-alike words are read again, as "
        "--sound-alike-flag-rate chooses its threshold, without flagging texts (default: the same)",
    )
    p.add_argument("--false-edit-rate", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--write-bundle", action="store_true", help="store the thresholds and rates in the bundle")
    p.add_argument("--two-fold", action="store_true", help="also choose on each half and check on the other")
    p.add_argument("--noisy", type=int, default=60, help="texts whose noisy copies are refined for the check")
    args = p.parse_args(argv)

    bundle = Path(args.bundle)
    model_path, _bank, options = bundle_settings(bundle)
    model = load_model(model_path, device="cpu")
    site = options.get("site_words")
    texts, train_words = heldout_questions(args.data)
    random.Random(args.seed).shuffle(texts)
    clinical = ClinicalVocabulary.system()
    vocabulary = Vocabulary.from_tokenizer(model.tokenizer, extra_words=train_words, dictionary=clinical)
    unseen = sum(any(w not in vocabulary for w in question_words_of(t)) for t in texts)
    base = SMSRefiner(
        model,
        vocabulary=vocabulary,
        clinical=clinical,
        site_words=site,
        max_suspects=options.get("max_suspects", 3),
    )

    def refiner_with(settings: dict[str, float]) -> SMSRefiner:
        return SMSRefiner(
            model,
            vocabulary=base.vocabulary,
            clinical=base.clinical,
            max_suspects=base.max_suspects,
            **settings,
        )

    halves = (texts[::2], texts[1::2])
    folds = []
    for pick, check in (halves, halves[::-1]) if args.two_fold else ():
        chosen = calibrate(
            base, pick, args.flag_rate, args.false_edit_rate, args.sound_alike_flag_rate, args.reading_flag_rate
        )
        refiner = refiner_with(chosen.options())
        results = [refiner.refine(t) for t in tqdm(check, desc="fold check")]
        folds.append(
            {
                "chosen": chosen.options(),
                "check_questions": len(check),
                "edited": [(r.original, r.text) for r in results if r.changed],
                "false_edit_pct": round(100 * sum(r.changed for r in results) / len(results), 2),
            }
        )
    chosen = calibrate(
        base, texts, args.flag_rate, args.false_edit_rate, args.sound_alike_flag_rate, args.reading_flag_rate
    )
    refiner = refiner_with(chosen.options())
    if args.write_bundle:  # written now; the record follows with the checks
        write_bundle(
            bundle, chosen.options(), {"calibration": chosen.as_dict(), "settings": chosen.options()}
        )
    noisy_texts = texts[: args.noisy]
    clean = [refiner.refine(t) for t in tqdm(noisy_texts, desc="clean")]
    record: dict = {
        "command": " ".join(
            ["python", "bench/calibrate_sms.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "model": str(model_path),
        "texts": len(texts),
        "texts_with_unseen_words": unseen,
        "vocabulary_words": len(base.vocabulary or ()),
        "clinical_words": len(base.clinical or ()),
        "clinical_sources": list(base.clinical.sources) if base.clinical is not None else [],
        "calibration": chosen.as_dict(),
        "settings": chosen.options(),
        "two_fold": folds,
        "two_fold_false_edit_pct": round(statistics.mean(f["false_edit_pct"] for f in folds), 2)
        if folds
        else None,
        "check_texts": len(noisy_texts),
        "clean_in_sample": {
            "changed_pct": round(100 * sum(r.changed for r in clean) / len(clean), 2),
            "median_calls": statistics.median(r.calls for r in clean),
        },
        "severity": args.severity,
    }
    for n, noise in enumerate(list_noises("text")):
        rows = []
        for j, q in enumerate(tqdm(noisy_texts, desc=noise)):
            noisy = get_noise(noise).apply(q, severity=args.severity, seed=10_000 + 1_000 * n + j)
            rows.append((q, noisy, refiner.refine(noisy)))
        record[noise] = {
            "noisy_exact_pct": round(100 * sum(n_ == q for q, n_, _r in rows) / len(rows), 2),
            "exact_pct": round(100 * sum(r.text == q for q, _n, r in rows) / len(rows), 2),
            "closer_pct": round(
                100 * sum(edit_distance(r.text, q) < edit_distance(n_, q) for q, n_, r in rows) / len(rows), 2
            ),
            "farther_pct": round(
                100 * sum(edit_distance(r.text, q) > edit_distance(n_, q) for q, n_, r in rows) / len(rows), 2
            ),
            "median_calls": statistics.median(r.calls for _q, _n, r in rows),
        }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / "calibration.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    if args.write_bundle:
        write_bundle(
            bundle,
            chosen.options(),
            {k: v for k, v in record.items() if k != "two_fold"}
            | {"two_fold": [{k: v for k, v in f.items() if k != "edited"} for f in folds]},
        )
    print(json.dumps({k: v for k, v in record.items() if k != "two_fold"}, indent=2))
    return 0


def question_words_of(text: str) -> list[str]:
    import re

    return [w.lower() for w in re.findall(r"[A-Za-z]+", text)]


if __name__ == "__main__":
    sys.exit(main())

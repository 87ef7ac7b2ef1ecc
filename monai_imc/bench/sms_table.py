"""The SMS table of a benchmark run: per dataset and text noise, what the text methods won back and cost.

For the methods that change the question (:data:`~monai_imc.bench.records.TEXT_METHODS`: ``sms``, ``imc``,
``repass``, ``spellcheck``), per (dataset, condition, method), from the records:

- ``recovery_pct``: the share (%) of the closed accuracy the noise cost the plain model that the method
  wins back (the ``recovery`` of :func:`monai_imc.bench.report.summarize`, x 100); the ``all text noises``
  row pools every text condition: sum of the points won over sum of the points lost;
- ``edited_pct``: questions the method changed (%); on clean questions these are **false edits**;
- ``guard_refusals``: candidate edits a guard refused (:mod:`monai_imc.guards`);
- ``guard_violations``: questions asked that break a guard against the question given (SMS and the
  spell checker apply the guards; ``repass`` uses the model's reply as is);
- ``median_calls`` / ``max_calls``: model calls per question.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from monai_imc.bench.records import TEXT_METHODS, BenchRecord, iter_groups
from monai_imc.noise import get_noise

__all__ = ["sms_markdown", "sms_rows"]


def _is_text(noise: str) -> bool:
    return noise != "clean" and get_noise(noise).modality == "text"


def sms_rows(records: Sequence[BenchRecord], summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, condition, text method) over the clean and text-noise conditions.

    Args:
        records: the run's records.
        summary: :func:`monai_imc.bench.report.summarize` of the same records (accuracy and recovery).
    """
    index = {(r["dataset"], r["noise"], r["severity"], r["method"]): r for r in summary}
    rows = []
    for (dataset, noise, severity, method), group in iter_groups(records):
        if method not in TEXT_METHODS or not (noise == "clean" or _is_text(noise)):
            continue
        edited = [r.edited for r in group if r.edited is not None]
        calls = [r.calls for r in group]
        summary_row = index.get((dataset, noise, severity, method), {})
        recovery = summary_row.get("recovery")
        rows.append(
            {
                "dataset": dataset,
                "noise": noise,
                "severity": severity,
                "method": method,
                "closed_acc": summary_row.get("closed_acc"),
                "closed_n": summary_row.get("closed_n"),
                "recovery_pct": round(100.0 * recovery, 1) if recovery is not None else None,
                "edited_pct": round(100.0 * sum(edited) / len(edited), 2) if edited else None,
                "guard_refusals": sum(r.guard_refusals or 0 for r in group),
                "guard_violations": sum(r.guard_violations or 0 for r in group),
                "median_calls": statistics.median(calls) if calls else None,
                "max_calls": max(calls) if calls else None,
                "n": len(group),
            }
        )
    for dataset, method in dict.fromkeys((r["dataset"], r["method"]) for r in rows):
        noisy = [
            r for r in rows if (r["dataset"], r["method"]) == (dataset, method) and r["noise"] != "clean"
        ]
        won = lost = 0.0
        for r in noisy:
            plain = index.get((dataset, r["noise"], r["severity"], "none"), {}).get("closed_acc")
            clean = index.get((dataset, "clean", 0, "none"), {}).get("closed_acc")
            if plain is not None and clean is not None and r["closed_acc"] is not None:
                won, lost = won + r["closed_acc"] - plain, lost + clean - plain
        closed_n = max((r["closed_n"] or 0 for r in noisy), default=0)
        group = [x for x in records if (x.dataset, x.method) == (dataset, method) and _is_text(x.noise)]
        if not group:
            continue
        calls = [x.calls for x in group]
        edited = [x.edited for x in group if x.edited is not None]
        rows.append(
            {
                "dataset": dataset,
                "noise": "all text noises",
                "severity": 0,
                "method": method,
                "closed_acc": None,
                "closed_n": closed_n,
                "recovery_pct": round(100.0 * won / lost, 1)
                if closed_n and lost >= 100.0 / closed_n - 1e-9
                else None,
                "edited_pct": round(100.0 * sum(edited) / len(edited), 2) if edited else None,
                "guard_refusals": sum(x.guard_refusals or 0 for x in group),
                "guard_violations": sum(x.guard_violations or 0 for x in group),
                "median_calls": statistics.median(calls),
                "max_calls": max(calls),
                "n": len(group),
            }
        )
    return rows


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def sms_markdown(rows: Sequence[dict[str, Any]], dataset: str, methods: Sequence[str]) -> list[str]:
    """The SMS table of one dataset (empty when the run had no text method)."""
    mine = [r for r in rows if r["dataset"] == dataset and r["method"] in methods]
    if not mine:
        return []
    order = {m: i for i, m in enumerate(methods)}

    def key(r: dict[str, Any]) -> tuple[int, int, str, int, int]:
        kind = 0 if r["noise"] == "clean" else 2 if r["noise"] == "all text noises" else 1
        return (kind, 0, r["noise"], r["severity"], order[r["method"]])

    lines = [
        "### Text methods: recovery, false edits, guards, calls",
        "",
        (
            "Recovery: % of the closed accuracy the noise cost the plain model that the method wins back. Edited: "
            "questions changed (%; on clean questions: false edits). Guard refusals: candidate edits a guard "
            "refused; guard violations: questions asked that break a guard (negation, laterality, numbers, "
            "units, question form) against the question given."
        ),
        "",
        (
            "| noise | sev | method | closed acc | recovery (%) | edited (%) | guard refusals | guard violations "
            "| median calls | max calls |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(mine, key=key):
        noise = "clean (false edits)" if r["noise"] == "clean" else r["noise"]
        lines.append(
            f"| {noise} | {r['severity'] or ''} | {r['method']} | {_fmt(r['closed_acc'])} | "
            f"{_fmt(r['recovery_pct'])} | {_fmt(r['edited_pct'])} | {r['guard_refusals']} | "
            f"{r['guard_violations']} | {_fmt(r['median_calls'])} | {_fmt(r['max_calls'])} |"
        )
    return [*lines, ""]

"""Draw the IMC app graph (docs/app_graph.png): operators, their ports, and what flows between them.

python docs/draw_app_graph.py [--out docs/app_graph.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from monai_imc.atomic import atomic_output

# (operator, what it does, SDK's or ours)
NODES = [
    ("DICOMDataLoaderOperator", "DICOM folder -> studies\n(MONAI Deploy SDK)", "sdk"),
    ("DICOMSeriesSelectorOperator", "all series of each study\n(MONAI Deploy SDK)", "sdk"),
    ("SeriesToViewsOperator", "key 2D views, modality windowing;\naccounts for left-out files", "imc"),
    ("ArtifactPerceiverOperator", "one vision pass per view;\nartifact, severity, probability", "imc"),
    ("PDCCalibratorOperator", "calibrate features of\nflagged views (gate)", "imc"),
    ("SMSReportRefinerOperator", "standing questions, DICOM fields,\nsidecar -> SMS refined texts", "imc"),
    ("VLMReportOperator", "answers from calibrated\nfeatures + refined questions", "imc"),
    (
        "IMCStructuredReportWriterOperator",
        "Comprehensive 3D SR per series\n(atomic) + imc_run_report.json",
        "imc",
    ),
]
# (output port -> input port) between consecutive nodes
EDGES = [
    ("dicom_study_list", "dicom_study_list"),
    ("study_selected_series_list", "study_selected_series_list"),
    ("series_views", "series_views"),
    ("perceived", "perceived"),
    ("calibrated", "calibrated"),
    ("refined", "refined"),
    ("reports", "reports"),
]
COLOURS = {"sdk": "#dfe7f2", "imc": "#e3f1e0"}


def draw(out: Path) -> Path:
    """Draw the graph into ``out`` (PNG, written atomically)."""
    fig, ax = plt.subplots(figsize=(9.5, 12.5))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, len(NODES) * 1.5 + 0.6)
    ax.axis("off")
    width, height, x0 = 6.4, 0.95, 1.8
    tops = []
    for i, (name, note, kind) in enumerate(NODES):
        y = (len(NODES) - i - 1) * 1.5 + 0.5
        ax.add_patch(
            FancyBboxPatch(
                (x0, y), width, height, boxstyle="round,pad=0.05", fc=COLOURS[kind], ec="#445", lw=1.2
            )
        )
        ax.text(x0 + width / 2, y + 0.66, name, ha="center", va="center", fontsize=11, weight="bold")
        ax.text(x0 + width / 2, y + 0.28, note, ha="center", va="center", fontsize=8.5, color="#333")
        tops.append(y)
    for i, (out_port, in_port) in enumerate(EDGES):
        y_from, y_to = tops[i], tops[i + 1] + height
        ax.add_patch(
            FancyArrowPatch(
                (x0 + width / 2, y_from - 0.02),
                (x0 + width / 2, y_to + 0.08),
                arrowstyle="-|>",
                mutation_scale=14,
                lw=1.3,
                color="#334",
            )
        )
        label = out_port if out_port == in_port else f"{out_port} -> {in_port}"
        ax.text(x0 + width / 2 + 0.12, (y_from + y_to) / 2, label, fontsize=8, style="italic", va="center")
    ax.text(
        0.1,
        len(NODES) * 1.5 + 0.3,
        "IMC MONAI Deploy app: one IMCContext (model, prototype bank, "
        "SMS refiner) built once from the bundle, shared by every IMC operator",
        fontsize=8.5,
    )
    ax.text(x0 + width + 0.15, tops[-1] + 0.45, "OUT/IMC_SR_<series>.dcm", fontsize=8, color="#264")
    ax.text(0.05, tops[0] + 0.45, "IN/ (DICOM,\nimc_questions.json)", fontsize=8, color="#264")
    fig.tight_layout()
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    """Command line: draw the graph."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("app_graph.png")))
    print(f"wrote {draw(Path(parser.parse_args().out))}")


if __name__ == "__main__":
    main()

"""Coded concepts of the IMC structured report: artifact types, severity, probability, texts.

Where DICOM (``DCM``), SNOMED CT (``SCT``) or RadLex (``RADLEX``) has a concept with the meaning we need,
we use it; every code here that comes from those schemes is in pydicom's code dictionary
(``pydicom.sr.codedict.codes``), so a reader can check it. Where none exists, the code belongs to our own
private coding scheme, designator :data:`IMC_SCHEME` (``99IMC``; DICOM PS3.16 reserves designators that
begin with ``99`` for local schemes), and its meaning says exactly what our perceiver reports.

Usage::

    from monai_imc.dicom.codes import artifact_code, severity_code

    artifact_code("ghosting")   # Code('RID11426', 'RADLEX', 'Ghost')
    artifact_code(None)         # the "no artifact" value
    severity_code(4)            # Code('24484000', 'SCT', 'Severe')
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pydicom.sr.coding import Code

__all__ = [
    "ANSWER",
    "ARTIFACT_CODES",
    "ASSESSMENT_SUMMARY",
    "CALIBRATION_APPLIED",
    "IMAGE_ARTIFACTS",
    "IMAGING_PROCEDURE",
    "IMC_SCHEME",
    "NO",
    "NOT_ASSESSABLE",
    "NOT_ASSESSABLE_REASON",
    "NO_ARTIFACT",
    "ORIGINAL_TEXT",
    "PROBABILITY",
    "PROBABILITY_UNIT",
    "QUESTION",
    "REFINED_TEXT",
    "RESTORATION",
    "SEVERITY",
    "SEVERITY_LEVEL",
    "SEVERITY_LEVEL_UNIT",
    "SEVERITY_VALUES",
    "TEXT_EDIT",
    "TEXT_RECORD",
    "TEXT_ROLE",
    "YES",
    "artifact_code",
    "severity_code",
]

IMC_SCHEME = "99IMC"
"""Coding scheme designator of our private codes (local schemes begin with ``99``, PS3.16 section 8.2)."""

IMAGE_ARTIFACTS = Code("111207", "DCM", "Image artifact(s)")
"""DCM 111207: the concept name of the artifact finding in each measurement group (CID 7011)."""

NO_ARTIFACT = Code("260413007", "SCT", "None")
"""SCT 260413007 "None": the value of :data:`IMAGE_ARTIFACTS` when the image was judged clean."""

ARTIFACT_CODES: Mapping[str, Code] = MappingProxyType(
    {
        # MRI k-space motion: RadLex "Motion related artifact" (CID 6316 MR Imaging Artifact).
        "motion": Code("RID11423", "RADLEX", "Motion related artifact"),
        # Periodic motion along the phase-encoding axis: RadLex "Ghost" (CID 6316).
        "ghosting": Code("RID11426", "RADLEX", "Ghost"),
        # Receive-coil inhomogeneity: RadLex "Non-uniform signal intensity artifact" (CID 6316).
        "bias_field": Code("RID11408", "RADLEX", "Non-uniform signal intensity artifact"),
        # Thermal noise of low-SNR MRI: DCM 130578 "Poor SNR" (CID 6315 MR series quality finding).
        "rician": Code("130578", "DCM", "Poor SNR"),
        # Lossy 8-bit JPEG export: DCM 113040 "Lossy Compression".
        "jpeg": Code("113040", "DCM", "Lossy Compression"),
        # No standard code with these exact meanings in DCM, SCT or the RadLex subset DICOM uses:
        "spike": Code("IMC001", IMC_SCHEME, "k-space spike (herringbone) artifact"),
        "gibbs": Code("IMC002", IMC_SCHEME, "Gibbs ringing (truncation) artifact"),
        "low_dose": Code("IMC003", IMC_SCHEME, "Quantum noise (low dose) artifact"),
        "blur": Code("IMC004", IMC_SCHEME, "Image blur (unsharpness) artifact"),
    }
)
"""The value of :data:`IMAGE_ARTIFACTS` per image noise name of ``monai_imc.noise.list_noises("image")``.

Considered and not used: DCM 111210 "Motion blur" (a radiograph positioning finding; our ``blur`` also
covers detector and focal-spot unsharpness), DCM 111211 "Under exposed" (names a cause, not the quantum
noise our ``low_dose`` detects), DCM 113088 "Gaussian blur" (an image derivation method, CID 7203).
"""

SEVERITY = Code("246112005", "SCT", "Severity")
"""SCT 246112005 "Severity": concept name of the coded severity of a detected artifact."""

SEVERITY_VALUES: Mapping[int, Code] = MappingProxyType(
    {
        1: Code("255604002", "SCT", "Mild"),
        2: Code("255604002", "SCT", "Mild"),
        3: Code("6736007", "SCT", "Moderate"),
        4: Code("24484000", "SCT", "Severe"),
        5: Code("24484000", "SCT", "Severe"),
    }
)
"""Our severity levels 1..5 mapped to SCT Mild (1, 2) / Moderate (3) / Severe (4, 5) (CID 3716 values)."""

SEVERITY_LEVEL = Code("IMC010", IMC_SCHEME, "IMC severity level")
"""Our private numeric concept for the exact level 1..5, kept beside the coarser SCT severity."""

SEVERITY_LEVEL_UNIT = Code("{level}", "UCUM", "level")
"""UCUM annotation unit of :data:`SEVERITY_LEVEL`."""

PROBABILITY = Code("122157", "DCM", "Probability")
"""DCM 122157 "Probability": the perceiver's probability of the reported finding (artifact or none)."""

PROBABILITY_UNIT = Code("{probability}", "UCUM", "probability")
"""UCUM annotation unit of :data:`PROBABILITY` (a dimensionless value in [0, 1])."""

CALIBRATION_APPLIED = Code("IMC011", IMC_SCHEME, "Feature calibration applied")
"""Private concept: whether PDC moved this image's vision features before the answer (value YES / NO)."""

YES = Code("373066001", "SCT", "Yes")
"""SCT 373066001 "Yes"."""

NO = Code("373067005", "SCT", "No")
"""SCT 373067005 "No"."""

TEXT_ROLE = Code("IMC020", IMC_SCHEME, "Clinical text role")
"""Private TEXT concept: where a text came from (e.g. ``ReasonForTheRequestedProcedure``, a config name)."""

ORIGINAL_TEXT = Code("IMC021", IMC_SCHEME, "Original clinical text")
"""Private TEXT concept: the text exactly as received, before any refinement; always kept."""

REFINED_TEXT = Code("IMC022", IMC_SCHEME, "Refined clinical text")
"""Private TEXT concept: the text after SMS refinement (equal to the original when nothing changed)."""

QUESTION = Code("IMC023", IMC_SCHEME, "Question to the model")
"""Private TEXT concept: the question or prompt put to the model."""

ANSWER = Code("IMC024", IMC_SCHEME, "Model answer or draft report")
"""Private TEXT concept: the model's answer or draft report (unverified)."""

NOT_ASSESSABLE = Code("IMC005", IMC_SCHEME, "Not assessable")
"""Private value of :data:`IMAGE_ARTIFACTS` when the perceiver could not judge the image (degenerate, or
unlike the images its prototype bank was built from): no artifact is claimed, and none is denied."""

ASSESSMENT_SUMMARY = Code("IMC012", IMC_SCHEME, "IMC assessment")
"""Private TEXT concept: the perceiver's verdict in plain words ("no artifact detected", "motion artifact,
severity 4 of 5 ...", "not assessable: <reason>")."""

NOT_ASSESSABLE_REASON = Code("IMC013", IMC_SCHEME, "Reason not assessable")
"""Private TEXT concept: why the image could not be assessed."""

RESTORATION = Code("IMC014", IMC_SCHEME, "Image restoration")
"""Private TEXT concept: the perceiver-guided restoration applied to the image before the model saw it
(``"non-local means (h=0.031, sigma=0.034, ...)"``), or ``"none: <why>"`` (:mod:`monai_imc.restore`)."""

CALIBRATION_NOTE = Code("IMC015", IMC_SCHEME, "Reason calibration not applied")
"""Private TEXT concept: why PDC left a found artifact uncalibrated (``"level 2 is below the level PDC
calibrates from (3)"``, ``"disabled"`` ...); written only for an artifact that was not calibrated."""

TEXT_RECORD = Code("IMC025", IMC_SCHEME, "Clinical text record")
"""Private CONTAINER concept: one clinical text with its refinement, the question asked and the answer."""

TEXT_EDIT = Code("IMC026", IMC_SCHEME, "Clinical text edit")
"""Private TEXT concept: one change refinement made to the text (``'Iocoted' -> 'Located' (specialist:spelling)``)."""

IMAGING_PROCEDURE = Code("363679005", "SCT", "Imaging procedure")
"""SCT 363679005 "Imaging procedure": the default *procedure reported* of the TID 1500 root."""


def artifact_code(name: str | None) -> Code:
    """The coded value of the artifact finding for a noise name, or :data:`NO_ARTIFACT` for ``None``.

    Args:
        name: an image noise name of the registry (``"motion"``, ``"jpeg"`` ...) or ``None`` for clean.

    Returns:
        The code to use as the value of DCM 111207 "Image artifact(s)".

    Raises:
        ValueError: ``name`` is not an image noise we have a code for.
    """
    if name is None:
        return NO_ARTIFACT
    try:
        return ARTIFACT_CODES[name]
    except KeyError:
        raise ValueError(f"no artifact code for noise {name!r}; known: {sorted(ARTIFACT_CODES)}") from None


def severity_code(level: int) -> Code:
    """The SCT severity (Mild / Moderate / Severe) of a severity level 1..5.

    Raises:
        ValueError: ``level`` is not an integer in 1..5.
    """
    if isinstance(level, bool) or level not in SEVERITY_VALUES:
        raise ValueError(f"severity level must be an integer in 1..5, got {level!r}")
    return SEVERITY_VALUES[level]

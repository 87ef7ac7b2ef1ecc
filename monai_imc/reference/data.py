"""Training and evaluation data of the reference model: SLAKE and VQA-RAD rows, images, labels, roles.

- :func:`load_vqa`, :class:`VQARow` and :func:`is_heldout_image` come from the one data layer
  (:mod:`monai_imc.data`, re-exported here): the source splits of SLAKE and VQA-RAD, and the fixed 5% of
  training images (by canonical image key) kept out of training, which every consumer's ``validate``
  split is.
- :func:`image_labels` gives the auxiliary vision targets of an image: modality, body region, SLAKE
  location, the organs and findings of SLAKE's ``detection.json`` and their box centres, and what the
  image's own training answers say of it (scan plane, normal or abnormal, organs present or absent).
- :func:`agent_examples` builds the judge / rewrite pairs from questions with the text noise library.

Example:
    >>> from monai_imc.reference.data import load_vqa
    >>> rows = load_vqa("../shared/data", "slake", "train")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from monai_imc.answers import normalize_answer
from monai_imc.data import HELDOUT_PERCENT, VQARow, is_heldout_image, load_vqa
from monai_imc.prompts import CLEAN_LABEL, judge_prompt, rewrite_prompt

__all__ = [
    "HELDOUT_PERCENT",
    "LOCATIONS",
    "MODALITIES",
    "ORGANS",
    "PLANES",
    "QUESTION_ORGANS",
    "REGIONS",
    "AgentExample",
    "ImageLabels",
    "VQARow",
    "agent_examples",
    "image_labels",
    "is_heldout_image",
    "load_vqa",
    "normalize_answer",
]

#: Modalities (SLAKE ``modality``).
MODALITIES: tuple[str, ...] = ("CT", "MRI", "X-Ray")
#: Coarse body regions, shared by SLAKE ``location`` and VQA-RAD ``image_organ``.
REGIONS: tuple[str, ...] = ("head", "neck", "chest", "abdomen", "pelvis")
#: SLAKE ``location`` values.
LOCATIONS: tuple[str, ...] = (
    "Abdomen", "Brain", "Brain_Face", "Brain_Tissue", "Chest_heart", "Chest_lung", "Chest_mediastinal",
    "Lung", "Neck", "Pelvic Cavity",
)
#: Organs and findings named in SLAKE's ``detection.json`` files.
ORGANS: tuple[str, ...] = (
    "Atelectasis", "Bladder", "Brain Edema", "Brain Enhancing Tumor", "Brain Non-enhancing Tumor",
    "Brain Stem", "Cardiomegaly", "Colon", "Duodenum", "Effusion", "Esophagus", "Heart", "Infiltrate",
    "Larynx", "Left Ear", "Left Eye", "Left Femoral Head", "Left Kidney", "Left Lung", "Left Mandible",
    "Left Parotid", "Left Temporal Lobe", "Liver", "Liver Cancer", "Lung Cancer", "Mass", "Nodule",
    "Pneumonia", "Pneumothorax", "Rectum", "Right Ear", "Right Eye", "Right Femoral Head", "Right Kidney",
    "Right Lung", "Right Mandible", "Right Parotid", "Right Temporal Lobe", "Small Bowel", "Spinal Cord",
    "Spleen", "Stomach", "Tooth", "Trachea",
)
#: Scan planes named in the training answers.
PLANES: tuple[str, ...] = ("transverse", "coronal", "sagittal")
#: Organs that training questions ask the presence of ("Does the picture contain the liver?").
QUESTION_ORGANS: tuple[str, ...] = (
    "bladder", "brain", "brain stem", "colon", "duodenum", "ears", "esophagus", "eyes", "heart", "kidney",
    "liver", "lung", "mandible", "rectum", "small bowel", "spinal cord", "spleen", "stomach",
)
_ORGAN_SPELLINGS = {"brian": "brain", "spine cord": "spinal cord", "kidneys": "kidney", "lungs": "lung"}
_PRESENCE_QUESTIONS = (
    re.compile(r"^does the picture contain (?:the )?(?P<organ>[a-z ]+?)\??$"),
    re.compile(r"^does (?:the )?(?P<organ>[a-z ]+?) exist in this picture\??$"),
    re.compile(r"^is there (?:a |the )?(?P<organ>[a-z ]+?) in this (?:image|picture)\??$"),
)


@dataclass(frozen=True)
class ImageLabels:
    """Auxiliary vision targets of one image (``-1`` / empty where unknown).

    Attributes:
        modality: index into :data:`MODALITIES`, or -1.
        region: index into :data:`REGIONS`, or -1.
        location: index into :data:`LOCATIONS`, or -1.
        organs: 0/1 per :data:`ORGANS` entry; empty when the image has no ``detection.json``.
        centres: ``(x, y)`` box centre in [0, 1] per present organ (``None`` where absent).
        plane: index into :data:`PLANES` from the image's answers, or -1.
        abnormal: 1 if an answer says the image shows an abnormality, 0 if answers say it is normal, -1.
        present: 1 (present), 0 (absent) or -1 (unknown) per :data:`QUESTION_ORGANS`, from the image's
            presence questions and its ``detection.json``.
    """

    modality: int = -1
    region: int = -1
    location: int = -1
    organs: tuple[int, ...] = ()
    centres: tuple[tuple[float, float] | None, ...] = field(default=())
    plane: int = -1
    abnormal: int = -1
    present: tuple[int, ...] = ()


def question_words(rows: Sequence[VQARow]) -> list[str]:
    """The distinct lower-case words of the questions, sorted: the word list of a model trained on them.

    SMS's lexical specialists (:mod:`monai_imc.text_candidates`) write only words a model knows; the
    reference model's tokenizer holds few whole words, so its folder ships this list as ``words.txt``.
    """
    return sorted({w.lower() for r in rows for w in re.findall(r"[A-Za-z]+", r.question)})


def _organ_name(text: str) -> str | None:
    name = " ".join(text.lower().split())
    name = _ORGAN_SPELLINGS.get(name, name)
    return name if name in QUESTION_ORGANS else None


def answer_labels(rows: Sequence[VQARow]) -> tuple[int, int, tuple[int, ...]]:
    """What the answers to an image's (training) questions say of the image.

    Args:
        rows: the questions of one image, with their answers (training data only).

    Returns:
        ``(plane, abnormal, present)`` as in :class:`ImageLabels`.
    """
    plane, abnormal = -1, -1
    present = [-1] * len(QUESTION_ORGANS)
    for r in rows:
        q, a = " ".join(r.question.lower().split()), normalize_answer(r.answer)
        if a in ("yes", "no"):
            yes = a == "yes"
            for pattern in _PRESENCE_QUESTIONS:
                match = pattern.match(q)
                organ = _organ_name(match.group("organ")) if match else None
                if organ is not None:
                    present[QUESTION_ORGANS.index(organ)] = int(yes)
            if "abnormal" in q:
                abnormal = max(abnormal, int(yes))
            elif "healthy" in q or re.search(r"\bnormal\b", q):
                abnormal = max(abnormal, int(not yes))
            if yes and ("plane" in q or "section" in q):
                named = [i for i, name in enumerate(PLANES) if name in q]
                plane = named[0] if len(named) == 1 else plane
        elif "plane" in q or "section" in q or "view" in q:
            a = a.replace("axial", "transverse")
            named = [i for i, name in enumerate(PLANES) if name in a]
            plane = named[0] if len(named) == 1 else plane
    return plane, abnormal, tuple(present)


def image_labels(row: VQARow, answers: Sequence[VQARow] = ()) -> ImageLabels:
    """The auxiliary vision targets of ``row``'s image.

    SLAKE images get modality, region, location and, from ``detection.json`` beside the image, organ
    presence and box centres (relative to the image size); VQA-RAD images get their region. ``answers``
    (the image's training questions) add the scan plane, normal or abnormal, and which organs the
    answers say are present or absent (an organ ``detection.json`` boxes counts as present).

    Args:
        row: any row of the image.
        answers: the image's training rows (never test rows).

    Returns:
        The labels.
    """
    modality = MODALITIES.index(row.modality) if row.modality in MODALITIES else -1
    region = REGIONS.index(row.region) if row.region in REGIONS else -1
    location = LOCATIONS.index(row.location) if row.location in LOCATIONS else -1
    plane, abnormal, present = answer_labels(answers)
    detection = row.image.parent / "detection.json"
    if row.dataset != "slake" or not detection.is_file():
        return ImageLabels(
            modality=modality, region=region, location=location, plane=plane, abnormal=abnormal, present=present
        )
    from PIL import Image

    with Image.open(row.image) as im:
        width, height = im.size
    organs = [0] * len(ORGANS)
    centres: list[tuple[float, float] | None] = [None] * len(ORGANS)
    for entry in json.loads(detection.read_text(encoding="utf-8")):
        for name, box in entry.items():
            if name not in ORGANS:
                continue
            i = ORGANS.index(name)
            organs[i] = 1
            x, y, w, h = (float(v) for v in box)
            centres[i] = ((x + w / 2) / width, (y + h / 2) / height)
            organ = _organ_name(name.lower().removeprefix("left ").removeprefix("right "))
            if organ is None and name.lower().endswith((" eye", " ear")):
                organ = _organ_name(name.lower().split()[-1] + "s")
            if organ is not None:
                present = present[: QUESTION_ORGANS.index(organ)] + (1,) + present[QUESTION_ORGANS.index(organ) + 1 :]
    return ImageLabels(modality, region, location, tuple(organs), tuple(centres), plane, abnormal, present)


@dataclass(frozen=True)
class AgentExample:
    """One agent-role training or evaluation pair.

    Attributes:
        role: ``"judge"`` or ``"rewrite"``.
        prompt: the role's prompt (:mod:`monai_imc.prompts`).
        target: the expected reply.
        noise: the noise applied (``"clean"`` for none).
        clean: the clean question.
        noisy: the question shown.
    """

    role: str
    prompt: str
    target: str
    noise: str
    clean: str
    noisy: str


def agent_examples(
    questions: list[str],
    noises: list[str],
    seed: int,
    severities: tuple[int, ...] = (1, 2, 3, 4, 5),
    variants: int = 1,
) -> list[AgentExample]:
    """Judge and rewrite pairs for ``questions``: each clean, and noisy with each of ``noises``.

    Every question gives, per role, ``variants`` copies of its clean example (so that ``clean`` keeps a
    fair share of the judge's labels) and ``variants`` noisy examples per noise (severity
    drawn from ``severities``). A noisy version that equals the clean text is dropped (the noise found
    nothing to change), so a label is never contradicted.

    Args:
        questions: the clean questions (duplicates are removed, order kept).
        noises: text noise names (:func:`monai_imc.noise.list_noises` ``("text")``).
        seed: base seed of the severities and the noises.
        severities: severity levels to draw from.
        variants: noisy variants per question and noise.

    Returns:
        The examples.
    """
    from monai_imc.noise import get_noise

    rng = random.Random(seed)
    out: list[AgentExample] = []
    for qi, question in enumerate(dict.fromkeys(questions)):
        for _ in range(variants):
            out.append(AgentExample("judge", judge_prompt(question), CLEAN_LABEL, CLEAN_LABEL, question, question))
            out.append(AgentExample("rewrite", rewrite_prompt(question), question, CLEAN_LABEL, question, question))
        for ni, name in enumerate(noises):
            for v in range(variants):
                severity = rng.choice(severities)
                noisy = get_noise(name).apply(question, severity=severity, seed=seed * 1_000_003 + qi * 101 + ni * 11 + v)
                if " ".join(noisy.split()) == question:
                    continue
                out.append(AgentExample("judge", judge_prompt(noisy), name, name, question, noisy))
                out.append(AgentExample("rewrite", rewrite_prompt(noisy), question, name, question, noisy))
    return out

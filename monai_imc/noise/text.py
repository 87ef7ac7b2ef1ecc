"""Errors of clinical text as it reaches a model: typing, OCR, dictation, shorthand and irrelevant context.

Each noise is a seeded transform on a string with five severity levels. Its random draws (which places
an error hits, which error) are made once per text and do not depend on the level; level k applies the
first n_k of them, with n_k growing with k, so level k+1 holds every error of level k and more. The
noises model realistic mistakes, not adversarial rewrites, and keep what a question turns on: negation
words, laterality and numbers are never corrupted (abbreviations keep them: ``left`` may become ``lt``),
and the first word, which sets the question's form (``Is``/``What``), is kept by the word-level noises.

Example::

    from monai_imc.noise.text import KeyboardTypos

    KeyboardTypos(severity=2, seed=0)("Is there a pneumothorax in the left lung?")
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monai_imc.guards import text_facts
from monai_imc.lexicon import is_protected_word
from monai_imc.noise.base import Noise, NoiseDict, nested_count
from monai_imc.noise.registry import register_noise

__all__ = [
    "ASRErrors",
    "ASRErrorsd",
    "AbbreviationVariants",
    "AbbreviationVariantsd",
    "DistractorClause",
    "DistractorClaused",
    "KeyboardTypos",
    "KeyboardTyposd",
    "OCRErrors",
    "OCRErrorsd",
    "TextNoise",
    "words",
]

_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?")


@dataclass(frozen=True)
class Edit:
    """One replacement of ``text[start:end]`` by ``replacement``."""

    start: int
    end: int
    replacement: str


def words(text: str) -> list[re.Match[str]]:
    """The alphabetic words of ``text`` (apostrophes inside a word kept), as regex matches."""
    return list(_WORD.finditer(text))


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Apply non-overlapping edits (any order) to ``text``."""
    out, cursor = [], 0
    for edit in sorted(edits, key=lambda e: e.start):
        if edit.start < cursor:
            continue
        out.append(text[cursor : edit.start])
        out.append(edit.replacement)
        cursor = edit.end
    out.append(text[cursor:])
    return "".join(out)


def _match_case(source: str, replacement: str) -> str:
    if source.isupper() and len(source) > 1:
        return replacement.upper()
    if source[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


class TextNoise(Noise):
    """Base of the text noises: validation, nested draws and the dictionary twin's call.

    Subclasses implement ``_candidates(text) -> list[Edit]``: every error that could be made, already
    in a random order drawn from ``self.R``. Level k applies the first
    :func:`~monai_imc.noise.base.nested_count` of them, ``rates`` giving the share of candidates per level.

    Args:
        severity: level 1..5.
        seed: seed of the random state.
    """

    modality = "text"

    def __init__(self, severity: int = 3, seed: int | None = 0) -> None:
        super().__init__(severity, seed)
        self._drawn: tuple[str, list[Edit]] | None = None

    def randomize(self, data: str) -> None:
        """Draw every candidate error of ``data`` in a random order (severity-independent).

        A candidate that would create or remove a fact (a typo that turns ``on`` into ``no``, an OCR
        misreading that leaves a lone digit) is dropped: the facts a question turns on stay as written.
        """
        facts = _facts(data)
        self._drawn = (data, [e for e in self._candidates(data) if _facts(apply_edits(data, [e])) == facts])

    def __call__(self, text: str, randomize: bool = True) -> str:
        """Corrupt ``text``; ``randomize=False`` reuses the draw of the last call on the same text.

        Raises:
            TypeError: ``text`` is not a string.
            ValueError: ``text`` is empty or blank.
        """
        if not isinstance(text, str):
            raise TypeError(f"expected a string, got {type(text).__name__}")
        if not text.strip():
            raise ValueError("text is empty: nothing to corrupt")
        if randomize or self._drawn is None or self._drawn[0] != text:
            self.randomize(text)
        assert self._drawn is not None
        candidates = self._drawn[1]
        return self._render(text, candidates[: self._count(len(candidates))])

    def _count(self, n_candidates: int) -> int:
        """How many of the drawn candidates the current level applies."""
        return nested_count(self.severity, [lvl["rate"] for lvl in self.levels], n_candidates)

    def _render(self, text: str, chosen: Sequence[Edit]) -> str:
        out = apply_edits(text, chosen)
        facts = _facts(text)
        while _facts(out) != facts and chosen:  # two edits that together form a protected word: rare
            chosen = chosen[:-1]
            out = apply_edits(text, chosen)
        return out

    def _candidates(self, text: str) -> list[Edit]:
        raise NotImplementedError

    def _shuffled(self, items: list[Any]) -> list[Any]:
        order = self.R.permutation(len(items))
        return [items[i] for i in order]


def _facts(text: str) -> tuple[object, ...]:
    """Negation cues, sides and numbers of ``text``: what no text noise may change."""
    facts = text_facts(text)
    return facts.negations, facts.sides, facts.numbers


def _letter_positions(text: str) -> list[int]:
    """Positions of letters in words that are not protected."""
    return [i for m in words(text) if not is_protected_word(m.group()) for i in range(m.start(), m.end())]


_QWERTY = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def _keyboard_neighbours() -> dict[str, str]:
    grid = {ch: (r, c) for r, row in enumerate(_QWERTY) for c, ch in enumerate(row)}
    out = {}
    for ch, (r, c) in grid.items():
        out[ch] = "".join(
            other for other, (r2, c2) in grid.items() if other != ch and abs(r2 - r) <= 1 and abs(c2 - c) <= 1
        )
    return out


_NEIGHBOURS = _keyboard_neighbours()


@register_noise
class KeyboardTypos(TextNoise):
    """Keyboard typos: a neighbouring key, a dropped or doubled letter, two letters swapped.

    ``rate`` is the share of the unprotected letters that get a typo (at least ``severity`` letters).
    """

    name = "typo"
    cause = "hurried typing of requests and questions on keyboards and touch screens"
    levels = ({"rate": 0.02}, {"rate": 0.04}, {"rate": 0.07}, {"rate": 0.10}, {"rate": 0.15})

    def _candidates(self, text: str) -> list[Edit]:
        edits = []
        for i in self._shuffled(_letter_positions(text)):
            ch = text[i]
            kind = self.R.choice(["neighbour", "neighbour", "drop", "double", "swap"])
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if kind == "swap" and nxt.isalpha() and nxt.lower() != ch.lower():
                edits.append(Edit(i, i + 2, nxt + ch))
            elif kind == "drop":
                edits.append(Edit(i, i + 1, ""))
            elif kind == "double":
                edits.append(Edit(i, i + 1, ch + ch))
            else:
                options = _NEIGHBOURS.get(ch.lower(), "") or "e"
                new = options[self.R.randint(len(options))]
                edits.append(Edit(i, i + 1, new.upper() if ch.isupper() else new))
        return _drop_overlaps(edits)


def _drop_overlaps(edits: list[Edit], pad: int = 1) -> list[Edit]:
    """Keep edits in order, dropping any that touches or adjoins (within ``pad`` characters) an earlier one.

    Separated edits add up: every level's prefix applies whole, and no later edit can undo or merge with
    an earlier one (a dropped letter beside a doubled one, a filler word in the space of a dropped word),
    so the edit distance grows with the level.
    """
    taken: set[int] = set()
    kept = []
    for e in edits:
        end = max(e.end, e.start + 1)
        if taken.intersection(range(e.start - pad, end + pad)):
            continue
        taken.update(range(e.start, end))
        kept.append(e)
    return kept


_OCR_CONFUSIONS: dict[str, tuple[str, ...]] = {
    "rn": ("m",), "m": ("rn",), "cl": ("d",), "d": ("cl",), "vv": ("w",), "w": ("vv",), "li": ("h",),
    "h": ("li", "b"), "l": ("1", "I"), "I": ("l", "1"), "i": ("l", "1"), "O": ("0",), "o": ("0", "c"),
    "e": ("c",), "c": ("e",), "a": ("o",), "n": ("ri", "h"), "u": ("v",), "g": ("q",), "S": ("5",),
    "s": ("5",), "B": ("8",), "f": ("t",), "t": ("f",), "y": ("v",), "Z": ("2",), "b": ("h",),
}
_OCR_PATTERN = re.compile("|".join(sorted(map(re.escape, _OCR_CONFUSIONS), key=len, reverse=True)))


@register_noise
class OCRErrors(TextNoise):
    """OCR errors: look-alike glyph confusions (``rn``/``m``, ``l``/``1``, ``O``/``0``, ``cl``/``d`` ...)
    and lost spaces between words.

    ``rate`` is the share of confusable places that are misread (at least ``severity`` places).
    """

    name = "ocr"
    cause = "optical character recognition of scanned or photographed requisitions and printed reports"
    levels = ({"rate": 0.04}, {"rate": 0.08}, {"rate": 0.13}, {"rate": 0.19}, {"rate": 0.26})

    def _candidates(self, text: str) -> list[Edit]:
        edits = []
        ws = words(text)
        for m in ws:
            if is_protected_word(m.group()):
                continue
            for g in _OCR_PATTERN.finditer(m.group()):
                options = _OCR_CONFUSIONS[g.group()]
                start = m.start() + g.start()
                edits.append(Edit(start, start + len(g.group()), options[self.R.randint(len(options))]))
        for left, right in itertools.pairwise(ws):
            gap = text[left.end() : right.start()]
            if gap == " " and not is_protected_word(left.group()) and not is_protected_word(right.group()):
                edits.append(Edit(left.end(), right.start(), ""))
        return _drop_overlaps(self._shuffled(edits))


# Sound-alike substitutions that speech recognition makes in dictated radiology text (lower case).
_SOUND_ALIKES: dict[str, tuple[str, ...]] = {
    "pleural": ("plural",), "ileum": ("ilium",), "mucus": ("mucous",), "plane": ("plain",),
    "weighted": ("waited",), "weighting": ("waiting",), "cord": ("chord",), "vein": ("vain",),
    "veins": ("vains",), "disease": ("decease",), "diseases": ("deceases",), "nodule": ("module",),
    "nodules": ("modules",), "aortic": ("erotic",), "renal": ("rental",), "effusion": ("infusion",),
    "modality": ("mortality",), "lesion": ("legion",), "lesions": ("legions",), "bowel": ("bowl",),
    "colon": ("colin",), "liver": ("lever",), "lung": ("long",), "lungs": ("longs",), "heart": ("hart",),
    "picture": ("pitcher",), "there": ("their",), "which": ("witch",), "where": ("wear",), "see": ("sea",),
    "seen": ("scene",), "whole": ("hole",), "main": ("mane",), "by": ("buy",), "be": ("bee",),
    "to": ("too",), "for": ("fore",), "than": ("then",), "are": ("our",), "lobe": ("load",),
    "spinal": ("spiral",), "opacities": ("capacities",), "cyst": ("sis",), "mass": ("mast",),
    "scan": ("scam",), "edema": ("a dema",), "coronal": ("corona",), "axial": ("axle",),
    "sagittal": ("sagittarius",), "trachea": ("track a",), "aorta": ("a order",), "spleen": ("spline",),
    "pancreas": ("pan creas",), "pneumonia": ("new monia",), "pneumothorax": ("new mo thorax",),
    "cardiomegaly": ("cardio megaly",), "atelectasis": ("at elect asis",), "contrast": ("contest",),
    "organ": ("organs",), "organs": ("organ",), "brain": ("brain's",), "image": ("imagine",),
    "study": ("steady",), "chest": ("chess",), "kidney": ("kidneys",), "kidneys": ("kidney's",),
    "abnormality": ("abnormally",), "fracture": ("fraction",), "fractures": ("fractions",),
    "tumor": ("tumble",), "hernia": ("hernias",), "stomach": ("stomachs",), "patient": ("patience",),
    "located": ("locate it",), "contain": ("content",), "appear": ("a peer",), "present": ("presence",),
}
_DROPPABLE = frozenset({"the", "a", "an", "of"})
_FILLERS = ("uh", "um", "er", "uh", "um", "you know")


@register_noise
class ASRErrors(TextNoise):
    """Speech-recognition (dictation) errors: sound-alike words, split medical terms, dropped function words,
    and, once those are used up, transcribed hesitations (``uh``, ``um``) between words.

    Candidates are the words with a known sound-alike or droppable (``the``, ``a``, ``an``, ``of``), in a
    random order, followed by the gaps between words; ``rate`` is the share of candidates a level applies
    (at least ``severity``). The first word is kept.
    """

    name = "asr"
    cause = "speech recognition of dictated questions and reports: homophones and split medical terms"
    levels = ({"rate": 0.1}, {"rate": 0.2}, {"rate": 0.3}, {"rate": 0.42}, {"rate": 0.55})

    def _candidates(self, text: str) -> list[Edit]:
        edits = []
        ws = words(text)
        for m in ws[1:]:
            word = m.group()
            lowered = word.lower()
            if is_protected_word(word):
                continue
            if lowered in _SOUND_ALIKES:
                options = _SOUND_ALIKES[lowered]
                edits.append(Edit(m.start(), m.end(), _match_case(word, options[self.R.randint(len(options))])))
            elif lowered in _DROPPABLE:
                end = m.end() + 1 if text[m.end() : m.end() + 1] == " " else m.end()
                edits.append(Edit(m.start(), end, ""))
        fillers = [
            Edit(left.end(), left.end(), " " + _FILLERS[self.R.randint(len(_FILLERS))])
            for left, right in itertools.pairwise(ws)
            if text[left.end() : right.start()] == " "
        ]
        return _drop_overlaps(self._shuffled(edits) + self._shuffled(fillers))


# Clinical shorthand and terminology variants (lower-case phrase -> variant as written).
_ABBREVIATIONS: dict[str, str] = {
    "magnetic resonance imaging": "MRI", "computed tomography": "CT", "chest x-ray": "CXR", "x-ray": "XR",
    "central nervous system": "CNS", "gastrointestinal": "GI", "intravenous": "IV", "small bowel": "SB",
    "gallbladder": "GB", "urinary bladder": "UB", "spinal cord": "SC", "pleural effusion": "pl eff",
    "image": "img", "images": "imgs", "picture": "pic", "patient": "pt", "abnormality": "abnl",
    "abnormalities": "abnls", "abnormal": "abnl", "normal": "nl", "left": "lt", "right": "rt",
    "bilateral": "b/l", "with": "w/", "without": "w/o", "abdomen": "abd", "abdominal": "abd",
    "fracture": "fx", "fractures": "fxs", "diagnosis": "dx", "history": "hx", "treatment": "tx",
    "symptoms": "sx", "pneumothorax": "PTX", "pneumonia": "PNA", "effusion": "eff", "atelectasis": "atx",
    "lymphadenopathy": "LAD", "hemorrhage": "hem", "pulmonary": "pulm", "cardiac": "card",
    "anterior": "ant", "posterior": "post", "superior": "sup", "inferior": "inf", "lateral": "lat",
    "transverse": "trans", "coronal": "cor", "sagittal": "sag", "axial": "ax", "weighted": "wtd",
    "approximately": "approx", "located": "loc", "location": "loc", "examination": "exam",
    "between": "b/w", "and": "&", "increased": "incr", "decreased": "decr", "enlarged": "enl",
    "enlargement": "enl", "disease": "dz", "diseases": "dzs", "modality": "mod", "vertebra": "vert",
    "vertebrae": "verts", "mediastinum": "mediast", "hemidiaphragm": "hemidiaph", "kidney": "kid",
    "kidneys": "kids", "number": "#", "evidence": "evid", "organ": "org", "organs": "orgs",
    "lobe": "lb", "region": "rgn", "tissue": "tiss", "contrast": "cx", "respiratory": "resp",
    "cardiomegaly": "CMG", "lesion": "les", "lesions": "les", "study": "stdy", "pelvis": "pelv",
}
_ABBREVIATION_PATTERN = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, _ABBREVIATIONS), key=len, reverse=True)) + r")\b", re.IGNORECASE
)
_ARTICLES = re.compile(r"\b(?:the|a|an|this|these)\s+", re.IGNORECASE)


@register_noise
class AbbreviationVariants(TextNoise):
    """Clinical shorthand: terms replaced by abbreviations and terminology variants, articles dropped.

    Abbreviations come first in the random order, then telegraphic drops of articles and demonstratives
    (``the``, ``a``, ``an``, ``this``, ``these``) and of a closing question mark; ``rate`` is the share of
    those places that are rewritten (at least ``severity``). Laterality and negation keep their meaning
    (``left`` -> ``lt``, ``without`` -> ``w/o``); the first word is kept.
    """

    name = "abbreviation"
    cause = "clinical shorthand and local terminology in requests and notes (pt, abd, lt, w/o, PTX ...)"
    levels = ({"rate": 0.2}, {"rate": 0.35}, {"rate": 0.5}, {"rate": 0.7}, {"rate": 0.9})

    def _candidates(self, text: str) -> list[Edit]:
        first = words(text)[:1]
        first_end = first[0].end() if first else 0
        terms = [
            Edit(m.start(), m.end(), _ABBREVIATIONS[m.group().lower()])
            for m in _ABBREVIATION_PATTERN.finditer(text)
            if m.start() >= first_end
        ]
        telegraphic = [Edit(m.start(), m.end(), "") for m in _ARTICLES.finditer(text) if m.start() >= first_end]
        stripped = text.rstrip()
        if stripped.endswith("?"):
            telegraphic.append(Edit(len(stripped) - 1, len(stripped), ""))
        return _drop_overlaps(self._shuffled(terms) + self._shuffled(telegraphic), pad=0)


# Clinical context that has nothing to do with what the image shows: no negation, laterality, numbers.
_DISTRACTORS: tuple[str, ...] = (
    "The patient arrived by ambulance this morning.",
    "Family members are waiting in the lobby.",
    "The referring physician asked for a quick read.",
    "Patient has a history of seasonal allergies.",
    "The scan was scheduled after lunch.",
    "Patient reports feeling tired lately.",
    "Insurance authorization was obtained yesterday.",
    "The technologist noted that the patient was anxious.",
    "Prior studies are stored at another hospital.",
    "Patient is allergic to penicillin.",
    "The ordering team is on the surgical service.",
    "Patient was offered water before the exam.",
    "History of hypertension, controlled with medication.",
    "Patient traveled abroad last month.",
    "The report is needed before the clinic visit.",
    "Patient works as a school teacher.",
    "The exam room was changed due to maintenance.",
    "Patient has a follow-up appointment next week.",
    "The patient asked about parking validation.",
    "Consent forms were signed at registration.",
)


@register_noise
class DistractorClause(TextNoise):
    """Irrelevant clinical context around the question: ``clauses`` sentences that do not bear on the image.

    The sentences are drawn from a pool of realistic, neutral remarks (no negation, laterality or
    numbers) and placed before or after the question; level k adds ``clauses`` of them.
    """

    name = "distractor"
    cause = "irrelevant history and logistics pasted into requests, or a conversation picked up by dictation"
    levels = ({"clauses": 1}, {"clauses": 2}, {"clauses": 3}, {"clauses": 4}, {"clauses": 5})

    def _count(self, n_candidates: int) -> int:
        return min(int(self.params["clauses"]), n_candidates)

    def _render(self, text: str, chosen: Sequence[Edit]) -> str:
        before = [e.replacement for e in chosen if e.start == 0]
        after = [e.replacement for e in chosen if e.start != 0]
        return " ".join([*before, text.strip(), *after])

    def _candidates(self, text: str) -> list[Edit]:
        pool = self._shuffled(list(_DISTRACTORS))
        places = self.R.randint(0, 2, size=len(pool))
        return [Edit(0 if p == 0 else len(text), 0 if p == 0 else len(text), s) for s, p in zip(pool, places)]


class KeyboardTyposd(NoiseDict):
    """Dictionary twin of :class:`KeyboardTypos`."""

    array_class = KeyboardTypos


class OCRErrorsd(NoiseDict):
    """Dictionary twin of :class:`OCRErrors`."""

    array_class = OCRErrors


class ASRErrorsd(NoiseDict):
    """Dictionary twin of :class:`ASRErrors`."""

    array_class = ASRErrors


class AbbreviationVariantsd(NoiseDict):
    """Dictionary twin of :class:`AbbreviationVariants`."""

    array_class = AbbreviationVariants


class DistractorClaused(NoiseDict):
    """Dictionary twin of :class:`DistractorClause`."""

    array_class = DistractorClause

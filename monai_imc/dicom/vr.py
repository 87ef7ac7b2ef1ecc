"""Text values checked against their Value Representation (PS3.5 6.2) before they go into an SR.

The source study's attributes that an SR carries (patient, study, request: highdicom copies them from the
source images) are data from another system and may break the standard: a 70-character StudyDescription
in an LO of at most 64, a date written ``2020-01-31``, a control character in a name. An SR copying them
would be invalid (``dciodvfy`` errors; some PACS refuse it). :func:`conform_source` makes a header copy of
a source dataset whose values fit their VRs:

- descriptive text (LO, SH, ST, LT, PN, UC and the like) too long: truncated, ending with the marker
  :data:`MARKER`; control characters the VR does not allow are replaced by a space;
- identifiers (``...ID``, ``...Number``), coded and formatted values (CS, DA, TM, DT, AS, DS, IS, AE)
  that break their VR: emptied (a truncated identifier would file the SR under another patient or
  study);
- UIDs are left alone (an SR cannot be made without them; :func:`problems` then reports the SR invalid);
- a standard attribute stored under another VR than the standard's (a PatientID written as DS, a
  PatientName as US or OB: explicit-VR files can say anything) is written under the standard's text VR,
  its value as text, then conformed as above.

Every value changed is returned with its original, which the SR keeps in full in a TEXT item.
:func:`problems` lists what still breaks a VR in a dataset (the SR writer's check before the rename).

Usage::

    from monai_imc.dicom.vr import conform_source, problems

    header, changes = conform_source(ds)      # changes: [Change("StudyDescription", "LO", original, new, why)]
    assert not problems(header)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

__all__ = [
    "MARKER",
    "MAX_LENGTH",
    "Change",
    "clean_text_values",
    "conform_source",
    "conform_value",
    "problems",
]

MARKER = "..."
"""Ends a value truncated to fit its VR (ASCII: valid in every character set)."""

MAX_LENGTH: dict[str, int] = {
    "AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64, "LT": 10240,
    "PN": 64, "SH": 16, "ST": 1024, "TM": 14, "UI": 64,
}  # fmt: skip
"""Maximum length in characters of one value (PN: of each component group); absent: unlimited."""

_TEXT_VRS = ("LO", "SH", "ST", "LT", "PN", "UC", "UT")
_LONG_TEXT = ("ST", "LT", "UT")  # these allow CR, LF and FF (and ESC), not TAB (dciodvfy agrees)
_FORMAT = {
    "CS": re.compile(r"^[A-Z0-9 _]*$"),
    "DA": re.compile(r"^(\d{8})?$"),
    "TM": re.compile(r"^(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?$"),
    "DT": re.compile(r"^(\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?)?$"),
    "AS": re.compile(r"^(\d{3}[DWMY])?$"),
    "DS": re.compile(r"^ *([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)? *$"),
    "IS": re.compile(r"^ *([+-]?\d+)? *$"),
    "UI": re.compile(r"^([0-9.]*)$"),
}
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0e-\x1a\x1c-\x1f\x7f]")  # ESC (0x1b) starts ISO 2022 escapes
_CONTROL_SHORT = re.compile(r"[\x00-\x1a\x1c-\x1f\x7f]")  # short texts allow no CR / LF / TAB either
_ENUMERATED = {"PatientSex": ("M", "F", "O")}  # enumerated values the SR's IOD (and highdicom) insist on
_BULK = ("PixelData", "FloatPixelData", "DoubleFloatPixelData", "OverlayData", "WaveformData")
_STRING_VRS = frozenset((*MAX_LENGTH, *_TEXT_VRS, "UR"))


@dataclass(frozen=True)
class Change:
    """A value changed to fit its VR.

    Attributes:
        keyword: the attribute (``StudyDescription``; a nested one as ``Sequence>Keyword``).
        vr: its VR.
        original: the value as in the source (all values joined with a backslash).
        value: the value written (``""`` when emptied).
        reason: why, in words.
    """

    keyword: str
    vr: str
    original: str
    value: str
    reason: str


def conform_value(vr: str, value: str, identifier: bool = False) -> tuple[str, str | None]:
    """One value made to fit ``vr``: ``(value, None)`` when it fits, else ``(new value, reason)``.

    Args:
        vr: the VR.
        value: one value (not backslash-joined).
        identifier: the attribute identifies something (an ID or number): never truncated, emptied.
    """
    problem = _value_problem(vr, value)
    if problem is None:
        return value, None
    if vr in _TEXT_VRS and not identifier:
        control = _CONTROL if vr in _LONG_TEXT else _CONTROL_SHORT
        cleaned = control.sub(" ", value)
        limit = MAX_LENGTH.get(vr)
        if vr == "PN":
            groups = [g if len(g) <= 64 else g[: 64 - len(MARKER)] + MARKER for g in cleaned.split("=")]
            cleaned = "=".join(groups[:3])
        elif limit is not None and len(cleaned) > limit:
            cleaned = cleaned[: limit - len(MARKER)].rstrip() + MARKER
        if _value_problem(vr, cleaned) is None:
            return cleaned, f"{problem}; truncated with {MARKER!r} or cleaned"
    if vr == "UI":
        return value, problem  # cannot be fixed here
    return "", f"{problem}; left empty"


def conform_source(ds: Dataset) -> tuple[Dataset, list[Change]]:
    """A header copy of ``ds`` (no pixel data) whose text values fit their VRs, and what was changed.

    The copy keeps ``ds``'s file meta and ``filename``; sequences are copied item by item.
    """
    changes: list[Change] = []
    header = _conformed(ds, "", changes)
    if hasattr(ds, "file_meta"):
        header.file_meta = ds.file_meta
    header.filename = getattr(ds, "filename", None)
    return header, changes


def problems(ds: Dataset) -> list[str]:
    """What breaks a VR in ``ds`` (recursively), as ``"Keyword (VR): problem"``; empty when valid."""
    found = []
    for path, elem in _elements(ds, ""):
        standard = _standard_vr(elem)
        if standard is not None and standard != elem.VR:
            found.append(f"{path} ({elem.VR}): the standard's VR is {standard}")
            continue
        for value in _values(elem):
            problem = _value_problem(elem.VR, value)
            if problem is not None:
                found.append(f"{path} ({elem.VR}): {problem}")
    return found


# --- internals ----------------------------------------------------------------------------------------


def _conformed(ds: Dataset, prefix: str, changes: list[Change]) -> Dataset:
    out = Dataset()
    for elem in ds:
        if elem.keyword in _BULK:
            continue
        path = f"{prefix}{elem.keyword or str(elem.tag)}"
        if elem.VR == "SQ":
            items = [_conformed(item, f"{path}>", changes) for item in elem.value or []]
            out.add(DataElement(elem.tag, "SQ", Sequence(items)))
            continue
        standard = _standard_vr(elem)
        if standard is not None and standard != elem.VR:
            _retyped(elem, standard, path, out, changes)
            continue
        values = _values(elem)
        if not values:
            out.add(elem)
            continue
        identifier = elem.keyword.endswith(("ID", "Number", "Numbers")) or elem.VR == "UI"
        fixed = [conform_value(elem.VR, v, identifier) for v in values]
        allowed = _ENUMERATED.get(elem.keyword) if not prefix else None
        if allowed is not None:
            fixed = [
                (v, r) if v in allowed else ("", f"{v!r} is not one of {', '.join(allowed)}")
                for v, r in fixed
            ]
        if all(reason is None for _, reason in fixed):
            out.add(elem)
            continue
        new = [v for v, _ in fixed]
        reason = "; ".join(sorted({r for _, r in fixed if r}))
        original = "\\".join(values)
        changes.append(Change(path, elem.VR, original, "\\".join(new), reason))
        out.add(DataElement(elem.tag, elem.VR, new if len(new) > 1 else new[0]))
    return out


def _standard_vr(elem: DataElement) -> str | None:
    """The standard's VR of a standard attribute when it is one text VR (``None``: private, unknown,
    ambiguous such as ``US or SS``, or not text)."""
    if elem.tag.is_private:
        return None
    try:
        standard = dictionary_VR(elem.tag)
    except KeyError:
        return None
    return standard if standard in _STRING_VRS else None


def _as_texts(elem: DataElement, vr: str) -> list[str]:
    """The element's value(s) as text, whatever its VR (bytes as Latin-1, trailing padding dropped)."""
    value = elem.value
    if value is None or value == "" or value == b"":
        return []
    items = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    texts = []
    for item in items:
        if isinstance(item, bytes):
            text = item.decode("latin-1").rstrip("\x00 ")
            texts.extend([text] if vr in _LONG_TEXT else text.split("\\"))
        else:
            texts.append(str(item))
    return texts


def _retyped(elem: DataElement, vr: str, path: str, out: Dataset, changes: list[Change]) -> None:
    """Add ``elem`` to ``out`` under the standard's ``vr``, its values as text fitted to it."""
    values = _as_texts(elem, vr)
    identifier = elem.keyword.endswith(("ID", "Number", "Numbers")) or vr == "UI"
    fixed = [conform_value(vr, v, identifier) for v in values]
    new = [v for v, _ in fixed]  # a UID that is not one stays as it is: problems() reports it
    reasons = sorted({r for _, r in fixed if r})
    reason = "; ".join([f"stored as {elem.VR}, the standard's VR is {vr}", *reasons])
    changes.append(Change(path, vr, "\\".join(values), "\\".join(new), reason))
    out.add(DataElement(elem.tag, vr, new if len(new) > 1 else (new[0] if new else "")))


def _elements(ds: Dataset, prefix: str) -> Iterator[tuple[str, DataElement]]:
    for elem in ds:
        path = f"{prefix}{elem.keyword or str(elem.tag)}"
        if elem.VR == "SQ":
            for item in elem.value or []:
                yield from _elements(item, f"{path}>")
        elif elem.keyword not in _BULK:
            yield path, elem


def _values(elem: DataElement) -> list[str]:
    """The element's string values; ``[]`` for VRs this module does not check or an empty element."""
    if elem.VR not in MAX_LENGTH and elem.VR not in _TEXT_VRS:
        return []
    value = elem.value
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    out = []
    for item in items:
        original = getattr(item, "original_string", None)  # DS / IS as written in the file
        out.append(str(original if original is not None else item) if item is not None else "")
    return out


def _value_problem(vr: str, value: str) -> str | None:
    limit = MAX_LENGTH.get(vr)
    if vr == "PN":
        long = [g for g in value.split("=") if len(g) > 64]
        if long:
            return f"a name component group of {len(long[0])} characters, over PN's 64"
        if value.count("=") > 2:
            return "more than 3 component groups"
    elif limit is not None and len(value) > limit:
        return f"{len(value)} characters, over {vr}'s {limit}"
    control = _CONTROL if vr in _LONG_TEXT else _CONTROL_SHORT
    if vr in _TEXT_VRS or vr == "AE":
        if control.search(value):
            return "a control character the VR does not allow"
        return None
    pattern = _FORMAT.get(vr)
    if pattern is not None and not pattern.match(value):
        return f"{value[:40]!r} is not a valid {vr} value"
    if vr == "IS" and value.strip() and not -(2**31) <= int(value) < 2**31:
        return f"{value.strip()} is outside IS's range"
    return None


def clean_text_values(ds: Dataset) -> int:
    """Replace the control characters UT does not allow in every TextValue of ``ds``'s content tree: TAB by
    a space, the others (e.g. NUL, BEL) by U+FFFD; returns how many values changed (an SR cannot carry
    them at all)."""
    changed = 0
    for _, elem in _elements(ds, ""):
        if elem.keyword == "TextValue" and isinstance(elem.value, str) and _CONTROL.search(elem.value):
            elem.value = _CONTROL.sub("\ufffd", elem.value.replace("\t", " "))
            changed += 1
    return changed

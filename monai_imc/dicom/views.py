"""Series -> key 2D views, windowed for the modality, ready for the model's image processor.

One series in (a list of pydicom Datasets), a few 8-bit views out, each knowing which SOP instance and
frame it came from and which window made it:

- a volume (several slices of CT/MR with ImagePositionPatient) is sorted along the slice normal (or by
  InstanceNumber) and gives its middle slice, or ``n_views`` evenly spaced slices;
- a multi-frame instance gives its middle frame (or ``n_views`` evenly spaced frames);
- single-frame 2D instances (CR, DX, US, a lone MR slice) give one view each.

Windowing follows the file where it says how: VOI LUT Sequence, else WindowCenter/WindowWidth (the first
pair); else modality defaults: CT presets (soft tissue, lung, bone, brain) chosen from BodyPartExamined,
or a percentile window (0.5 %..99.5 %) for MR, US, CR, DX and the rest. MONOCHROME1 is inverted so that
every view reads as MONOCHROME2; RGB (and YBR, decoded to RGB) passes through as (H, W, 3).

A series that cannot give views (no pixel data, an SR or KO, a corrupt pixel stream) raises
:class:`UnsupportedSeriesError` naming the SOP Instance UID and the file, so the app can skip that series
and go on.

Usage::

    from monai_imc.dicom.views import series_views

    views = series_views(datasets)            # middle slice / frame, or one per 2D instance
    views = series_views(datasets, n_views=3)
    views[0].pixels                           # uint8 (H, W) or (H, W, 3)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_voi
from pydicom.uid import UID, UID_dictionary

from monai_imc.dicom.frames import DEFAULT_MAX_PIXELS, FrameError, read_frame
from monai_imc.dicom.window import apply_window, by_stored_value, lut_max, modality_lut, to_uint8, voi_source

__all__ = [
    "CT_PRESETS",
    "DEFAULT_MAX_PIXELS",
    "SeriesView",
    "UnsupportedSeriesError",
    "Window",
    "ct_preset_for",
    "dataset_views",
    "is_image_object",
    "key_indices",
    "series_views",
    "sop_class_kind",
    "window_frame",
]

logger = logging.getLogger(__name__)

CT_PRESETS: dict[str, tuple[float, float]] = {
    "soft_tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
"""CT window presets as (center, width) in HU."""

_CT_BODY_PARTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("LUNG", "CHEST", "THORAX"), "lung"),
    (("HEAD", "BRAIN", "SKULL"), "brain"),
    (("SPINE", "EXTREMITY", "BONE", "HIP", "KNEE", "SHOULDER", "ANKLE", "WRIST", "ELBOW", "PELVIS"), "bone"),
)

_PERCENTILES = (0.5, 99.5)


# Objects that are never images, even when a modality is set (SR, KO, PR, ...): SOP Class UID prefixes.
_NON_IMAGE_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.",  # Structured Report family, Key Object Selection (.88.59)
    "1.2.840.10008.5.1.4.1.1.11.",  # Presentation States
    "1.2.840.10008.5.1.4.1.1.66",  # Raw Data, Spatial Registration, Segmentation, fiducials
    "1.2.840.10008.5.1.4.1.1.104.",  # Encapsulated PDF / CDA / STL
    "1.2.840.10008.5.1.4.1.1.9.",  # Waveforms
    "1.2.840.10008.5.1.4.1.1.481.",  # Radiotherapy objects (RT Image, .481.1, is an image: see below)
)
_IMAGE_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.481.1",)  # RT Image Storage
_IMAGE_NAME_WORDS = ("Image Storage", "Volume Storage")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


class UnsupportedSeriesError(ValueError):
    """A series (or one of its instances) cannot give image views.

    Attributes:
        sop_instance_uid: the offending instance's SOP Instance UID (``None`` when it has none).
        path: the file it was read from, when known.
        reason: why, in words.
    """

    def __init__(self, reason: str, sop_instance_uid: str | None = None, path: str | None = None) -> None:
        self.sop_instance_uid = sop_instance_uid
        self.path = path
        self.reason = reason
        where = f"SOP Instance UID {sop_instance_uid or '(none)'}"
        if path:
            where += f" (file {path})"
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Window:
    """The intensity window that made a view.

    Attributes:
        center: window center in the units after the modality LUT (HU for CT); ``None`` for a VOI LUT.
        width: window width in the same units; ``None`` for a VOI LUT.
        source: where it came from: ``"file"`` (WindowCenter/Width), ``"file_voi_lut"`` (VOI LUT
            Sequence), ``"preset:<name>"`` (a :data:`CT_PRESETS` entry) or ``"percentile"``.
        function: the VOI LUT function applied (``LINEAR``, ``LINEAR_EXACT`` or ``SIGMOID``).
    """

    center: float | None
    width: float | None
    source: str
    function: str = "LINEAR"


@dataclass(frozen=True)
class SeriesView:
    """One key 2D view of a series, with where it came from and how it was windowed.

    Attributes:
        pixels: the view, ``uint8``, (H, W) for grayscale (MONOCHROME2 sense) or (H, W, 3) for RGB;
            read-only.
        sop_class_uid: SOP Class UID of the source instance.
        sop_instance_uid: SOP Instance UID of the source instance.
        frame_number: 1-based frame number in a multi-frame instance, ``None`` for a single-frame one.
        window: the window used, ``None`` for colour images passed through.
        modality: the series' Modality (e.g. ``"CT"``).
        series_instance_uid: the series it belongs to.
        study_instance_uid: the study it belongs to.
        position: index of the slice / frame in the sorted series (0-based).
        count: number of slices / frames it was chosen from.
        notes: what was done to read it that a reader should know (read reduced, NaN values shown black).
    """

    pixels: np.ndarray = field(repr=False)
    sop_class_uid: str
    sop_instance_uid: str
    frame_number: int | None
    window: Window | None
    modality: str
    series_instance_uid: str
    study_instance_uid: str
    position: int = 0
    count: int = 1
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.pixels.dtype != np.uint8 or self.pixels.ndim not in (2, 3):
            raise ValueError(
                f"a view must be uint8 (H, W) or (H, W, 3), got {self.pixels.dtype} {self.pixels.shape}"
            )
        self.pixels.setflags(write=False)


def key_indices(count: int, n_views: int = 1) -> list[int]:
    """Indices of ``n_views`` evenly spaced items of ``count``; one view is the middle one.

    Example: ``key_indices(10) == [5]``, ``key_indices(10, 3) == [1, 5, 8]``.

    Raises:
        ValueError: ``count`` or ``n_views`` is below 1.
    """
    if count < 1 or n_views < 1:
        raise ValueError(f"count and n_views must be >= 1, got count={count}, n_views={n_views}")
    n = min(n_views, count)
    return sorted({min(count - 1, int((k + 0.5) * count / n)) for k in range(n)})


def is_image_object(ds: Dataset) -> bool:
    """Whether ``ds`` is meant to be an image: False for SR, KO, presentation states, RT plans, PDF,
    waveforms, segmentations and every other SOP class whose standard name is not an image storage.

    An image object without pixel data is still an image object (a broken one): :func:`series_views`
    raises for it, while a caller may simply skip objects for which this returns False. An object of a
    SOP class pydicom does not know (a private one) is not one: the SR could not reference it.
    """
    return sop_class_kind(ds)[0]


def sop_class_kind(ds: Dataset) -> tuple[bool, str]:
    """``(is_image, name)`` of ``ds``'s SOP class: see :func:`is_image_object`; ``name`` is the standard
    name (or the UID itself when pydicom does not know it, ``"(none)"`` when absent)."""
    try:
        uid = UID(str(ds.get("SOPClassUID", "") or "").strip())
    except Exception:  # noqa: BLE001  (a malformed value)
        uid = UID("")
    if not uid:
        return True, "(none)"
    name = uid.name if uid.name != str(uid) else str(uid)
    if str(uid) in _IMAGE_SOP_CLASSES:
        return True, name
    if str(uid).startswith(_NON_IMAGE_SOP_PREFIXES):
        return False, name
    if uid in UID_dictionary:
        return any(w in name for w in _IMAGE_NAME_WORDS), name
    return False, f"{name}, a SOP class the app does not know"


def ct_preset_for(ds: Dataset) -> str:
    """The name of the CT window preset for a dataset, from BodyPartExamined (soft tissue by default)."""
    part = str(ds.get("BodyPartExamined", "") or "").upper()
    for keys, name in _CT_BODY_PARTS:
        if any(k in part for k in keys):
            return name
    return "soft_tissue"


def series_views(
    datasets: Sequence[Dataset],
    n_views: int = 1,
    ct_preset: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[SeriesView]:
    """Key 2D views of one series.

    Args:
        datasets: the instances of one series (any order).
        n_views: views per volume or multi-frame instance (evenly spaced; 1 gives the middle one).
        ct_preset: force a :data:`CT_PRESETS` window for CT where the file has none
            (default: chosen from BodyPartExamined).
        max_pixels: the decode budget per frame (see :data:`DEFAULT_MAX_PIXELS`).

    Returns:
        The views: for a volume, ``n_views`` slices in slice order; otherwise the views of each instance in
        InstanceNumber order.

    Raises:
        UnsupportedSeriesError: the list is empty, mixes series, or an instance has no usable pixel data.
    """
    _check_preset(ct_preset)
    if not datasets:
        raise UnsupportedSeriesError("the series has no instances")
    series_uids = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(series_uids) > 1:
        raise UnsupportedSeriesError(
            f"the datasets belong to {len(series_uids)} series, expected one",
            _uid(datasets[0]),
            _path(datasets[0]),
        )
    for ds in datasets:
        _check_image(ds)
    volume = _as_volume(datasets)
    if volume is not None:
        return [
            _make_view(volume[i], None, ct_preset, position=i, count=len(volume), max_pixels=max_pixels)
            for i in key_indices(len(volume), n_views)
        ]
    views: list[SeriesView] = []
    for ds in sorted(datasets, key=_instance_number):
        views.extend(dataset_views(ds, n_views=n_views, ct_preset=ct_preset, max_pixels=max_pixels))
    return views


def dataset_views(
    ds: Dataset, n_views: int = 1, ct_preset: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[SeriesView]:
    """Views of one instance: its only frame, or ``n_views`` evenly spaced frames of a multi-frame one
    (only those frames are decoded).

    Raises:
        UnsupportedSeriesError: the instance has no usable pixel data.
    """
    _check_preset(ct_preset)
    _check_image(ds)
    frames = _number_of_frames(ds)
    if frames <= 1:
        return [_make_view(ds, None, ct_preset, max_pixels=max_pixels)]
    return [
        _make_view(ds, i, ct_preset, position=i, count=frames, max_pixels=max_pixels)
        for i in key_indices(frames, n_views)
    ]


def window_frame(
    ds: Dataset, frame: np.ndarray, frame_index: int | None = None, ct_preset: str | None = None
) -> tuple[np.ndarray, Window | None]:
    """Window one stored frame of ``ds`` to 8 bits.

    Args:
        ds: the instance (for the modality LUT, VOI attributes, photometric interpretation).
        frame: the frame's stored values, (H, W) or (H, W, 3).
        frame_index: 0-based frame index for the per-frame attributes of a multi-frame instance.
        ct_preset: a :data:`CT_PRESETS` name to use for CT when the file gives no window.

    Returns:
        ``(view, window)``: ``uint8`` (H, W) in MONOCHROME2 sense, or (H, W, 3) RGB with ``window=None``.
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(frame, ds)
        return to_uint8(rgb, lut_max(rgb)), None
    if frame.ndim == 3:
        bits = int(ds.get("BitsStored", 8) or 8)
        return to_uint8(frame, float(2**bits - 1)), None
    modality = str(ds.get("Modality", "")).upper()
    voi = voi_source(ds, frame_index)
    if isinstance(voi, Dataset):  # the dataset (or frame VOI item) holding a VOI LUT Sequence
        voi_lut, maximum = voi, float(2 ** int(voi.VOILUTSequence[0].LUTDescriptor[2]) - 1)

        def display(stored: np.ndarray) -> np.ndarray:
            values = np.rint(modality_lut(ds, stored, frame_index)).astype(np.int64)
            return to_uint8(apply_voi(values, voi_lut), maximum)

        view = by_stored_value(frame, display)
        window: Window = Window(None, None, "file_voi_lut")
    else:
        values = None
        if voi is not None:
            center, width, function = voi
            source = "file"
        elif modality == "CT":
            name = ct_preset or ct_preset_for(ds)
            if name not in CT_PRESETS:
                raise ValueError(f"unknown CT preset {name!r}; known: {sorted(CT_PRESETS)}")
            center, width = CT_PRESETS[name]
            function, source = "LINEAR", f"preset:{name}"
        else:  # a window from the values themselves
            values = modality_lut(ds, frame, frame_index)
            lo, hi = np.percentile(values, _PERCENTILES)
            center, width = float(lo + hi) / 2.0, max(float(hi - lo), 1.0)
            function, source = "LINEAR", "percentile"
        if values is not None:
            view = apply_window(values, center, width, function)
        else:  # each stored value once (modality LUT, then the window), where the frame is large
            view = by_stored_value(
                frame,
                lambda stored: apply_window(modality_lut(ds, stored, frame_index), center, width, function),
            )
        window = Window(center, width, source, function)
    if photometric == "MONOCHROME1":
        view = 255 - view
    return view, window


# --- internals ----------------------------------------------------------------------------------------


def _uid(ds: Dataset) -> str | None:
    uid = ds.get("SOPInstanceUID")
    return str(uid) if uid else None


def _path(ds: Dataset) -> str | None:
    name = getattr(ds, "filename", None)
    return str(name) if isinstance(name, str) and name else None


def _error(ds: Dataset, reason: str) -> UnsupportedSeriesError:
    return UnsupportedSeriesError(reason, _uid(ds), _path(ds))


def _check_preset(ct_preset: str | None) -> None:
    if ct_preset is not None and ct_preset not in CT_PRESETS:
        raise ValueError(f"unknown CT preset {ct_preset!r}; known: {sorted(CT_PRESETS)}")


def _check_image(ds: Dataset) -> None:
    sop_class = str(ds.get("SOPClassUID", ""))
    image, name = sop_class_kind(ds)
    if not image:
        raise _error(ds, f"not an image object ({name}, Modality {ds.get('Modality', '?')})")
    present = [kw for kw in _PIXEL_KEYWORDS if kw in ds]
    if not present:
        raise _error(ds, f"no pixel data (SOP Class {sop_class or '(none)'})")
    if ds[present[0]].is_empty:
        raise _error(ds, f"the pixel data element is empty (SOP Class {sop_class or '(none)'})")
    _number_of_frames(ds)


def _instance_number(ds: Dataset) -> tuple[int, str]:
    try:
        number = int(ds.get("InstanceNumber", 0) or 0)
    except (TypeError, ValueError):
        number = 0
    return number, str(ds.get("SOPInstanceUID", ""))


def _number_of_frames(ds: Dataset) -> int:
    if "NumberOfFrames" not in ds:
        return 1
    value = ds.get("NumberOfFrames")
    try:
        frames = int(value) if value not in (None, "") else 1
    except (TypeError, ValueError) as exc:
        raise _error(ds, f"invalid NumberOfFrames {value!r}") from exc
    if frames < 1:
        raise _error(ds, f"NumberOfFrames is {frames}: the object holds no frame")
    return frames


def _as_volume(datasets: Sequence[Dataset]) -> list[Dataset] | None:
    """The slices in slice order when ``datasets`` form a volume of single-frame slices, else ``None``.

    With ImageOrientationPatient and ImagePositionPatient on every slice, the volume is the largest set of
    slices sharing one orientation (a localizer filed in the same series is left out), sorted along the
    slice normal; otherwise CT/MR/PT/NM slices are sorted by InstanceNumber.
    """
    if len(datasets) < 2 or any(_number_of_frames(ds) > 1 for ds in datasets):
        return None
    geometry = {i: g for i, ds in enumerate(datasets) if (g := _geometry(ds)) is not None}
    if len(geometry) == len(datasets):
        groups: dict[tuple[float, ...], list[int]] = {}
        for i, (orientation, _) in geometry.items():
            groups.setdefault(tuple(np.round(orientation, 3)), []).append(i)
        members = max(groups.values(), key=len)
        if len(members) >= 2:
            if len(members) < len(datasets):
                logger.debug("volume: %d of %d slices share one orientation", len(members), len(datasets))
            orientation = geometry[members[0]][0]
            normal = np.cross(orientation[:3], orientation[3:])
            depth = {i: float(np.dot(normal, geometry[i][1])) for i in members}
            order = sorted(members, key=lambda i: (depth[i], _instance_number(datasets[i])))
            return [datasets[i] for i in order]
    modality = str(datasets[0].get("Modality", "")).upper()
    if modality in ("CT", "MR", "PT", "NM") and all("InstanceNumber" in ds for ds in datasets):
        return sorted(datasets, key=_instance_number)
    return None


def _geometry(ds: Dataset) -> tuple[np.ndarray, np.ndarray] | None:
    """(ImageOrientationPatient, ImagePositionPatient) as float arrays, or ``None`` when either is absent."""
    orientation, position = ds.get("ImageOrientationPatient"), ds.get("ImagePositionPatient")
    if orientation is None or position is None or len(orientation) != 6 or len(position) != 3:
        return None
    try:
        return np.array([float(v) for v in orientation]), np.array([float(v) for v in position])
    except (TypeError, ValueError):
        return None


def _make_view(
    ds: Dataset,
    frame_index: int | None,
    ct_preset: str | None,
    position: int = 0,
    count: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> SeriesView:
    try:
        frame, step = read_frame(ds, frame_index, max_pixels)
    except FrameError as exc:
        raise _error(ds, str(exc)) from exc
    except Exception as exc:  # pixel decoders raise many types; all mean the same here
        raise _error(ds, f"cannot decode pixel data: {_describe(exc)}") from exc
    notes: list[str] = []
    if step > 1:
        notes.append(f"read reduced: 1 of every {step} rows and columns (decode budget {max_pixels} pixels)")
    if frame.dtype.kind == "f":
        finite = np.isfinite(frame)
        bad = int(frame.size - np.count_nonzero(finite))
        if bad == frame.size:
            raise _error(ds, "the pixel data holds no finite value (all NaN or infinite)")
        if bad:
            notes.append(f"{bad} of {frame.size} pixel values are NaN or infinite (shown black)")
            frame = np.where(finite, frame, np.nanmin(np.where(finite, frame, np.nan)))
    try:
        with np.errstate(all="ignore"):
            view, window = window_frame(ds, frame, frame_index, ct_preset)
    except Exception as exc:  # malformed LUTs or window attributes
        raise _error(ds, f"cannot window pixel data: {_describe(exc)}") from exc
    logger.debug("view of %s frame %s: shape %s window %s", _uid(ds), frame_index, view.shape, window)
    return SeriesView(
        pixels=view,
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        frame_number=None if frame_index is None else frame_index + 1,
        window=window,
        modality=str(ds.get("Modality", "")),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
        study_instance_uid=str(ds.get("StudyInstanceUID", "")),
        position=position,
        count=count,
        notes=tuple(notes),
    )


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:297] + '...' if len(text) > 300 else text}"

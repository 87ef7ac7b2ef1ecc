"""Deterministic UIDs of the IMC SRs: the same source series, algorithm and bank give the same UIDs.

A rerun (``monai-imc run`` again, or ``monai-imc serve`` resuming after a crash, or a study that received
late instances) therefore writes an SR with the Series and SOP Instance UIDs of the first one, and a PACS
replaces that SR instead of filing a second set of SR series into the study.

The UIDs are pydicom's ``generate_uid`` with entropy sources (a SHA-512 of the sources under pydicom's root),
so they are valid DICOM UIDs of at most 64 characters.

Usage::

    from monai_imc.dicom.uids import sr_uids

    series_uid, sop_uid = sr_uids(source_series_uid, algorithm)
"""

from __future__ import annotations

from typing import Protocol

from pydicom.uid import generate_uid

__all__ = ["SRUids", "sr_uids"]

_NAMESPACE = "monai-imc/sr/v1"


class _Algorithm(Protocol):
    """What identifies the algorithm: :class:`monai_imc.dicom.sr.AlgorithmInfo` has it."""

    model_id: str
    bank_hash: str
    version: str


class SRUids(tuple[str, str]):
    """``(series_instance_uid, sop_instance_uid)`` of one IMC SR."""

    __slots__ = ()

    @property
    def series_instance_uid(self) -> str:
        """The SR's Series Instance UID."""
        return self[0]

    @property
    def sop_instance_uid(self) -> str:
        """The SR's SOP Instance UID."""
        return self[1]


def sr_uids(source_series_uid: str, algorithm: _Algorithm) -> SRUids:
    """The Series and SOP Instance UIDs of the IMC SR of one source series.

    Args:
        source_series_uid: the Series Instance UID of the image series the SR reports on.
        algorithm: the algorithm (its version, model id and prototype bank hash).

    Returns:
        Two distinct UIDs, the same for the same arguments in any process.

    Raises:
        ValueError: an empty source series UID or bank hash.
    """
    if not str(source_series_uid).strip():
        raise ValueError("an IMC SR UID needs the Series Instance UID of its source series")
    if not str(algorithm.bank_hash).strip():
        raise ValueError(f"source series {source_series_uid}: an IMC SR UID needs the bank hash")
    sources = [
        _NAMESPACE,
        str(source_series_uid),
        str(algorithm.version),
        str(algorithm.bank_hash),
        str(algorithm.model_id),
    ]
    return SRUids(
        (generate_uid(entropy_srcs=[*sources, "series"]), generate_uid(entropy_srcs=[*sources, "instance"]))
    )

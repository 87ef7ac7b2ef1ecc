"""Shared machinery of the noise library: severity levels, the noise base class and dictionary twins.

Every noise of the benchmark is a MONAI ``Randomizable`` transform with five severity levels. Its random
draws (where a motion happens, which characters a typo hits, the noise field) never depend on the
severity, only on the seed: the same seed at levels 1..5 corrupts the same places, more strongly at each
level. That makes severity monotone by construction and lets a benchmark compare levels image by image.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform, Randomizable, Transform

from monai_imc.noise.catalog import Modality

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
"""The severity levels every noise defines: 1 is barely visible, 5 is severe."""


def check_severity(severity: int) -> int:
    """Return ``severity`` if it is an integer level in 1..5.

    Raises:
        ValueError: the severity is not an integer in 1..5 (the message names it).
    """
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)):
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")  # noqa: TRY004 (one error type)
    if int(severity) not in SEVERITIES:
        raise ValueError(f"severity {severity} is outside 1..5")
    return int(severity)


class Noise(Randomizable, Transform):
    """A seeded corruption with five severity levels; the base of image artifacts and text errors.

    Subclasses set the class attributes that the registry publishes:

    - ``name``: the registry name, for example ``"motion"``;
    - ``modality``: ``"image"`` or ``"text"``;
    - ``cause``: one line on the real-world cause the noise models;
    - ``levels``: five mappings, the parameters of severity 1..5.

    ``randomize`` draws everything random once, independently of the severity; ``__call__`` applies
    the parameters of ``self.severity`` to those draws.

    Args:
        severity: level 1..5.
        seed: seed of the transform's random state (``None``: MONAI's default state).
    """

    name: ClassVar[str]
    modality: ClassVar[Modality]
    cause: ClassVar[str]
    levels: ClassVar[tuple[Mapping[str, Any], ...]]

    def __init__(self, severity: int = 3, seed: int | None = 0) -> None:
        self.severity = check_severity(severity)
        self.set_random_state(seed=seed)

    @property
    def params(self) -> dict[str, Any]:
        """The parameters of the current severity level."""
        return dict(self.levels[self.severity - 1])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(severity={self.severity}, params={self.params})"


class NoiseDict(Randomizable, MapTransform):
    """Dictionary twin of a :class:`Noise`: applies it to ``keys`` of a data dictionary.

    Subclasses name the array transform in ``array_class``. Each key gets its own random draw.

    Args:
        keys: keys of the items to corrupt.
        severity: level 1..5.
        seed: seed of the random state.
        allow_missing_keys: do not raise when a key is missing.
    """

    array_class: ClassVar[type[Noise]]

    def __init__(
        self,
        keys: KeysCollection,
        severity: int = 3,
        seed: int | None = 0,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.transform = self.array_class(severity=severity, seed=seed)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> NoiseDict:
        """Seed the wrapped transform (MONAI's ``Randomizable`` interface)."""
        super().set_random_state(seed, state)
        if hasattr(self, "transform"):
            self.transform.set_random_state(seed, state)
        return self

    def randomize(self, data: Any) -> None:
        """Draw the wrapped transform's random state for ``data``."""
        self.transform.randomize(data)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d


def nested_count(severity: int, rates: Sequence[float], eligible: int) -> int:
    """How many of ``eligible`` places a level corrupts: at least ``severity``, at most ``eligible``.

    Levels take a growing prefix of one random order of the eligible places, so level k+1 corrupts
    everything level k did and more (while places remain).
    """
    wanted = max(severity, int(np.ceil(rates[severity - 1] * eligible)))
    return min(wanted, eligible)

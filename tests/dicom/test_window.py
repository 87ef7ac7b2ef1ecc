"""The VOI window functions of PS3.3 C.11.2.1.2 (monai_imc.dicom.window), at the values the standard defines."""

from __future__ import annotations

import numpy as np
import pytest

from monai_imc.dicom.window import apply_window, by_stored_value, to_uint8


@pytest.mark.parametrize(
    ("function", "center", "width", "values", "expected"),
    [
        # LINEAR: 0 at or below c - 0.5 - (w - 1) / 2, 255 above c - 0.5 + (w - 1) / 2, half-way at c - 0.5
        ("LINEAR", 40.0, 400.0, [-1000.0, -160.0, 39.5, 239.5, 3000.0], [0, 0, 128, 255, 255]),
        # LINEAR_EXACT: 0 at c - w / 2, 255 at c + w / 2
        ("LINEAR_EXACT", 0.0, 100.0, [-60.0, -50.0, 0.0, 50.0, 60.0], [0, 0, 128, 255, 255]),
        # SIGMOID: half-way at the centre, saturating far from it
        ("SIGMOID", 100.0, 50.0, [-1e4, 100.0, 1e4], [0, 128, 255]),
        # LINEAR of the smallest width: a threshold at c - 0.5
        ("LINEAR", 10.0, 1.0, [9.0, 9.5, 9.6, 11.0], [0, 0, 255, 255]),
    ],
)
def test_each_window_function_maps_the_standards_points(
    function: str, center: float, width: float, values: list[float], expected: list[int]
) -> None:
    given = np.array([values], dtype=np.float64)
    with np.errstate(over="ignore"):  # the sigmoid's exp overflows to inf far from the centre: 0, as it should
        out = apply_window(given, center, width, function)
    assert out.dtype == np.uint8 and out.tolist() == [expected]
    assert given.tolist() == [values], "the input values are not changed"


def test_stored_values_scale_to_eight_bits() -> None:
    stored = np.array([[0, 2048, 4095]], dtype=np.uint16)
    assert to_uint8(stored, 4095.0).tolist() == [[0, 128, 255]]
    assert stored.tolist() == [[0, 2048, 4095]]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("function", ["LINEAR", "SIGMOID"])
def test_a_lookup_per_stored_value_gives_the_same_bytes(dtype: type, function: str) -> None:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(0)

    def display(stored: np.ndarray) -> np.ndarray:  # a rescale, then a window: elementwise
        with np.errstate(over="ignore"):
            return apply_window(stored.astype(np.float64) * 1.5 - 20.0, 40.0, 300.0, function)

    for shape in ((300, 310), (7, 9)):  # more pixels than the type has values (a table), and fewer (direct)
        frame = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        frame[0, :2] = info.min, info.max  # both ends of the type
        assert np.array_equal(by_stored_value(frame, display), display(frame))

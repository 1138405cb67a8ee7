"""Published floats: rounded to 8 significant digits by exact arithmetic only."""

import numpy as np
import pyarrow as pa
import pytest

from pipeline.precision import DIGITS, round_data, round_significant, round_table


def test_rounds_to_significant_digits_at_every_magnitude():
    values = [0.14133507067322448, -6.826632033686508, 1234567.891, 3.33333333333e-7, 0.999999996]
    assert round_significant(values).tolist() == [
        0.14133507,
        -6.826632,
        1234567.9,
        3.3333333e-07,
        1.0,
    ]


def test_last_bit_differences_vanish():
    """What BLAS kernels or SIMD builds change (the last bits) is gone after rounding."""
    rng = np.random.default_rng(5)
    x = rng.random(100_000) * 10.0 ** rng.integers(-12, 6, 100_000)
    nudged = np.nextafter(x, np.inf)
    same = round_significant(x) == round_significant(nudged)
    # Only numbers within one bit of a rounding boundary can differ (about 1 in 10**7).
    assert same.mean() > 0.9999


def test_decimal_exponent_is_exact_at_powers_of_ten():
    """The leading digit's exponent comes from frexp and an exact comparison, not log10.
    (From 1e-15 up, where the scaling power of ten, at most 1e22, is exact.)"""
    tens = np.array([float(f"1e{k}") for k in range(-15, 21)])
    assert (round_significant(tens) == tens).all()
    below = np.nextafter(tens, 0)
    assert (round_significant(below) == tens).all()


def test_specials_and_shape_are_kept():
    x = np.array([[0.0, np.nan], [np.inf, -1e-310]])
    out = round_significant(x)
    assert out.shape == (2, 2)
    assert out[0, 0] == 0 and np.isnan(out[0, 1]) and out[1, 0] == np.inf and out[1, 1] == -1e-310
    assert round_significant(2 / 3).shape == ()


def test_table_and_data_round_only_floats():
    table = pa.table(
        {"f": pa.array([2 / 3, None]), "i": [1, 2], "g": pa.array([1 / 3, 1.0], pa.float32())}
    )
    out = round_table(table)
    assert out.column("f").to_pylist() == [0.66666667, None]
    assert out.column("i").to_pylist() == [1, 2]
    assert out.schema == table.schema
    assert round_data({"a": [2 / 3, "x", 7], "b": (0.1 + 0.2,)}) == {
        "a": [0.66666667, "x", 7],
        "b": [0.3],
    }


@pytest.mark.parametrize("digits", [3, DIGITS, 12])
def test_round_trips_through_text(digits):
    """The rounded float prints as at most ``digits`` digits (short JSON / HTML)."""
    rng = np.random.default_rng(digits)
    for value in round_significant(rng.random(1000) * 1e-3, digits):
        mantissa = repr(float(value)).split("e")[0].replace("-", "").replace(".", "").lstrip("0")
        assert len(mantissa) <= digits

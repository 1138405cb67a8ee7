"""Published floats at a stated precision, so that every output has the same bytes on any CPU.

A sum taken through BLAS (OpenBLAS picks its kernels by CPU, and splits work by thread count) or
a logarithm taken through numpy's SIMD dispatch (AVX-512 builds differ from the rest in the
last bit) can differ in the last one or two bits between machines. The pipeline avoids BLAS
where it publishes a number (see README, Reproducibility), and every float it writes (tables,
metrics, the saved model's arrays, lda_vis.html) is rounded here to ``DIGITS`` significant
digits, far above what any reader uses and far below where CPUs disagree (about 1e-15).

The rounding itself uses only operations IEEE 754 defines exactly (frexp, comparisons,
multiplication, division, rint) and powers of ten parsed from text, so it gives the same
result on every machine; no ``log10`` or ``pow``, whose results depend on the library.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.arrays import to_arrow, to_numpy

DIGITS = 8
_LOG10_2 = 0.30102999566398120
_MIN_EXP = -300  # |x| below 1e-300 (far below any published value) is written as it is
_POW10 = np.array([float(f"1e{k}") for k in range(_MIN_EXP - 30, 331)])  # exact text -> float


# floor((e - 1) * log10(2)) for each binary exponent e of frexp: a lower bound of the decimal
# exponent of the leading digit of any number m * 2**e (m in [0.5, 1)).
_E2_MIN = -1100
_E10_OF_E2 = np.floor((np.arange(_E2_MIN, 1100) - 1) * _LOG10_2).astype(np.int64)


def _pow10(exponents: np.ndarray) -> np.ndarray:
    return _POW10[exponents - (_MIN_EXP - 30)]


def round_significant(values: Any, digits: int = DIGITS) -> np.ndarray:
    """``values`` (any shape, float64) rounded to ``digits`` significant decimal digits; NaN,
    infinities, zero and numbers below 1e-300 stay as they are. From 1e-15 to 1e22 the result
    is the float nearest the decimal (it prints short); beyond, the scaling power of ten is
    not exact and the last bit may be off, the same way on every machine."""
    x = np.array(values, dtype=np.float64, copy=True, ndmin=1)
    shape = np.shape(values)
    x = x.reshape(-1)
    magnitude = np.abs(x)
    special = ~(magnitude >= 10.0**_MIN_EXP)  # NaN fails >=
    special |= magnitude == np.inf
    if special.any():
        magnitude[special] = 1.0
    _, e2 = np.frexp(magnitude)  # magnitude = m * 2**e2, m in [0.5, 1): exact
    # The decimal exponent of the leading digit: the lower bound, raised by one where the
    # number reaches the next power of ten (an exact comparison).
    e10 = _E10_OF_E2[e2 - _E2_MIN]
    e10 += magnitude >= _pow10(e10 + 1)
    del magnitude, e2
    decimals = digits - 1 - e10
    down = decimals < 0  # numbers of more than ``digits`` integer digits
    scale = _pow10(np.abs(decimals))
    out = np.multiply(x, scale, out=np.zeros_like(x), where=~down)
    np.rint(out, out=out)
    np.divide(out, scale, out=out)
    if down.any():
        out[down] = np.rint(x[down] / scale[down]) * scale[down]
    if special.any():
        out[special] = x[special]
    return out.reshape(shape)


def round_float(value: float, digits: int = DIGITS) -> float:
    return float(round_significant(value, digits)[()])


def round_data(data: Any, digits: int = DIGITS) -> Any:
    """JSON-like data (dicts, lists, tuples, numbers) with every float rounded."""
    if isinstance(data, float):
        return round_float(data, digits)
    if isinstance(data, dict):
        return {k: round_data(v, digits) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        if data and all(type(v) is float for v in data):  # a column of numbers: at once
            return round_significant(np.asarray(data, dtype=np.float64), digits).tolist()
        return [round_data(v, digits) for v in data]
    return data


def round_table(table: pa.Table, digits: int = DIGITS) -> pa.Table:
    """``table`` with each floating-point column rounded (other columns as they are)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_floating(f.type):
            column = table.column(i)
            if column.null_count == 0:  # without pandas, which to_numpy and pa.array import
                values = to_numpy(column.combine_chunks()).astype(np.float64)
                rounded = to_arrow(round_significant(values, digits)).cast(f.type)
            else:
                values = column.to_numpy(zero_copy_only=False).astype(np.float64)
                nulls = column.is_null().to_numpy(zero_copy_only=False)
                rounded = pa.array(round_significant(values, digits), mask=nulls).cast(f.type)
            table = table.set_column(i, f, rounded)
    return table

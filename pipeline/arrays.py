"""Between arrow and numpy through the buffers, and the index arithmetic the stages share.

``pa.array(ndarray)`` and ``Array.to_numpy()`` import pandas on their first call in a process
(0.4 s and memory that the segment and tfidf stages would otherwise not spend), so arrays go
through their buffers here. Used by clean, segment, tfidf and the text and topic helpers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def to_numpy(array: pa.Array) -> np.ndarray:
    """A numeric or boolean arrow array without nulls as (read-only) numpy, sharing its buffer
    (a boolean array is unpacked from its bits)."""
    if array.null_count:
        raise ValueError(f"cannot view an arrow {array.type} array with nulls as numpy")
    start, stop = array.offset, array.offset + len(array)
    buffer = array.buffers()[1]
    if array.type == pa.bool_():
        if not len(array):
            return np.zeros(0, np.bool_)
        bits = np.unpackbits(np.frombuffer(buffer, np.uint8), count=stop, bitorder="little")
        return bits[start:].view(np.bool_)
    dtype = np.dtype(array.type.to_pandas_dtype())
    if not np.issubdtype(dtype, np.number):
        raise TypeError(f"cannot view an arrow {array.type} array as numpy numbers")
    if not len(array):
        return np.zeros(0, dtype)
    return np.frombuffer(buffer, dtype, count=len(array), offset=start * dtype.itemsize)


def to_arrow(values: np.ndarray) -> pa.Array:
    """A numeric numpy array as an arrow array of the same type, sharing its buffer."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)]
    )


def int32_array(values: np.ndarray | Sequence[int]) -> pa.Array:
    """An arrow int32 array of integer values (indices for ``take``, list offsets)."""
    return to_arrow(np.ascontiguousarray(values, np.int32))


def running_offsets(sizes: Sequence[int] | np.ndarray) -> np.ndarray:
    """Running totals of the sizes, starting at 0 (int64, one more than there are sizes)."""
    offsets = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return offsets


def utf8_array(data, offsets: np.ndarray) -> pa.StringArray:
    """The strings data[offsets[i]:offsets[i + 1]], sharing ``data`` (no copy)."""
    if offsets[-1] >= 2**31:
        raise ValueError("more than 2 GB of text in one batch")
    return pa.StringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets.astype(np.int32, copy=False)), pa.py_buffer(data)
    )


def string_array(values: Sequence[str]) -> pa.StringArray:
    """An arrow string array of Python strings (without pa.array, see the module docstring)."""
    encoded = [v.encode("utf-8") for v in values]
    return utf8_array(b"".join(encoded), running_offsets(list(map(len, encoded))))


def list_array(offsets: np.ndarray, values: pa.Array) -> pa.ListArray:
    """The lists values[offsets[i]:offsets[i + 1]]."""
    return pa.ListArray.from_arrays(int32_array(offsets), values)


def concat_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(start, start + count)`` for each start and count."""
    starts = np.asarray(starts, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    ends = np.cumsum(counts)
    return np.repeat(starts - (ends - counts), counts) + np.arange(ends[-1] if len(ends) else 0)

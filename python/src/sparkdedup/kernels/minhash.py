"""Public MinHash of the fuzzy-dedup MinHash step: permutation parameters and signatures.

`permutation_params` reproduces NeMo Curator's seeds and `minhash` cuDF's `str.minhash` /
`minhash64` as Curator calls them (shared/reference/ALGORITHMS.md, "Permutation parameters" and
"Signature of one document"). The work is done by the compiled kernel in `minhash_cpu`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from sparkdedup.config import check_int
from sparkdedup.errors import ConfigError, SchemaError
from sparkdedup.kernels.minhash_cpu import arrow_string_buffers, minhash_arrow_cpu

#: Signature of a MinHash kernel: (array, a, b, murmur_seed, width, use_64_bit_hash) -> ndarray.
MinHashKernel = Callable[[pa.Array, np.ndarray, np.ndarray, int, int, bool], np.ndarray]

Texts = Sequence[str | None] | np.ndarray | pa.Array | pa.ChunkedArray

DEVICES = ("cpu", "gpu")


def check_minhash_params(
    char_ngrams: int, num_hashes: int, seed: int, use_64_bit_hash: bool
) -> None:
    """Raise ConfigError naming the first invalid MinHash parameter."""
    check_int("char_ngrams", char_ngrams, 2)
    check_int("num_hashes", num_hashes, 1)
    check_int("seed", seed, 0, 2**32 - 1)
    if not isinstance(use_64_bit_hash, (bool, np.bool_)):
        raise ConfigError(f"use_64_bit_hash must be a bool, got {use_64_bit_hash!r}")


def permutation_params(
    num_hashes: int, seed: int, use_64_bit_hash: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """Permutation parameters ``(a, b, murmur_seed)`` exactly as NeMo Curator draws them.

    ``numpy.random.RandomState(seed)`` draws, for each permutation in turn, ``a = randint(1, P)``
    then ``b = randint(0, P)`` with P = 2^31-1 (uint32) or 2^61-1 (uint64). The MurmurHash3
    seed Curator passes to cuDF is ``a[0]``.

    Parameters
    ----------
    num_hashes : number of permutations (signature length), >= 1.
    seed : RandomState seed, 0 <= seed < 2**32.
    use_64_bit_hash : draw uint64 parameters below 2^61-1 instead of uint32 below 2^31-1.

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray, int)
        ``a`` and ``b`` of shape (num_hashes,), uint32 or uint64, and the MurmurHash3 seed.
    """
    check_int("num_hashes", num_hashes, 1)
    check_int("seed", seed, 0, 2**32 - 1)
    dtype = np.uint64 if use_64_bit_hash else np.uint32
    prime = dtype((1 << 61) - 1) if use_64_bit_hash else dtype((1 << 31) - 1)
    gen = np.random.RandomState(int(seed))
    pairs = np.empty((int(num_hashes), 2), dtype=dtype)
    for i in range(int(num_hashes)):
        pairs[i, 0] = gen.randint(1, prime, dtype=dtype)
        pairs[i, 1] = gen.randint(0, prime, dtype=dtype)
    a = np.ascontiguousarray(pairs[:, 0])
    b = np.ascontiguousarray(pairs[:, 1])
    return a, b, int(a[0])


def minhash_arrow(
    array: pa.Array,
    a: np.ndarray,
    b: np.ndarray,
    murmur_seed: int,
    width: int,
    use_64_bit_hash: bool,
) -> np.ndarray:
    """Signatures of an Arrow string array with the fastest CPU kernel (see `minhash_cpu`).

    Parameters
    ----------
    array : pyarrow string, large_string or string_view Array (may be sliced).
    a, b : permutation parameters from `permutation_params`.
    murmur_seed : MurmurHash3 seed (the third value of `permutation_params`).
    width : shingle width in Unicode code points.
    use_64_bit_hash : 64-bit mode (uint64 parameters and output).

    Returns
    -------
    numpy.ndarray
        (len(array), len(a)) uint32 or uint64; all-zero rows for null and empty texts.
    """
    return minhash_arrow_cpu(array, a, b, murmur_seed, width, use_64_bit_hash)


def without_shingles(array: pa.Array, signatures: np.ndarray, width: int) -> np.ndarray:
    """Which non-empty texts of `array` have no shingle, from their kernel `signatures`.

    A text of bytes that are not UTF-8 may start no code point early enough to make a shingle:
    it holds only continuation bytes (10xxxxxx), or begins with one and holds fewer code points
    than `width` (as in cuDF, the one short shingle starts at the first byte only when that
    byte starts a code point). The kernels give it cuDF's initial value everywhere, the
    largest integer: a signature that every such text shares, so that, banded, it would put
    them all in one bucket. Only rows whose first value is that largest one are looked at, and
    their bytes decide; every other row has a shingle.

    Parameters
    ----------
    array : the texts, a pyarrow string or large_string Array (may be sliced).
    signatures : (len(array), k) uint32 or uint64, the kernel's output for `array`.
    width : the shingle width the signatures were computed with.

    Returns
    -------
    numpy.ndarray
        bool, len(array): True where a non-null, non-empty text has no shingle.
    """
    top = np.iinfo(signatures.dtype).max
    suspect = np.flatnonzero(signatures[:, 0] == top) if signatures.shape[1] else []
    out = np.zeros(len(array), dtype=bool)
    if len(suspect) == 0:
        return out
    offsets, data, valid = arrow_string_buffers(array)
    for row in suspect:  # rare: such texts, or a 2^-32 chance for a 32-bit signature
        doc = data[offsets[row] : offsets[row + 1]]
        if not valid[row] or doc.size == 0:
            continue
        starts = (doc & 0xC0) != 0x80
        code_points = int(np.count_nonzero(starts))
        out[row] = code_points < width and not (code_points > 0 and starts[0])
    return out


def kernel_for_device(device: str) -> MinHashKernel:
    """The MinHash kernel for ``device`` ("cpu" or "gpu"); both give identical values.

    The GPU kernel checks for CUDA when it runs (on the executor), not here.
    """
    if device == "cpu":
        return minhash_arrow
    if device == "gpu":
        from sparkdedup.kernels.minhash_gpu import minhash_arrow_gpu

        return minhash_arrow_gpu
    raise ConfigError(f"device must be one of {', '.join(map(repr, DEVICES))}, got {device!r}")


def _first_non_string(values: Sequence[Any]) -> tuple[int, Any] | None:
    # Only reached once a set of element types shows something other than str/None.
    for i, value in enumerate(values):
        if value is not None and not isinstance(value, str):
            return i, value
    return None


def as_string_array(texts: Texts) -> pa.Array | pa.ChunkedArray:
    """`texts` as an Arrow string-like array; SchemaError naming the first non-string element."""
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):
        if not (
            pa.types.is_string(texts.type)
            or pa.types.is_large_string(texts.type)
            or pa.types.is_string_view(texts.type)
        ):
            raise SchemaError(
                f"texts must be an Arrow string or large_string array, got type {texts.type}"
            )
        return texts
    if isinstance(texts, (str, bytes)):
        raise SchemaError(
            f"texts must be a sequence of str or None, got a single {type(texts).__name__}; "
            "wrap one text in a list"
        )
    if isinstance(texts, np.ndarray):
        if texts.ndim != 1:
            raise SchemaError(f"texts must be one-dimensional, got shape {texts.shape}")
        if texts.dtype.kind == "U":
            return pa.array(texts, type=pa.large_string())
        if texts.dtype.kind != "O":
            raise SchemaError(
                f"texts must hold str or None, got a numpy array of dtype {texts.dtype}"
            )
    values = texts if isinstance(texts, (list, tuple, np.ndarray)) else list(texts)
    if not set(map(type, values)) <= {str, type(None)}:
        bad = _first_non_string(values)
        if bad is not None:
            raise SchemaError(
                f"texts[{bad[0]}] must be str or None, got {type(bad[1]).__name__}: {bad[1]!r:.60}"
            )
    return pa.array(values, type=pa.large_string())


def minhash(
    texts: Texts,
    *,
    char_ngrams: int = 24,
    num_hashes: int = 260,
    seed: int = 42,
    use_64_bit_hash: bool = False,
) -> np.ndarray:
    """MinHash signatures bit-identical to cuDF's as NeMo Curator computes them.

    Shingles are all substrings of `char_ngrams` Unicode code points (a shorter, non-empty text
    is one shingle), hashed over their UTF-8 bytes with MurmurHash3 seeded by ``a[0]`` of
    `permutation_params`, permuted by ``h * a + b`` and minimised per permutation.

    Parameters
    ----------
    texts : list or tuple of str or None, a 1-D numpy str/object array, or a pyarrow
        string/large_string Array or ChunkedArray.
    char_ngrams : shingle width in code points, >= 2.
    num_hashes : signature length, >= 1.
    seed : seed of the permutation parameters, 0 <= seed < 2**32.
    use_64_bit_hash : MurmurHash3_x64_128 and 64-bit permutations modulo 2^61-1.

    Returns
    -------
    numpy.ndarray
        (len(texts), num_hashes), uint32 (or uint64 in 64-bit mode). Empty texts give an
        all-zero row, as in cuDF; None gives an all-zero row here too (cuDF gives null).
        `sparkdedup.minhash_signatures` maps both to a null signature, so they never become
        duplicate candidates.

    Raises
    ------
    ConfigError
        A parameter out of range.
    SchemaError
        `texts` is not a sequence of strings, naming the first offending position and type.

    Examples
    --------
    >>> sig = minhash(["The quick brown fox jumps over the lazy dog"], num_hashes=4)
    >>> sig.shape, sig.dtype
    ((1, 4), dtype('uint32'))
    """
    check_minhash_params(char_ngrams, num_hashes, seed, use_64_bit_hash)
    array = as_string_array(texts)
    a, b, murmur_seed = permutation_params(num_hashes, seed, bool(use_64_bit_hash))
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    parts = [
        minhash_arrow(chunk, a, b, murmur_seed, int(char_ngrams), bool(use_64_bit_hash))
        for chunk in chunks
    ]
    if not parts:
        return np.zeros((0, num_hashes), dtype=a.dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)

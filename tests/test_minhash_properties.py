"""Properties of the MinHash kernels: Jaccard estimates, Unicode parity, batching, validation.

No Spark. The fast kernel (`minhash_cpu`) is compared with the oracle (`minhash_ref`) on random
Unicode texts; estimates are checked against exact 24-character-shingle Jaccard similarity.
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import pyarrow as pa
import pytest
import sparkdedup
from sparkdedup.errors import ConfigError, SchemaError
from sparkdedup.kernels import murmur
from sparkdedup.kernels.minhash import minhash_arrow, permutation_params, without_shingles
from sparkdedup.kernels.minhash_ref import (
    minhash_reference,
    murmur3_x64_128_h1,
    murmur3_x86_32,
    shingles,
)

# Emoji (4-byte), a skin-tone modifier and ZWJ sequence, CJK (3-byte), a combining accent,
# 2-byte Latin, NUL, the largest code point and a lone space.
ALPHABET = list("abcde xyz") + [
    "é", "ß", "漢", "字", "🙂", "👍🏽", "👩\u200d💻", "e\u0301", "\u0000", "\U0010ffff", "Ω",
]  # fmt: skip


def _random_texts(rng: random.Random, count: int) -> list[str | None]:
    texts: list[str | None] = []
    for _ in range(count):
        n = rng.choice([0, 1, 2, 3, 4, 5, 11, 23, 24, 25, 60, 200])
        texts.append(None if rng.random() < 0.05 else "".join(rng.choices(ALPHABET, k=n)))
    return texts


@pytest.mark.parametrize("use64", [False, True])
def test_unicode_parity_with_oracle(use64: bool) -> None:
    rng = random.Random(7)
    texts = _random_texts(rng, 150)
    for width in (2, 3, 5, 24):
        a, b, seed = permutation_params(9, rng.randrange(2**32), use64)
        expected = minhash_reference(texts, a, b, seed, width, use64)
        got = minhash_arrow(pa.array(texts), a, b, seed, width, use64)
        np.testing.assert_array_equal(got, expected, err_msg=f"width={width}")


@pytest.mark.parametrize("use64", [False, True])
def test_script_parity_with_oracle(use64: bool) -> None:
    """Long documents of one script each (ASCII takes the lockstep path over runs of
    one-byte shingles; Cyrillic, CJK, accented Latin, emoji and their mixes the path grouped
    by shingle byte length), and mixed-script ones: bit for bit the oracle's."""
    rng = np.random.default_rng(11)
    scripts = [
        list("abcdefghijklmnopqrstuvwxyz"),
        [chr(c) for c in range(0x430, 0x450)],
        [chr(c) for c in range(0x4E00, 0x4E40)],
        list("aeiouéèàçñöü"),
        list("ab") + [chr(c) for c in range(0x1F600, 0x1F610)],
    ]
    texts = []
    for alphabet in [*scripts, [ch for s in scripts for ch in s]]:
        for _ in range(3):
            words = ["".join(rng.choice(alphabet, size=int(rng.integers(1, 9)))) for _ in range(80)]
            texts.append(" ".join(words))
    a, b, seed = permutation_params(7, 2024, use64)
    for width in (3, 24):
        expected = minhash_reference(texts, a, b, seed, width, use64)
        got = minhash_arrow(pa.array(texts), a, b, seed, width, use64)
        np.testing.assert_array_equal(got, expected, err_msg=f"width={width}")


@pytest.mark.parametrize("use64", [False, True])
def test_runs_of_multibyte_characters_parity_with_oracle(use64: bool) -> None:
    """Text of 2-, 3- and 4-byte characters with few breaks (Cyrillic or CJK without spaces,
    emoji) is hashed in lockstep over windows de-interleaved by the character size; runs of
    several sizes in one document, and runs cut by a one-byte character: the oracle's. (The
    64-bit windows once went through a float in the de-interleaving; this test caught it.) In
    ASCII text with an odd multibyte character the few short runs that start on one are
    gathered instead: the oracle's too."""
    from sparkdedup.kernels.minhash_cpu import _code_point_starts, _runs, _spread_pays

    rng = np.random.default_rng(5)
    alphabets = {
        2: [chr(c) for c in range(0x430, 0x450)],
        3: [chr(c) for c in range(0x4E00, 0x4E40)],
        4: [chr(c) for c in range(0x1F600, 0x1F640)],
    }
    texts = ["".join(rng.choice(abc, size=300)) for abc in alphabets.values()]
    texts.append("".join("".join(rng.choice(alphabets[k], size=60)) for k in (3, 2, 4, 3)))
    texts.append("x".join("".join(rng.choice(alphabets[3], size=50)) for _ in range(4)))
    a, b, seed = permutation_params(7, 99, use64)
    for width in (3, 24):
        # ASCII text with a phrase of width + 2 characters of each size here and there
        words = ["".join(rng.choice(list("abcdefgh"), size=5)) for _ in range(1200)]
        for k in range(100, 1200, 100):
            words[k] = "".join(rng.choice(alphabets[2 + k // 100 % 3], size=width + 2))
        texts[5:] = [" ".join(words)]
        strides, spread = set(), set()
        # The lockstep path is the one taken, for every character size (at width 24 the
        # document of four sizes has too many short runs where the sizes meet).
        for text in texts[:3] + texts[5:] if width == 24 else texts:
            data = np.frombuffer(text.encode(), np.uint8)
            starts = np.empty(data.size + 1, np.int64)
            runs = np.empty((data.size + 1, 4), np.int64)
            ncp = _code_point_starts(data, 0, data.size, starts)
            nruns, nsh = _runs(starts, ncp, width, runs, -1)
            assert nruns * 8 <= nsh
            strides |= set(runs[:nruns, 3].tolist())
            pays = _spread_pays(runs, nruns, data.size, 8 if use64 else 4)
            spread |= {stride for stride in (2, 3, 4) if pays[stride]}
            if text is texts[5]:  # the phrases' few shingles are gathered
                assert set(runs[:nruns, 3].tolist()) == {1, 2, 3, 4} and not pays[2:].any()
        assert {2, 3, 4} <= strides
        if width == 24:  # long shingles of long stretches: de-interleaving pays
            assert spread == {2, 3, 4}
        expected = minhash_reference(texts, a, b, seed, width, use64)
        got = minhash_arrow(pa.array(texts), a, b, seed, width, use64)
        np.testing.assert_array_equal(got, expected, err_msg=f"width={width}")


def test_murmur_device_functions_match_oracle() -> None:
    # murmur.py is the source the CUDA kernel compiles; run it here as plain Python.
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy scalar wrap-around
        for length in range(41):
            data = rng.integers(0, 256, size=length + 5, dtype=np.uint8)
            raw = bytes(data[2 : 2 + length])
            seed32 = int(rng.integers(0, 2**32))
            seed64 = int(rng.integers(0, 2**63)) * 2 + 1
            assert int(murmur.murmur3_32_py(data, 2, 2 + length, np.uint32(seed32))) == (
                murmur3_x86_32(raw, seed32)
            )
            assert int(murmur.murmur3_64_py(data, 2, 2 + length, np.uint64(seed64))) == (
                murmur3_x64_128_h1(raw, seed64)
            )


def _jaccard(x: str, y: str, width: int = 24) -> float:
    sx, sy = set(shingles(x, width)), set(shingles(y, width))
    return len(sx & sy) / len(sx | sy)


@pytest.mark.parametrize("use64", [False, True])
def test_estimate_tracks_true_jaccard(use64: bool) -> None:
    rng = random.Random(11)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(3000)
    ]
    left, right = [], []
    for fraction in (0.0, 0.01, 0.03, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0):
        base = rng.choices(words, k=400)
        other = [rng.choice(words) if rng.random() < fraction else w for w in base]
        left.append(" ".join(base))
        right.append(" ".join(other))
    sig = sparkdedup.minhash(left + right, use_64_bit_hash=use64)
    n = len(left)
    for i in range(n):
        j = _jaccard(left[i], right[i])
        estimate = float(np.mean(sig[i] == sig[n + i]))
        tolerance = 4 * np.sqrt(j * (1 - j) / 260) + 0.01
        assert abs(estimate - j) < tolerance, (i, j, estimate)


def test_short_texts_are_one_shingle() -> None:
    a, b, seed = permutation_params(16, 42, False)
    texts = ["abc", "漢字🙂", "x"]
    for text in texts:
        short = minhash_arrow(pa.array([text]), a, b, seed, 24, False)
        exact = minhash_arrow(pa.array([text]), a, b, seed, len(text), False)
        np.testing.assert_array_equal(short, exact)  # one shingle: the whole text
        np.testing.assert_array_equal(short, minhash_reference([text], a, b, seed, 24, False))
    # Two texts that share their first 24 code points but differ after them do not share all.
    sig = sparkdedup.minhash(["a" * 24 + "b", "a" * 24 + "c"], num_hashes=32)
    assert (sig[0] != sig[1]).any()


@pytest.mark.parametrize("use64", [False, True])
def test_null_and_empty_rows_are_zero(use64: bool) -> None:
    sig = sparkdedup.minhash(
        [None, "", "some text here", None], num_hashes=8, use_64_bit_hash=use64
    )
    assert sig.shape == (4, 8)
    assert (sig[[0, 1, 3]] == 0).all()
    assert (sig[2] != 0).all()
    empty = sparkdedup.minhash([], num_hashes=5)
    assert empty.shape == (0, 5) and empty.dtype == np.uint32
    assert sparkdedup.minhash([None, None], num_hashes=3).tolist() == [[0, 0, 0]] * 2


def test_batching_and_array_layouts_do_not_change_results() -> None:
    rng = random.Random(5)
    texts = _random_texts(rng, 60)
    a, b, seed = permutation_params(13, 42, False)
    whole = minhash_arrow(pa.array(texts), a, b, seed, 5, False)
    # Arbitrary batch splits.
    for cut in (1, 7, 33, 59):
        parts = [
            minhash_arrow(pa.array(texts[:cut]), a, b, seed, 5, False),
            minhash_arrow(pa.array(texts[cut:]), a, b, seed, 5, False),
        ]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    # Sliced arrays (non-zero Arrow offset, validity bits not byte-aligned), both offset types.
    for arrow_type in (pa.string(), pa.large_string(), pa.string_view()):
        arr = pa.array(texts, type=arrow_type)
        for start, stop in ((3, 60), (9, 41), (17, 18)):
            got = minhash_arrow(arr.slice(start, stop - start), a, b, seed, 5, False)
            np.testing.assert_array_equal(got, whole[start:stop], err_msg=str(arrow_type))
    # The public API: chunked arrays, numpy arrays, tuples and generators.
    chunked = pa.chunked_array([texts[:10], texts[10:25], texts[25:]], type=pa.string())
    kwargs = {"char_ngrams": 5, "num_hashes": 13}
    np.testing.assert_array_equal(sparkdedup.minhash(chunked, **kwargs), whole)
    np.testing.assert_array_equal(
        sparkdedup.minhash(np.array(texts, dtype=object), **kwargs), whole
    )
    np.testing.assert_array_equal(sparkdedup.minhash(tuple(texts), **kwargs), whole)
    np.testing.assert_array_equal(sparkdedup.minhash(iter(texts), **kwargs), whole)
    # A numpy str array cannot hold trailing NULs, so compare on texts without them.
    present = [t.replace("\0", "") for t in texts if t is not None]
    np.testing.assert_array_equal(
        sparkdedup.minhash(np.array(present), **kwargs),
        sparkdedup.minhash(present, **kwargs),
    )


def test_one_kernel_type_whatever_the_arrow_buffers() -> None:
    """numba compiles the kernel once per argument type: texts built in memory (writable
    buffers), read from an Arrow stream as Spark sends them (read-only), sliced, nullable, of
    either offset type, give the kernel the same types, and so do the warm-up's parameters
    (`sparkdedup.device.warm_cpu_kernels`) and the workflow's. A writable buffer compiled a
    second variant, so the warm-up on the executors prepared code the scan never ran."""
    import numba
    from sparkdedup.kernels.minhash_cpu import arrow_string_buffers

    texts = ["first text", None, "zweiter Text, länger", "", "третий"]
    arrays = []
    for arrow_type in (pa.string(), pa.large_string(), pa.string_view()):
        built = pa.array(texts, type=arrow_type)
        sink = pa.BufferOutputStream()
        batch = pa.record_batch([built], names=["text"])
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        streamed = pa.ipc.open_stream(sink.getvalue()).read_next_batch().column(0)
        arrays += [built, built.slice(1, 3), streamed, streamed.slice(2)]
    kinds = {tuple(numba.typeof(x) for x in arrow_string_buffers(arr)) for arr in arrays}
    assert len(kinds) == 1, kinds
    for use64 in (False, True):
        dtype = np.uint64 if use64 else np.uint32
        warm = np.ones(2, dtype=dtype)  # as warm_cpu_kernels passes them
        a, b, _ = permutation_params(260, 42, use64)
        positions = np.arange(10)
        assert {numba.typeof(x) for x in (warm, a, b, a[positions])} == {numba.typeof(warm)}


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"char_ngrams": 1}, "char_ngrams"),
        ({"char_ngrams": 2.5}, "char_ngrams"),
        ({"num_hashes": 0}, "num_hashes"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"use_64_bit_hash": "yes"}, "use_64_bit_hash"),
    ],
)
def test_invalid_parameters_name_the_parameter(kwargs: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        sparkdedup.minhash(["text"], **kwargs)


def test_invalid_texts_name_position_and_type() -> None:
    with pytest.raises(SchemaError, match=r"texts\[2\] must be str or None, got int"):
        sparkdedup.minhash(["a", None, 3])
    with pytest.raises(SchemaError, match=r"texts\[0\] .* got bytes"):
        sparkdedup.minhash([b"raw bytes"])
    with pytest.raises(SchemaError, match="single str"):
        sparkdedup.minhash("a single text")
    with pytest.raises(SchemaError, match="int64"):
        sparkdedup.minhash(pa.array([1, 2]))
    with pytest.raises(SchemaError, match="dtype"):
        sparkdedup.minhash(np.arange(3))


@pytest.mark.parametrize("use_64_bit_hash", [False, True])
@pytest.mark.parametrize("width", [5, 24])
def test_long_document_hashed_in_pieces(width, use_64_bit_hash):
    """A document over CHUNK_BYTES is hashed piece by piece (bounded scratch memory); its
    signature is still the minimum over all its shingles: that of overlapping windows of it,
    each short enough to be hashed whole."""
    from sparkdedup.kernels.minhash_cpu import CHUNK_BYTES

    rng = np.random.default_rng(width)
    alphabet = [*"abcdefghij klmnop", "\u00e9", "\u0436", "\u4e2d", "\U0001f600"]
    doc = "".join(rng.choice(alphabet, size=CHUNK_BYTES + CHUNK_BYTES // 3))
    assert len(doc.encode()) > CHUNK_BYTES * 1.5  # several pieces, cut inside characters
    whole = sparkdedup.minhash(
        [doc], char_ngrams=width, num_hashes=16, use_64_bit_hash=use_64_bit_hash
    )
    step = 200_000
    windows = [doc[i : i + step + width - 1] for i in range(0, len(doc) - width + 1, step)]
    pieces = sparkdedup.minhash(
        windows, char_ngrams=width, num_hashes=16, use_64_bit_hash=use_64_bit_hash
    )
    assert np.array_equal(whole[0], pieces.min(axis=0))


@pytest.mark.parametrize("use64", [False, True])
def test_a_text_without_a_cudf_shingle_has_the_largest_signature(use64: bool) -> None:
    """cuDF starts a shingle only at a byte that starts a code point, and allows a short one
    (fewer code points than the width) only at the text's first byte: a text of continuation
    bytes alone, or one that begins with them before fewer code points than the width, hashes
    no shingle and keeps cuDF's initial value, the largest one; an empty text is all zeros."""
    dtype = np.uint64 if use64 else np.uint32
    a, b = np.array([3, 5, 7], dtype), np.array([1, 2, 3], dtype)
    texts = [b"\x80\xbf", b"\x80\x80a", b"\x80\x80ab", b"", b"\x80\x80abc", b"ab"]
    raw = pa.array(texts, pa.binary()).view(pa.string())
    got = minhash_arrow(raw, a, b, 11, 3, use64)
    top = np.iinfo(dtype).max
    assert (got[:3] == top).all() and (got[3] == 0).all()
    assert (got[4:] != top).all() and (got[4:] != 0).all()


@pytest.mark.parametrize("use64", [False, True])
def test_texts_without_a_shingle_are_found_by_their_bytes(use64: bool) -> None:
    """`without_shingles` marks exactly the non-empty texts that start no shingle, whatever
    their signature: by the bytes of the rows whose first value is the largest one. A 32-bit
    signature whose every value is the largest (a text with shingles, made up here) is not
    marked, nor are nulls, empty texts or a sliced array's neighbours."""
    dtype = np.uint64 if use64 else np.uint32
    width = 3
    a, b, seed = permutation_params(4, 1, use64)
    texts = [b"\x80\xbf", b"\x80\x80a", b"\x80\x80ab", b"", b"\x80\x80abc", b"ab", None,
             b"\xb0C", b"\xc3", b"\xbd cup", b"\xbd cups!"]  # fmt: skip
    raw = pa.array(texts, pa.binary()).view(pa.string())
    sig = minhash_arrow(raw, a, b, seed, width, use64)
    expected = [True, True, True, False, False, False, False, True, False, False, False]
    assert without_shingles(raw, sig, width).tolist() == expected
    top = np.iinfo(dtype).max
    assert ((sig == top).all(axis=1) == np.array(expected)).all()  # the kernel's own view
    forged = sig.copy()
    forged[5] = top  # "ab" has a shingle, whatever its values
    assert without_shingles(raw, forged, width).tolist() == expected
    part = raw.slice(6, 4)  # None, "\xb0C", "\xc3", "\xbd cup"
    part_sig = minhash_arrow(part, a, b, seed, width, use64)
    assert without_shingles(part, part_sig, width).tolist() == [False, True, False, False]


def _shingle_oracle(doc: bytes, width: int, a, b, seed, use64: bool) -> np.ndarray:
    """The signature of `doc` by the shingle rule every backend follows (a shingle at each
    code point start with `width` code points from it; fewer in all: the whole text when its
    first byte starts a code point), each shingle hashed on its own (by the compiled MurmurHash3,
    which the test vectors check)."""
    from sparkdedup.kernels.minhash_cpu import _murmur32, _murmur64

    data = np.frombuffer(doc, np.uint8)
    starts = np.flatnonzero((data & 0xC0) != 0x80).tolist() + [len(doc)]
    spans = [(starts[i], starts[i + width]) for i in range(len(starts) - width)]
    if not spans and len(starts) > 1 and starts[0] == 0:
        spans = [(0, len(doc))]
    dtype = np.uint64 if use64 else np.uint32
    if not spans:
        return np.full(a.size, np.iinfo(dtype).max, dtype)
    if use64:
        hashes = {max(int(_murmur64(data, lo, hi, np.uint64(seed))), 1) for lo, hi in spans}
        h = np.array(sorted(hashes), np.uint64)[:, None]
        with np.errstate(over="ignore"):
            return ((h * a.astype(np.uint64) + b.astype(np.uint64)) % np.uint64(2**61 - 1)).min(0)
    hashes = {max(int(_murmur32(data, lo, hi, np.uint32(seed))), 1) for lo, hi in spans}
    h = np.array(sorted(hashes), np.uint64)[:, None]
    v = (h * a.astype(np.uint64) + b.astype(np.uint64)) % np.uint64(2**32)
    return v.min(0).astype(np.uint32)


@pytest.mark.parametrize("use64", [False, True])
def test_long_texts_of_bytes_that_are_not_utf8(use64: bool) -> None:
    """A text over a piece's size (1 MiB) whose bytes are not UTF-8 (long runs of continuation
    bytes) is hashed shingle by shingle, not in pieces sized for UTF-8: a run past a piece's
    end wrote past its scratch (the worker died: "double free or corruption"), and a text of
    fewer code points than the width lost its one shingle. Each gets the shingles of the
    other backends."""
    from sparkdedup.kernels.minhash_cpu import CHUNK_BYTES

    dtype = np.uint64 if use64 else np.uint32
    a, b = np.array([3, 5, 7], dtype), np.array([1, 2, 3], dtype)
    docs = [
        b"a" * CHUNK_BYTES + b"bc" + b"\x80" * 200_000 + b"defgh",  # a run past the piece
        b"a" + b"\x80" * (CHUNK_BYTES + 5) + b"bc" + b"\x80" * 9 + b"d",  # fewer than 5
        b"\x80\x80" + b"a" + b"\xbf" * (CHUNK_BYTES + 1) + b"bcdefgh",  # leading ones too
    ]
    raw = pa.array(docs, pa.binary()).view(pa.string())
    got = minhash_arrow(raw, a, b, 11, 5, use64)
    for i, doc in enumerate(docs):
        np.testing.assert_array_equal(got[i], _shingle_oracle(doc, 5, a, b, 11, use64))
    assert (got[1] != np.iinfo(dtype).max).all()

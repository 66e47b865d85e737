"""Text normalisation before hashing (``normalize`` of the exact and fuzzy workflows).

The modes are cumulative, each applied to a whole Arrow string array on the host before any
hashing, so the CPU and GPU paths hash the same normalised bytes:

- ``none`` (the default, NeMo Curator's behaviour): the text as it is.
- ``whitespace``: every run of whitespace becomes one space (U+0020), and leading and trailing
  whitespace is removed. Whitespace is exactly what Python's ``str.isspace`` calls whitespace:
  ASCII tab, line feed, vertical tab, form feed, carriage return, U+001C-U+001F, space, U+0085,
  and every Unicode space and separator (category Z: no-break space U+00A0, the ideographic
  space U+3000, U+2000-U+200A, U+2028, U+2029, ...). Zero-width characters (U+200B, U+FEFF)
  are not whitespace and stay.
- ``lower``: whitespace, after Unicode simple lowercase mapping of every character
  (one character to one: U+0130 "İ" becomes "i", Greek final sigma is not context-dependent).
- ``nfkc``: lower, after Unicode NFKC normalisation (compatibility forms folded: full-width
  "Ａ" becomes "A", "ﬁ" becomes "fi", a combining mark is composed with its base where a
  precomposed character exists).

Case mapping and NFKC are pyarrow's (utf8proc's Unicode tables); the pyarrow version is part of
the stage cache's fingerprint, and every executor of a cluster should have the same one.

A string that is not valid UTF-8 (Spark strings can hold any bytes: ``CAST(binary AS STRING)``,
Parquet written by other tools) is normalised as Python's ``bytes.decode("utf-8", "replace")``
reads it: each invalid sequence becomes U+FFFD first. ``none`` hashes its bytes as they are.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from sparkdedup.config import NORMALIZE_MODES
from sparkdedup.errors import ConfigError

# RE2: \s is ASCII whitespace only; with the rest of str.isspace's set spelled out and \p{Z}.
_WHITESPACE_RUN = r"[\s\x{0B}\x{1C}-\x{1F}\x{85}\p{Z}]+"


def check_normalize(mode: str, name: str = "normalize") -> None:
    if mode not in NORMALIZE_MODES:
        raise ConfigError(
            f"{name} must be one of {', '.join(map(repr, NORMALIZE_MODES))}, got {mode!r}"
        )


def normalize_arrow(texts: pa.Array | pa.ChunkedArray, mode: str) -> pa.Array | pa.ChunkedArray:
    """`texts` (string or large_string, nulls kept) normalised as `mode` says."""
    check_normalize(mode)
    if mode == "none":
        return texts
    out = _valid_utf8(texts)
    if mode == "nfkc":
        out = pc.utf8_normalize(out, form="NFKC")
    if mode in ("lower", "nfkc"):
        out = pc.utf8_lower(out)
    out = pc.replace_substring_regex(out, pattern=_WHITESPACE_RUN, replacement=" ")
    return pc.utf8_trim(out, characters=" ")


def _valid_utf8(texts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """`texts`, with each invalid UTF-8 sequence of a string replaced by U+FFFD (pyarrow's
    Unicode functions refuse such strings). One validation pass; the rare batch holding such
    a string is decoded again text by text."""
    try:
        texts.validate(full=True)
        return texts
    except pa.ArrowInvalid:
        pass
    raw = texts.cast(pa.large_binary() if pa.types.is_large_string(texts.type) else pa.binary())
    fixed = [None if b is None else b.decode("utf-8", "replace") for b in raw.to_pylist()]
    return pa.array(fixed, type=texts.type)


def normalize_text(text: str, mode: str) -> str:
    """One text normalised (for tests and notebooks; the workflows use `normalize_arrow`)."""
    result = normalize_arrow(pa.array([text], pa.string()), mode)
    return result[0].as_py()

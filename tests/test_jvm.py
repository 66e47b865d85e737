"""JVM UDFs (jvm-udfs/, sparkdedup.jvm): bit parity with the test vectors, numpy's permutation
parameters and the Python MinHash kernels; band keys equal to Spark's own xxhash64; registration
and its errors. The JUnit suite (gradle test) checks every cuDF vector on the Java side."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import types

import numpy as np
import pytest
from sparkdedup import jvm
from sparkdedup.errors import BackendUnavailableError
from utf8_cases import INVALID_UTF8

needs_jar = pytest.mark.skipif(
    jvm.jar_path() is None or jvm.unsupported_reason() is not None,
    reason=jvm.unsupported_reason()
    or "JVM UDF jar not built: run 'make jar' (make test builds it)",
)

MINHASH_CLASS = "io.sparkdedup.spark.SparkDedupFunctions"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- no Spark, no jar needed
def test_jar_needs_spark_4() -> None:
    """The jar is built for Spark 4 / Scala 2.13: on 3.5 its entry points say so."""
    assert jvm.unsupported_reason("4.3.0") is None and jvm.unsupported_reason("4.0.1") is None
    reason = jvm.unsupported_reason("3.5.9")
    assert reason is not None and "Spark 4" in reason and "pyspark 3.5.9" in reason


def test_jar_entry_points_refuse_spark_3(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyspark
    from pyspark.sql import SparkSession

    monkeypatch.setattr(pyspark, "__version__", "3.5.9")
    with pytest.raises(BackendUnavailableError, match="built for Spark 4"):
        jvm.register_udfs(types.SimpleNamespace())  # type: ignore[arg-type]
    with pytest.raises(BackendUnavailableError, match="pyspark 3.5.9"):
        jvm.configure_builder(SparkSession.builder)


def test_jar_path_is_the_packaged_jar_or_none() -> None:
    path = jvm.jar_path()
    assert path is None or (path.endswith("sparkdedup/jars/sparkdedup-udfs.jar"))


@needs_jar
def test_configure_builder_appends_the_jar_once() -> None:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.config("spark.jars", "/opt/other.jar")
    assert jvm.configure_builder(builder) is builder
    jvm.configure_builder(builder)
    assert builder._options["spark.jars"] == f"/opt/other.jar,{jvm.jar_path()}"
    fresh = jvm.configure_builder(SparkSession.builder)
    assert fresh._options["spark.jars"] == jvm.jar_path()


def test_configure_builder_without_jar_says_how_to_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyspark.sql import SparkSession

    monkeypatch.setattr(jvm, "unsupported_reason", lambda: None)  # as on Spark 4
    monkeypatch.setattr(jvm, "jar_path", lambda: None)
    with pytest.raises(BackendUnavailableError, match="make jar") as info:
        jvm.configure_builder(SparkSession.builder)
    assert isinstance(info.value, ImportError)


class _MissingJavaPackage:
    """Stands in for py4j's JavaPackage: what `spark._jvm.a.b.C` is when C is not loadable."""

    def __getattr__(self, name: str) -> _MissingJavaPackage:
        return self


def test_register_udfs_without_classes_on_classpath_says_how_to_start_spark(monkeypatch) -> None:
    monkeypatch.setattr(jvm, "unsupported_reason", lambda: None)  # as on Spark 4
    fake = types.SimpleNamespace(_jvm=_MissingJavaPackage(), _jsparkSession=object())
    with pytest.raises(BackendUnavailableError) as info:
        jvm.register_udfs(fake)  # type: ignore[arg-type]
    message = str(info.value)
    assert "not on the driver classpath" in message
    assert "configure_builder" in message and "--jars" in message


def test_register_udfs_on_spark_connect_says_what_to_do(monkeypatch) -> None:
    monkeypatch.setattr(jvm, "unsupported_reason", lambda: None)  # as on Spark 4
    with pytest.raises(BackendUnavailableError, match="Spark Connect"):
        jvm.register_udfs(types.SimpleNamespace())  # type: ignore[arg-type]


def test_ensure_gradle_names_a_missing_javac(tmp_path) -> None:
    # A machine with gradle (whose Debian package needs only a JRE) but no javac, and no apt-get
    # on PATH, so that nothing is installed: the script must say javac is missing and which
    # package provides it.
    script = os.path.join(REPO, ".ci", "ensure-gradle.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gradle").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "gradle").chmod(0o755)
    os.symlink(shutil.which("id"), bin_dir / "id")
    done = subprocess.run(
        [shutil.which("bash"), script],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "javac (a JDK, not only a JRE)" in done.stderr
    assert "openjdk-17-jdk-headless" in done.stderr


# ---------------------------------------------------------------- in Spark (marker jvm)


@pytest.fixture(scope="module")
def jspark(spark):
    names = jvm.register_udfs(spark)
    assert sorted(names) == sorted(jvm.SQL_FUNCTIONS)
    return spark


def _numpy_params(num_hashes: int, seed: int, use_64_bit_hash: bool) -> np.ndarray:
    """NeMo Curator's generate_hash_permutation_seeds: interleaved (a, b) from RandomState."""
    gen = np.random.RandomState(seed)
    if use_64_bit_hash:
        prime, dtype = np.uint64((1 << 61) - 1), np.uint64
    else:
        prime, dtype = np.uint32((1 << 31) - 1), np.uint32
    return np.array(
        [
            [gen.randint(1, prime, dtype=dtype), gen.randint(0, prime, dtype=dtype)]
            for _ in range(num_hashes)
        ],
        dtype=dtype,
    ).T


def _signatures(
    spark, texts: list[str | None], width: int, k: int, seed: int, use_64_bit_hash: bool
) -> list[np.ndarray | None]:
    """JVM signatures of `texts` as unsigned NumPy rows (None for a null signature)."""
    flag = "true" if use_64_bit_hash else "false"
    call = f"sparkdedup_minhash(text, {width}, {k}, {seed}L, {flag})"
    df = spark.createDataFrame(list(enumerate(texts)), "id int, text string")
    rows = df.selectExpr("id", f"{call} AS sig").orderBy("id").collect()
    out: list[np.ndarray | None] = []
    for row in rows:
        if row.sig is None:
            out.append(None)
        elif use_64_bit_hash:
            out.append(np.asarray(row.sig, dtype=np.uint64))  # values are below 2^61
        else:
            out.append(np.asarray(row.sig, dtype=np.int32).view(np.uint32))  # uint32 bit patterns
    return out


def _random_unicode_texts(n: int, seed: int) -> list[str | None]:
    rnd = random.Random(seed)
    alphabet = (
        list("abcdefgh ,.")
        + ["\u00e9", "\u0301", "\u0327"]  # precomposed e-acute, combining acute and cedilla
        + ["\u4e2d", "\u6587", "\u5b57", "\u3042"]  # CJK, hiragana
        + ["\U0001f600", "\U0001f44d", "\U0001f1eb", "\U0001f1f7", "\U00010348"]  # 4-byte UTF-8
        + ["\u07ff", "\u0800", "\uffff", "\x00"]  # UTF-8 length boundaries, NUL
    )
    texts: list[str | None] = [None, "", "a", "\U0001f600", "ab\u0301", "\u4e2d\u6587"]
    for _ in range(n):
        length = rnd.choice([rnd.randint(1, 8), rnd.randint(1, 60), rnd.randint(200, 600)])
        texts.append("".join(rnd.choice(alphabet) for _ in range(length)))
    return texts


@pytest.mark.jvm
@needs_jar
def test_functions_registered_by_session_extension(jspark) -> None:
    # A new session gets its functions from the session extension that Spark loaded from the
    # jar (META-INF/services), not from register_udfs, which only touched `jspark`'s registry.
    other = jspark.newSession()
    row = other.sql("SELECT sparkdedup_minhash('abc', 2, 3) AS s").collect()[0]
    assert len(row.s) == 3
    listed = {r.function for r in jspark.sql("SHOW FUNCTIONS LIKE 'sparkdedup*'").collect()}
    assert set(jvm.SQL_FUNCTIONS) <= {name.split(".")[-1] for name in listed}


@pytest.mark.jvm
@needs_jar
def test_minhash_matches_curator_vectors_through_sql(jspark, test_vectors) -> None:
    v = test_vectors["curator_default_params"]
    text = v["sample_text"].replace("'", "\\'")
    row = jspark.sql(
        f"SELECT sparkdedup_minhash('{text}') AS d32, "
        f"sparkdedup_minhash('{text}', 24, 260, 42, false) AS e32, "
        f"sparkdedup_minhash('{text}', 24, 260, 42L, true) AS d64"
    ).collect()[0]
    sig32 = [x & 0xFFFFFFFF for x in row.d32]
    assert len(sig32) == 260 and row.e32 == row.d32
    assert sig32[:8] == v["sample_signature_32_first8"]
    assert row.d64[:4] == v["sample_signature_64_first4"]


@pytest.mark.jvm
@needs_jar
@pytest.mark.parametrize("seed", [0, 1, 42, 12345, 2**31, 2**32 - 1])
@pytest.mark.parametrize("use_64_bit_hash", [False, True])
def test_permutation_params_equal_numpy_random_state(
    jspark, seed: int, use_64_bit_hash: bool
) -> None:
    cls = jvm._functions_class(jspark)
    got = np.array(list(cls.permutationParams(37, seed, use_64_bit_hash)), dtype=np.uint64)
    expected = _numpy_params(37, seed, use_64_bit_hash)
    np.testing.assert_array_equal(got[0::2], expected[0].astype(np.uint64))
    np.testing.assert_array_equal(got[1::2], expected[1].astype(np.uint64))


@pytest.mark.jvm
@needs_jar
@pytest.mark.parametrize("use_64_bit_hash", [False, True])
def test_minhash_matches_reference_kernel_on_unicode(jspark, use_64_bit_hash: bool) -> None:
    from sparkdedup.kernels.minhash_ref import minhash_reference

    texts = _random_unicode_texts(120, seed=11 if use_64_bit_hash else 12)
    width, k, seed = 5, 16, 7
    got = _signatures(jspark, texts, width, k, seed, use_64_bit_hash)
    a, b = _numpy_params(k, seed, use_64_bit_hash)
    expected = minhash_reference(texts, a, b, int(a[0]), width, use_64_bit_hash)
    for i, text in enumerate(texts):
        if not text:
            assert got[i] is None, f"text {text!r} must have a null signature"
        else:
            np.testing.assert_array_equal(got[i], expected[i], err_msg=repr(text))


@pytest.mark.jvm
@needs_jar
@pytest.mark.parametrize("use_64_bit_hash", [False, True])
def test_minhash_matches_public_python_minhash(jspark, use_64_bit_hash: bool) -> None:
    from sparkdedup.kernels import minhash as kernel

    texts = _random_unicode_texts(150, seed=21 if use_64_bit_hash else 22)
    for width, k, seed in [(24, 260, 42), (3, 20, 2**32 - 1)]:
        got = _signatures(jspark, texts, width, k, seed, use_64_bit_hash)
        expected = np.asarray(
            kernel.minhash(
                texts, char_ngrams=width, num_hashes=k, seed=seed, use_64_bit_hash=use_64_bit_hash
            )
        )
        assert expected.shape == (len(texts), k)
        for i, text in enumerate(texts):
            if not text:
                assert got[i] is None
            else:
                np.testing.assert_array_equal(got[i], expected[i], err_msg=repr(text))


@pytest.mark.jvm
@needs_jar
@pytest.mark.parametrize("use_64_bit_hash", [False, True])
def test_minhash_hashes_invalid_utf8_bytes_as_the_python_path(
    jspark, use_64_bit_hash: bool
) -> None:
    import pyarrow as pa
    from sparkdedup.fuzzy.minhash import minhash_signatures
    from sparkdedup.kernels import minhash as kernel

    flag = "true" if use_64_bit_hash else "false"
    rows = ", ".join(f"({i}, CAST(X'{h}' AS STRING))" for i, h in enumerate(INVALID_UTF8))
    docs = jspark.sql(f"SELECT * FROM VALUES {rows} AS docs(id, text)")
    jvm_rows = docs.selectExpr("id", f"sparkdedup_minhash(text, 3, 16, 7, {flag}) AS sig")
    python_rows = minhash_signatures(
        docs, char_ngrams=3, num_hashes=16, seed=7, use_64_bit_hash=use_64_bit_hash
    )
    by_jvm = {r.id: r.sig for r in jvm_rows.collect()}
    by_python = {r.id: r.signature for r in python_rows.collect()}
    assert by_jvm == by_python
    # ... and equal to the kernel on the raw bytes, not on their U+FFFD decoding; null where
    # the bytes start no shingle (the kernel's all-max row, shared by every such text).
    raw = pa.array([bytes.fromhex(h) for h in INVALID_UTF8], pa.binary()).view(pa.string())
    expected = kernel.minhash(
        raw, char_ngrams=3, num_hashes=16, seed=7, use_64_bit_hash=use_64_bit_hash
    )
    dtype = np.int64 if use_64_bit_hash else np.int32
    shingleless = {INVALID_UTF8.index("808061"), INVALID_UTF8.index("80bf")}
    for i in range(len(INVALID_UTF8)):
        if i in shingleless:
            assert by_jvm[i] is None and (expected[i] == np.iinfo(expected.dtype).max).all()
        else:
            np.testing.assert_array_equal(
                by_jvm[i], expected[i].view(dtype), err_msg=INVALID_UTF8[i]
            )
    stray = INVALID_UTF8.index("6162ff636465c3")
    assert by_jvm[stray] != by_jvm[len(INVALID_UTF8) - 1]  # the bytes, not "ab\ufffdcde\ufffd"


@pytest.mark.jvm
@needs_jar
@pytest.mark.parametrize("use_64_bit_hash", [False, True])
def test_band_buckets_equal_spark_xxhash64(jspark, use_64_bit_hash: bool) -> None:
    from pyspark.sql import functions as F

    texts = [t for t in _random_unicode_texts(30, seed=5) if t] + [None]
    bands, r = 20, 13
    flag = "true" if use_64_bit_hash else "false"
    df = jspark.createDataFrame(list(enumerate(texts)), "id int, text string").selectExpr(
        "id", f"sparkdedup_minhash(text, 24, {bands * r}, 42, {flag}) AS sig"
    )
    spark_keys = F.array(
        *[F.xxhash64(F.lit(b).cast("int"), F.slice("sig", b * r + 1, r)) for b in range(bands)]
    )
    udf_keys = F.array(
        *[
            F.call_function("sparkdedup_band_bucket", F.lit(b), F.col("sig"), F.lit(r))
            for b in range(bands)
        ]
    )
    all_keys = F.call_function("sparkdedup_band_buckets", F.col("sig"), F.lit(bands), F.lit(r))
    rows = df.select(
        "id", "sig", spark_keys.alias("s"), udf_keys.alias("u"), all_keys.alias("a")
    ).collect()
    assert len(rows) == len(texts)
    for row in rows:
        if row.sig is None:
            assert row.a is None and row.u == [None] * bands
        else:
            assert row.u == row.s and row.a == row.s


@pytest.mark.jvm
@needs_jar
def test_sql_errors_name_the_argument(jspark) -> None:
    from pyspark.errors import IllegalArgumentException

    # Argument errors are raised while the query is analysed, before any job runs.
    with pytest.raises(IllegalArgumentException, match="char_ngrams must be between 2"):
        jspark.sql("SELECT sparkdedup_minhash('abc', 1)")
    with pytest.raises(
        IllegalArgumentException, match="use_64_bit_hash must be a constant BOOLEAN"
    ):
        jspark.sql("SELECT sparkdedup_minhash('abc', 3, 4, 42, id > 0) FROM range(1)")
    with pytest.raises(IllegalArgumentException, match="ARRAY<INT> or ARRAY<BIGINT>"):
        jspark.sql("SELECT sparkdedup_band_buckets(array(1.5D), 1, 1)")
    with pytest.raises(IllegalArgumentException, match="takes 1 to 5 arguments"):
        jspark.sql("SELECT sparkdedup_minhash()")


@pytest.mark.jvm
@needs_jar
def test_named_arguments_go_to_their_parameters(jspark) -> None:
    # Spark 4 passes `name => value` arguments to the builder as they are written: each must
    # land on the parameter of that name, in any order, with defaults for those left out.
    row = jspark.sql(
        "SELECT sparkdedup_minhash('some text here', 3, 8, 7, true) AS positional, "
        "sparkdedup_minhash(use_64_bit_hash => true, seed => 7, num_hashes => 8, "
        "  char_ngrams => 3, text => 'some text here') AS named, "
        "sparkdedup_minhash('some text here', 24, 260, 7) AS defaults, "
        "sparkdedup_minhash('some text here', SEED => 7) AS skipped, "
        "sparkdedup_band_buckets(array(1, 2, 3, 4), 2, 2) AS keys, "
        "sparkdedup_band_buckets(minhashes_per_band => 2, num_bands => 2, "
        "  signature => array(1, 2, 3, 4)) AS named_keys, "
        "sparkdedup_band_bucket(signature => array(1, 2, 3, 4), band => 1, "
        "  minhashes_per_band => 2) AS named_key"
    ).collect()[0]
    assert row.named == row.positional and len(row.named) == 8
    assert row.skipped == row.defaults and len(row.skipped) == 260
    assert row.named_keys == row.keys and row.named_key == row.keys[1]


@pytest.mark.jvm
@needs_jar
def test_named_argument_errors_name_the_parameter(jspark) -> None:
    from pyspark.errors import IllegalArgumentException

    with pytest.raises(IllegalArgumentException, match="no parameter named 'width'"):
        jspark.sql("SELECT sparkdedup_minhash('abc', width => 3)")
    with pytest.raises(IllegalArgumentException, match="'char_ngrams' is given twice"):
        jspark.sql("SELECT sparkdedup_minhash('abc', 3, char_ngrams => 4)")
    with pytest.raises(IllegalArgumentException, match="'text' is required"):
        jspark.sql("SELECT sparkdedup_minhash(char_ngrams => 4)")
    with pytest.raises(IllegalArgumentException, match="char_ngrams must be between 2"):
        jspark.sql("SELECT sparkdedup_minhash(text => 'abc', char_ngrams => 1)")


@pytest.mark.jvm
@needs_jar
def test_band_bucket_refuses_a_band_past_the_signature_end(jspark) -> None:
    # A band with fewer than minhashes_per_band values (the signature ends inside it) has no key
    # in sparkdedup_band_buckets nor in the Python LSH step; sparkdedup_band_bucket refuses it too
    # (when the job runs: the signature's length is only known then).
    with pytest.raises(Exception, match="band must be in \\[0, 1\\)"):
        jspark.sql("SELECT sparkdedup_band_bucket(1, array(1, 2, 3), 2)").collect()

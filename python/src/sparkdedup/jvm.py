"""The JVM UDFs of fuzzy dedup: where the packaged jar is, how to start Spark with it, and how to
register its SQL functions in a running session.

The jar is built from jvm-udfs/ by build.gradle (`make jar`). Its functions compute the MinHash
step and the LSH band keys of shared/reference/ALGORITHMS.md, bit-identical to the Python kernels:

- ``sparkdedup_minhash(text[, char_ngrams[, num_hashes[, seed[, use_64_bit_hash]]]])``:
  ``array<int>`` (uint32 bit patterns), or ``array<bigint>`` when the constant
  ``use_64_bit_hash`` is true; defaults 24, 260, 42, false; null for a text without shingles
  (null, empty, or bytes that are not UTF-8 and start no shingle).
- ``sparkdedup_band_bucket(band, signature, minhashes_per_band)``: ``bigint``, equal to
  ``xxhash64(CAST(band AS INT), slice(signature, band*r+1, r))``; null for a null signature.
- ``sparkdedup_band_buckets(signature, num_bands, minhashes_per_band)``: ``array<bigint>`` of
  every band's key, for ``posexplode``.

Arguments may be named (``sparkdedup_minhash(text, seed => 7)``), after the positional ones.

When the jar is on the driver classpath as the session starts (``configure_builder``,
``--jars``), Spark's session-extension loader registers the functions by itself;
``register_udfs`` (re)registers them in a running session and checks that they are there.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sparkdedup.errors import BackendUnavailableError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SQL_FUNCTIONS", "configure_builder", "jar_path", "register_udfs"]

JAR_NAME = "sparkdedup-udfs.jar"
#: The Java class whose static ``register(SparkSession)`` registers the functions.
FUNCTIONS_CLASS = "io.sparkdedup.spark.SparkDedupFunctions"
#: The session extension that adds the functions to every session (``spark.sql.extensions``).
EXTENSIONS_CLASS = "io.sparkdedup.spark.SparkDedupExtensions"
#: Names of the SQL functions the jar provides.
SQL_FUNCTIONS = ("sparkdedup_minhash", "sparkdedup_band_bucket", "sparkdedup_band_buckets")

_BUILD_HINT = "build it with 'make jar' (gradle and junit4 from apt, no network needed)"


def unsupported_reason(version: str | None = None) -> str | None:
    """Why the UDF jar cannot run with pyspark `version` (the installed one by default), or
    None when it can: the jar is built against Spark 4 and Scala 2.13."""
    if version is None:
        import pyspark

        version = pyspark.__version__
    major = int(version.split(".", 1)[0])
    if major >= 4:
        return None
    return (
        f"the sparkdedup JVM UDF jar is built for Spark 4 (Scala 2.13) and this is pyspark "
        f"{version}; on Spark 3.5 use the Python API (sparkdedup.fuzzy_duplicates, the CLI), "
        "which runs the same MinHash"
    )


def _packaged_jar() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "jars", JAR_NAME)


def jar_path() -> str | None:
    """Path of the UDF jar shipped inside the package, or None when it has not been built.

    Returns
    -------
    str or None
        Absolute path of ``sparkdedup/jars/sparkdedup-udfs.jar``.
    """
    path = _packaged_jar()
    return path if os.path.isfile(path) else None


def _missing_jar_error() -> BackendUnavailableError:
    return BackendUnavailableError(
        f"the sparkdedup JVM UDF jar is missing (expected at {_packaged_jar()}); {_BUILD_HINT}"
    )


def configure_builder(builder: SparkSession.Builder) -> SparkSession.Builder:
    """Add the UDF jar to ``spark.jars`` of a ``SparkSession.builder``.

    Any jars already configured are kept (the jar is appended once). A session built from the
    result has the sparkdedup SQL functions registered by Spark's session-extension loader.

    Parameters
    ----------
    builder : pyspark.sql.SparkSession.Builder
        The builder to configure; it must not have created its session yet.

    Returns
    -------
    pyspark.sql.SparkSession.Builder
        The same builder, for chaining.

    Raises
    ------
    BackendUnavailableError
        When the jar has not been built (the message says how to build it), or pyspark is
        older than 4 (the jar is built for Spark 4).

    Examples
    --------
    >>> from pyspark.sql import SparkSession
    >>> from sparkdedup.jvm import configure_builder
    >>> spark = configure_builder(SparkSession.builder.master("local[2]")).getOrCreate()  # doctest: +SKIP
    >>> spark.sql("SELECT sparkdedup_minhash('some text')")  # doctest: +SKIP
    """
    reason = unsupported_reason()
    if reason is not None:
        raise BackendUnavailableError(reason)
    jar = jar_path()
    if jar is None:
        raise _missing_jar_error()
    options: dict[str, Any] = getattr(builder, "_options", {}) or {}
    existing = [j.strip() for j in str(options.get("spark.jars", "")).split(",") if j.strip()]
    if jar not in existing:
        existing.append(jar)
    return builder.config("spark.jars", ",".join(existing))


def _functions_class(spark: Any) -> Any:
    """The py4j handle of the Java class that registers the functions; errors say how to fix."""
    jvm = getattr(spark, "_jvm", None)
    jsession = getattr(spark, "_jsparkSession", None)
    if jvm is None or jsession is None:
        raise BackendUnavailableError(
            "register_udfs needs a classic SparkSession with a local JVM; with Spark Connect, "
            f"start the Connect server with --jars {jar_path() or '<path of ' + JAR_NAME + '>'} "
            "and the functions are registered in every session"
        )
    from py4j.java_gateway import JavaClass

    handle: Any = jvm
    for part in FUNCTIONS_CLASS.split("."):
        handle = getattr(handle, part)
    if not isinstance(handle, JavaClass):
        jar = jar_path()
        where = (
            f"--jars {jar}"
            if jar is not None
            else f"--jars <path of {JAR_NAME}> (not built yet: {_BUILD_HINT})"
        )
        raise BackendUnavailableError(
            f"the sparkdedup JVM UDF classes ({FUNCTIONS_CLASS}) are not on the driver classpath; "
            "start Spark with sparkdedup.jvm.configure_builder(SparkSession.builder) or with "
            f"{where}; the jar cannot be added to a session that is already running"
        )
    return handle


def register_udfs(spark: SparkSession) -> list[str]:
    """Register the sparkdedup SQL functions in ``spark`` and return their names.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        A classic session started with the jar on its classpath (see `configure_builder`).

    Returns
    -------
    list of str
        ``["sparkdedup_minhash", "sparkdedup_band_bucket", "sparkdedup_band_buckets"]``.

    Raises
    ------
    BackendUnavailableError
        When the jar's classes are not on the driver classpath, or the session is a Spark
        Connect session (the message says what to do).
    """
    reason = unsupported_reason()
    if reason is not None:
        raise BackendUnavailableError(reason)
    functions_class = _functions_class(spark)
    return [str(name) for name in functions_class.register(spark._jsparkSession)]

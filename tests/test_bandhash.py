"""Band hashing (`kernels.bandhash`) is Spark SQL's xxhash64 of (band, sliced signature).

Golden values were recorded with pyspark 4.3.0 from
``spark.sql("SELECT xxhash64(CAST(0 AS INT), slice(array(1, -2, 2147483647, -2147483648, 0,
42), 1, 3)) ...")`` (the queries are spelled out beside each value); the Spark test compares
with `F.xxhash64` on random signatures in both modes.
"""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F
from sparkdedup.errors import ConfigError, SchemaError
from sparkdedup.kernels.bandhash import band_buckets, band_hashes

INTS = [1, -2, 2147483647, -2147483648, 0, 42]
LONGS = [1, -2, 2**63 - 1, -(2**63), 0, 42]


def test_golden_values_recorded_from_spark() -> None:
    # xxhash64(CAST(0 AS INT), slice(array(1, -2, 2147483647, -2147483648, 0, 42), 1, 3)) and
    # xxhash64(CAST(1 AS INT), slice(<same>, 4, 3))
    ints = np.array([INTS], dtype=np.int32)
    assert band_buckets(ints, [0, 1], 3).tolist() == [[3966622996796747454, -2647343766228508732]]
    # The same with the uint32 bit patterns gives the same keys.
    assert band_buckets(ints.view(np.uint32), [1], 3).tolist() == [[-2647343766228508732]]
    # xxhash64(CAST(0 AS INT), slice(array(1L, -2L, 9223372036854775807L,
    # -9223372036854775808L, 0L, 42L), 1, 3)) and the same for band 1 (positions 4..6)
    longs = np.array([LONGS], dtype=np.int64)
    assert band_buckets(longs, [0, 1], 3).tolist() == [[-4070016276487082555, -7713915399106270893]]
    assert band_buckets(longs.view(np.uint64), [0], 3).tolist() == [[-4070016276487082555]]
    # xxhash64(CAST(7 AS INT), array(5))
    assert band_hashes(np.array([[[5]]], dtype=np.uint32), [7]).tolist() == [[321218132035939981]]


def test_band_hashes_equals_band_buckets_on_slices() -> None:
    rng = np.random.default_rng(1)
    sig = rng.integers(0, 2**32, size=(50, 12), dtype=np.uint64).astype(np.uint32)
    bands = [3, 0, 2]
    sliced = np.stack([sig[:, 3 * k : 3 * k + 3] for k in bands], axis=1)
    np.testing.assert_array_equal(band_hashes(sliced, bands), band_buckets(sig, bands, 3))
    assert band_buckets(np.zeros((0, 12), np.uint32), bands, 3).shape == (0, 3)


def test_invalid_arguments() -> None:
    sig = np.zeros((2, 6), np.uint32)
    with pytest.raises(ConfigError, match="bands must lie in 0..1"):
        band_buckets(sig, [2], 3)
    with pytest.raises(ConfigError, match="rows_per_band"):
        band_buckets(sig, [0], 0)
    with pytest.raises(SchemaError, match="float64"):
        band_buckets(sig.astype(np.float64), [0], 3)


@pytest.mark.parametrize("use64", [False, True])
def test_equals_spark_xxhash64(spark, use64: bool) -> None:
    rng = np.random.default_rng(2)
    r, num_bands = 4, 5
    unsigned = np.uint64 if use64 else np.uint32
    sig = rng.integers(
        0,
        np.iinfo(unsigned).max,
        size=(300, r * num_bands),
        dtype=unsigned,
        endpoint=True,
    )
    sig[0] = np.iinfo(unsigned).max
    sig[1] = 0
    signed = sig.view(np.int64 if use64 else np.int32)
    element = "bigint" if use64 else "int"
    df = spark.createDataFrame(
        [(i, row.tolist()) for i, row in enumerate(signed)],
        f"id int, signature array<{element}>",
    )
    exprs = [
        F.xxhash64(F.lit(k).cast("int"), F.slice("signature", k * r + 1, r)).alias(f"b{k}")
        for k in range(num_bands)
    ]
    rows = df.select("id", *exprs).collect()
    spark_keys = np.array([list(row)[1:] for row in sorted(rows)], dtype=np.int64)
    np.testing.assert_array_equal(band_buckets(sig, range(num_bands), r), spark_keys)

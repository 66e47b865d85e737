/*
 * The row-level Java UDFs behind sparkdedup's SQL functions: MinHash signatures (fuzzy dedup
 * step 1) and LSH band bucket keys (step 2), shared/reference/ALGORITHMS.md. Spark hands each
 * argument over as its Java value (Integer, Long, byte[], scala Seq for arrays), so numeric
 * arguments arrive as Objects and are converted here; null in any argument gives a null result.
 * The text arrives as its UTF-8 bytes (the builder casts it to BINARY): a Java String would
 * replace invalid UTF-8 by U+FFFD before hashing, where cuDF and the Python kernel hash the bytes.
 */
package io.sparkdedup.spark;

import io.sparkdedup.MinHash;
import io.sparkdedup.PermutationParams;
import org.apache.spark.sql.api.java.UDF3;
import org.apache.spark.sql.api.java.UDF4;
import org.apache.spark.sql.catalyst.expressions.XXH64;

/** Java UDF implementations; {@link SparkDedupFunctions} wraps them as SQL functions. */
public final class Udfs {
  /** Seed of Spark SQL's {@code xxhash64}. */
  public static final long XXHASH64_SEED = 42L;

  private Udfs() {}

  static int toInt(String name, Object value) {
    long v = toLong(name, value);
    if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(name + " must fit in an INT, got " + v);
    }
    return (int) v;
  }

  static long toLong(String name, Object value) {
    if (value instanceof Integer || value instanceof Long || value instanceof Short
        || value instanceof Byte) {
      return ((Number) value).longValue();
    }
    throw new IllegalArgumentException(
        name + " must be an integer (TINYINT, SMALLINT, INT or BIGINT), got "
            + (value == null ? "NULL" : value.getClass().getSimpleName() + " " + value));
  }

  /** Base of the two MinHash UDFs: argument checks and the last parameters used by this task. */
  abstract static class MinHashBase implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    // A task calls the UDF row after row with the same parameters; remembering the last ones
    // skips the shared cache lookup. The field holds an immutable object, so a race only costs
    // a lookup.
    private transient PermutationParams last;

    PermutationParams params(Object numHashes, Object seed, boolean use64BitHash) {
      int k = toInt("num_hashes", numHashes);
      long s = toLong("seed", seed);
      PermutationParams p = last;
      if (p == null || p.numHashes != k || p.seed != s || p.use64BitHash != use64BitHash) {
        p = PermutationParams.of(k, s, use64BitHash);  // checks num_hashes and seed
        last = p;
      }
      return p;
    }

    static int width(Object charNgrams) {
      int width = toInt("char_ngrams", charNgrams);
      if (width < 2) {
        throw new IllegalArgumentException("char_ngrams must be >= 2, got " + width);
      }
      return width;
    }
  }

  /** {@code (utf8, char_ngrams, num_hashes, seed) -> array<int>} (uint32 bit patterns). */
  public static final class MinHash32 extends MinHashBase
      implements UDF4<byte[], Object, Object, Object, int[]> {
    private static final long serialVersionUID = 1L;

    @Override
    public int[] call(byte[] utf8, Object charNgrams, Object numHashes, Object seed) {
      if (utf8 == null || charNgrams == null || numHashes == null || seed == null) {
        return null;
      }
      int width = width(charNgrams);
      return MinHash.signature32Utf8(utf8, width, params(numHashes, seed, false));
    }
  }

  /** {@code (utf8, char_ngrams, num_hashes, seed) -> array<bigint>} (values below 2^61). */
  public static final class MinHash64 extends MinHashBase
      implements UDF4<byte[], Object, Object, Object, long[]> {
    private static final long serialVersionUID = 1L;

    @Override
    public long[] call(byte[] utf8, Object charNgrams, Object numHashes, Object seed) {
      if (utf8 == null || charNgrams == null || numHashes == null || seed == null) {
        return null;
      }
      int width = width(charNgrams);
      return MinHash.signature64Utf8(utf8, width, params(numHashes, seed, true));
    }
  }

  /**
   * {@code xxhash64(CAST(band AS INT), slice(signature, band*r+1, r))} over a signature given as
   * a scala Seq of Integer or Long (null elements are skipped, as Spark's hash skips them).
   */
  static long bandHash(int band, scala.collection.Seq<?> signature, int r) {
    long h = XXH64.hashInt(band, XXHASH64_SEED);
    int start = band * r;
    int end = Math.min(signature.length(), start + r);
    for (int i = start; i < end; i++) {
      Object v = signature.apply(i);
      if (v instanceof Integer) {
        h = XXH64.hashInt((Integer) v, h);
      } else if (v instanceof Long) {
        h = XXH64.hashLong((Long) v, h);
      } else if (v != null) {
        throw new IllegalArgumentException(
            "signature elements must be INT or BIGINT, got " + v.getClass().getSimpleName());
      }
    }
    return h;
  }

  static scala.collection.Seq<?> toSeq(Object signature) {
    if (signature instanceof scala.collection.Seq) {
      return (scala.collection.Seq<?>) signature;
    }
    throw new IllegalArgumentException(
        "signature must be an ARRAY<INT> or ARRAY<BIGINT>, got " + signature.getClass().getName());
  }

  static int minhashesPerBand(Object r) {
    int v = toInt("minhashes_per_band", r);
    if (v < 1) {
      throw new IllegalArgumentException("minhashes_per_band must be >= 1, got " + v);
    }
    return v;
  }

  /** {@code (band, signature, minhashes_per_band) -> bigint}: the bucket key of one band. */
  public static final class BandBucket implements UDF3<Object, Object, Object, Long> {
    private static final long serialVersionUID = 1L;

    @Override
    public Long call(Object band, Object signature, Object minhashesPerBand) {
      if (band == null || signature == null || minhashesPerBand == null) {
        return null;
      }
      int b = toInt("band", band);
      int r = minhashesPerBand(minhashesPerBand);
      scala.collection.Seq<?> sig = toSeq(signature);
      // A band must lie inside the signature: one that the signature ends in would be keyed
      // on fewer than r values, which no band of sparkdedup_band_buckets or of the Python LSH
      // step ever is.
      if (b < 0 || ((long) b + 1) * r > sig.length()) {
        throw new IllegalArgumentException(
            "band must be in [0, " + sig.length() / r + ") (floor(" + sig.length() + " / " + r
                + ")) for a signature of " + sig.length() + " values and minhashes_per_band="
                + r + ", got " + b);
      }
      return bandHash(b, sig, r);
    }
  }

  /** {@code (signature, num_bands, minhashes_per_band) -> array<bigint>}: every band's key. */
  public static final class BandBuckets implements UDF3<Object, Object, Object, long[]> {
    private static final long serialVersionUID = 1L;

    @Override
    public long[] call(Object signature, Object numBands, Object minhashesPerBand) {
      if (signature == null || numBands == null || minhashesPerBand == null) {
        return null;
      }
      int bands = toInt("num_bands", numBands);
      int r = minhashesPerBand(minhashesPerBand);
      scala.collection.Seq<?> sig = toSeq(signature);
      if (bands < 1 || (long) bands * r > sig.length()) {
        throw new IllegalArgumentException(
            "num_bands must be >= 1 with num_bands * minhashes_per_band <= " + sig.length()
                + " (the signature length), got num_bands=" + bands
                + ", minhashes_per_band=" + r);
      }
      long[] out = new long[bands];
      for (int b = 0; b < bands; b++) {
        out[b] = bandHash(b, sig, r);
      }
      return out;
    }
  }
}

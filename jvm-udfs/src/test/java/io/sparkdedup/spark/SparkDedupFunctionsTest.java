/* The SQL functions' UDFs and builders, without a SparkSession (pytest covers them in Spark). */
package io.sparkdedup.spark;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import io.sparkdedup.MinHash;
import io.sparkdedup.PermutationParams;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.NamedArgumentExpression;
import org.apache.spark.sql.catalyst.expressions.XXH64;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.catalyst.util.GenericArrayData;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.unsafe.types.UTF8String;
import org.junit.Test;
import scala.jdk.javaapi.CollectionConverters;

public class SparkDedupFunctionsTest {
  private static final byte[] ABC = {'a', 'b', 'c'};

  private static scala.collection.Seq<Object> seq(Object... values) {
    return CollectionConverters.asScala(Arrays.asList(values)).toList();
  }

  private static long directBandHash(int band, long[] sig, int r, boolean asInt) {
    long h = XXH64.hashInt(band, 42L);
    for (int i = band * r; i < Math.min(sig.length, band * r + r); i++) {
      h = asInt ? XXH64.hashInt((int) sig[i], h) : XXH64.hashLong(sig[i], h);
    }
    return h;
  }

  @Test
  public void bandBucketEqualsDirectXxh64Chain() {
    Random rnd = new Random(3);
    Udfs.BandBucket one = new Udfs.BandBucket();
    Udfs.BandBuckets all = new Udfs.BandBuckets();
    for (int t = 0; t < 50; t++) {
      int r = 1 + rnd.nextInt(13);
      int bands = 1 + rnd.nextInt(20);
      long[] values = new long[bands * r];
      Object[] ints = new Object[values.length];
      Object[] longs = new Object[values.length];
      for (int i = 0; i < values.length; i++) {
        values[i] = rnd.nextLong();
        ints[i] = (int) values[i];
        longs[i] = values[i];
      }
      long[] keysInt = all.call(seq(ints), bands, r);
      long[] keysLong = all.call(seq(longs), (long) bands, (short) r);
      for (int b = 0; b < bands; b++) {
        assertEquals(directBandHash(b, values, r, true), (long) one.call(b, seq(ints), r));
        assertEquals(directBandHash(b, values, r, false), (long) one.call((long) b, seq(longs), r));
        assertEquals(directBandHash(b, values, r, true), keysInt[b]);
        assertEquals(directBandHash(b, values, r, false), keysLong[b]);
      }
    }
  }

  @Test
  public void bandBucketSkipsNullElementsAndNullInputs() {
    Udfs.BandBucket one = new Udfs.BandBucket();
    long expected = XXH64.hashInt(7, XXH64.hashInt(0, 42L));
    assertEquals(expected, (long) one.call(0, seq(null, 7), 2));
    assertNull(one.call(0, null, 2));
    assertNull(one.call(null, seq(1, 2), 2));
    assertNull(new Udfs.BandBuckets().call(null, 1, 2));
  }

  @Test
  public void bandOutOfRangeFails() {
    expectFailure(() -> new Udfs.BandBucket().call(2, seq(1, 2, 3, 4), 2), "band must be in");
    expectFailure(() -> new Udfs.BandBucket().call(-1, seq(1, 2), 2), "band must be in");
    // The signature ends inside band 1: it would be keyed on one value instead of two.
    expectFailure(() -> new Udfs.BandBucket().call(1, seq(1, 2, 3), 2), "band must be in [0, 1)");
    expectFailure(() -> new Udfs.BandBuckets().call(seq(1, 2, 3), 2, 2), "num_bands must be");
    expectFailure(() -> new Udfs.BandBucket().call(0, seq(1, 2), 0), "minhashes_per_band");
  }

  @Test
  public void minhashUdfsMatchKernel() {
    String text = "Spark \ud83d\ude00 dedup \u4e2d\u6587 e\u0301";
    byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
    int[] s32 = new Udfs.MinHash32().call(utf8, 5, 16, 7L);
    assertArrayEquals(MinHash.signature32(text, 5, PermutationParams.of(16, 7, false)), s32);
    long[] s64 = new Udfs.MinHash64().call(utf8, (short) 5, 16L, 7);
    assertArrayEquals(MinHash.signature64(text, 5, PermutationParams.of(16, 7, true)), s64);
    assertNull(new Udfs.MinHash32().call(null, 5, 16, 7));
    assertNull(new Udfs.MinHash32().call(new byte[0], 5, 16, 7));
    assertNull(new Udfs.MinHash32().call(ABC, null, 16, 7));
  }

  /** "ab", a stray 0xff, "cde", a truncated 2-byte sequence: what CAST(X'6162ff636465c3' AS
   * STRING) holds. */
  private static final byte[] INVALID_UTF8 = {'a', 'b', (byte) 0xff, 'c', 'd', 'e', (byte) 0xc3};

  @Test
  public void minhashHashesTheStoredBytesOfInvalidUtf8() {
    // The string as Spark stores it; decoding it to a Java String would give "ab\ufffdcde\ufffd".
    Literal stored = lit(UTF8String.fromBytes(INVALID_UTF8), DataTypes.StringType);
    String decoded = new String(INVALID_UTF8, StandardCharsets.UTF_8);
    assertEquals("ab\ufffdcde\ufffd", decoded);
    for (boolean use64 : new boolean[] {false, true}) {
      Expression e = SparkDedupFunctions.buildMinhash("sparkdedup_minhash", args(stored,
          lit(3, DataTypes.IntegerType), lit(16, DataTypes.IntegerType),
          lit(7L, DataTypes.LongType), lit(use64, DataTypes.BooleanType)));
      ArrayData got = (ArrayData) e.eval(null);
      PermutationParams p = PermutationParams.of(16, 7, use64);
      if (use64) {
        assertArrayEquals(MinHash.signature64Utf8(INVALID_UTF8, 3, p), got.toLongArray());
        assertFalse(Arrays.equals(MinHash.signature64(decoded, 3, p), got.toLongArray()));
      } else {
        assertArrayEquals(MinHash.signature32Utf8(INVALID_UTF8, 3, p), got.toIntArray());
        assertFalse(Arrays.equals(MinHash.signature32(decoded, 3, p), got.toIntArray()));
      }
    }
  }

  @Test
  public void minhashUdfRejectsBadArguments() {
    expectFailure(() -> new Udfs.MinHash32().call(ABC, 1, 16, 7), "char_ngrams must be >= 2");
    expectFailure(() -> new Udfs.MinHash32().call(ABC, 5, 0, 7), "num_hashes must be >= 1");
    expectFailure(() -> new Udfs.MinHash64().call(ABC, 5, 4, -1L), "seed must be between");
    expectFailure(() -> new Udfs.MinHash64().call(ABC, 5, 4, 1L << 32), "seed must be between");
    expectFailure(() -> new Udfs.MinHash32().call(ABC, 5.0, 4, 1),
        "char_ngrams must be an integer");
  }

  // ---- builders: the ScalaUDF they return evaluates without a session (interpreted)

  private static Literal lit(Object v, DataType t) {
    return new Literal(v, t);
  }

  private static Literal text(String s) {
    return lit(UTF8String.fromString(s), DataTypes.StringType);
  }

  private static List<Expression> args(Expression... e) {
    return new ArrayList<>(Arrays.asList(e));
  }

  @Test
  public void minhashBuilderFillsDefaultsAndPicksTypeByFlag() {
    String s = "The quick brown fox jumps over the lazy dog, again and again.";
    Expression e32 = SparkDedupFunctions.buildMinhash("sparkdedup_minhash", args(text(s)));
    assertEquals(DataTypes.createArrayType(DataTypes.IntegerType, false), e32.dataType());
    ArrayData d32 = (ArrayData) e32.eval(null);
    assertArrayEquals(MinHash.signature32(s, 24, PermutationParams.of(260, 42, false)),
        d32.toIntArray());

    Expression e64 = SparkDedupFunctions.buildMinhash("sparkdedup_minhash", args(text(s),
        lit(5, DataTypes.IntegerType), lit(10, DataTypes.IntegerType),
        lit(4294967295L, DataTypes.LongType), lit(true, DataTypes.BooleanType)));
    assertEquals(DataTypes.createArrayType(DataTypes.LongType, false), e64.dataType());
    assertArrayEquals(MinHash.signature64(s, 5, PermutationParams.of(10, 4294967295L, true)),
        ((ArrayData) e64.eval(null)).toLongArray());

    Expression explicit32 = SparkDedupFunctions.buildMinhash("sparkdedup_minhash", args(text(s),
        lit(24, DataTypes.IntegerType), lit(260, DataTypes.IntegerType),
        lit(42, DataTypes.IntegerType), lit(false, DataTypes.BooleanType)));
    assertArrayEquals(d32.toIntArray(), ((ArrayData) explicit32.eval(null)).toIntArray());
  }

  @Test
  public void buildersRejectBadArgumentsAtAnalysis() {
    String f = "sparkdedup_minhash";
    expectFailure(() -> SparkDedupFunctions.buildMinhash(f, args()), "takes 1 to 5 arguments");
    expectFailure(() -> SparkDedupFunctions.buildMinhash(f, args(lit(1, DataTypes.IntegerType))),
        "text must be a STRING");
    expectFailure(() -> SparkDedupFunctions.buildMinhash(f, args(text("a"),
        lit(1, DataTypes.IntegerType))), "char_ngrams must be between 2");
    expectFailure(() -> SparkDedupFunctions.buildMinhash(f, args(text("a"),
        lit(5, DataTypes.IntegerType), lit(4, DataTypes.IntegerType),
        lit(-3L, DataTypes.LongType))), "seed must be between 0 and 4294967295");
    expectFailure(() -> SparkDedupFunctions.buildMinhash(f, args(text("a"),
        lit(5, DataTypes.IntegerType), lit(4, DataTypes.IntegerType),
        lit(3L, DataTypes.LongType), lit(1, DataTypes.IntegerType))),
        "use_64_bit_hash must be a constant BOOLEAN");
    expectFailure(() -> SparkDedupFunctions.buildMinhash(f, args(text("a"),
        lit(5.5, DataTypes.DoubleType))), "char_ngrams must be an integer");
    Expression sig = lit(new GenericArrayData(new Object[] {1.0}),
        new ArrayType(DataTypes.DoubleType, false));
    expectFailure(() -> SparkDedupFunctions.buildBandBucket("sparkdedup_band_bucket",
        args(lit(0, DataTypes.IntegerType), sig, lit(1, DataTypes.IntegerType))),
        "signature must be an ARRAY<INT> or ARRAY<BIGINT>");
    expectFailure(() -> SparkDedupFunctions.buildBandBuckets("sparkdedup_band_buckets",
        args(sig)), "takes 3 arguments");
  }

  private static NamedArgumentExpression named(String key, Expression value) {
    return new NamedArgumentExpression(key, value);
  }

  @Test
  public void buildersPutNamedArgumentsInTheirParametersPlace() {
    String f = "sparkdedup_minhash";
    String s = "some text here";
    Expression positional = SparkDedupFunctions.buildMinhash(f, args(text(s),
        lit(3, DataTypes.IntegerType), lit(8, DataTypes.IntegerType), lit(7L, DataTypes.LongType),
        lit(true, DataTypes.BooleanType)));
    Expression named = SparkDedupFunctions.buildMinhash(f, args(
        named("use_64_bit_hash", lit(true, DataTypes.BooleanType)),
        named("SEED", lit(7L, DataTypes.LongType)),
        named("num_hashes", lit(8, DataTypes.IntegerType)),
        named("char_ngrams", lit(3, DataTypes.IntegerType)), named("text", text(s))));
    assertArrayEquals(((ArrayData) positional.eval(null)).toLongArray(),
        ((ArrayData) named.eval(null)).toLongArray());
    Expression skipped = SparkDedupFunctions.buildMinhash(f, args(text(s),
        named("seed", lit(7, DataTypes.IntegerType))));
    assertArrayEquals(MinHash.signature32(s, 24, PermutationParams.of(260, 7, false)),
        ((ArrayData) skipped.eval(null)).toIntArray());
    expectFailure(() -> SparkDedupFunctions.buildMinhash(f, args(text(s),
        named("width", lit(3, DataTypes.IntegerType)))), "no parameter named 'width'");
    expectFailure(() -> SparkDedupFunctions.buildMinhash(f, args(text(s),
        lit(3, DataTypes.IntegerType), named("char_ngrams", lit(4, DataTypes.IntegerType)))),
        "parameter 'char_ngrams' is given twice");
    expectFailure(() -> SparkDedupFunctions.buildMinhash(f, args(
        named("char_ngrams", lit(4, DataTypes.IntegerType)))), "parameter 'text' is required");
    expectFailure(() -> SparkDedupFunctions.buildMinhash(f, args(
        named("text", text(s)), lit(4, DataTypes.IntegerType))),
        "a positional argument cannot follow a named one");
    Expression sig = lit(new GenericArrayData(new Object[] {1, 2, 3, 4}),
        new ArrayType(DataTypes.IntegerType, false));
    Expression one = SparkDedupFunctions.buildBandBucket("sparkdedup_band_bucket", args(
        named("minhashes_per_band", lit(2, DataTypes.IntegerType)), named("signature", sig),
        named("band", lit(1, DataTypes.IntegerType))));
    assertEquals(directBandHash(1, new long[] {1, 2, 3, 4}, 2, true), (long) (Long) one.eval(null));
  }

  @Test
  public void bandBuilderEvaluates() {
    Expression sig = lit(new GenericArrayData(new Object[] {1, 2, 3, 4}),
        new ArrayType(DataTypes.IntegerType, false));
    Expression e = SparkDedupFunctions.buildBandBucket("sparkdedup_band_bucket",
        args(lit(1, DataTypes.IntegerType), sig, lit(2, DataTypes.IntegerType)));
    assertEquals(DataTypes.LongType, e.dataType());
    assertEquals(directBandHash(1, new long[] {1, 2, 3, 4}, 2, true), (long) (Long) e.eval(null));
    Expression all = SparkDedupFunctions.buildBandBuckets("sparkdedup_band_buckets",
        args(sig, lit(2, DataTypes.IntegerType), lit(2, DataTypes.IntegerType)));
    assertArrayEquals(new long[] {directBandHash(0, new long[] {1, 2, 3, 4}, 2, true),
        directBandHash(1, new long[] {1, 2, 3, 4}, 2, true)},
        ((ArrayData) all.eval(null)).toLongArray());
  }

  @Test
  public void definitionsNameEveryFunction() {
    List<String> names = new ArrayList<>(Arrays.asList(SparkDedupFunctions.names()));
    Collections.sort(names);
    assertEquals(Arrays.asList("sparkdedup_band_bucket", "sparkdedup_band_buckets",
        "sparkdedup_minhash"), names);
    for (SparkDedupFunctions.Definition d : SparkDedupFunctions.definitions()) {
      assertTrue(d.info.getUsage().startsWith(d.identifier.funcName() + "("));
    }
  }

  private static void expectFailure(Runnable r, String messagePart) {
    try {
      r.run();
    } catch (IllegalArgumentException e) {
      assertTrue("message '" + e.getMessage() + "' lacks '" + messagePart + "'",
          e.getMessage().contains(messagePart));
      return;
    }
    fail("expected IllegalArgumentException containing '" + messagePart + "'");
  }
}

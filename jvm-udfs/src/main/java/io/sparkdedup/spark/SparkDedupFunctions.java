/*
 * sparkdedup's SQL functions: MinHash signatures and LSH band bucket keys of fuzzy dedup
 * (shared/reference/ALGORITHMS.md) for SQL users and as a JVM-only CPU path. Each function has a
 * builder that puts named arguments ({@code name => value}) in their parameter's place, checks
 * the arguments when the query is analysed, fills in defaults for omitted ones, and wraps a Java
 * UDF from {@link Udfs}.
 */
package io.sparkdedup.spark;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.analysis.FunctionRegistry;
import org.apache.spark.sql.catalyst.expressions.Cast;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.ExpressionInfo;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.NamedArgumentExpression;
import org.apache.spark.sql.classic.UserDefinedFunctionUtils;
import org.apache.spark.sql.expressions.SparkUserDefinedFunction;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.NullType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;
import scala.runtime.AbstractFunction1;

/**
 * The SQL functions and how to register them.
 *
 * <ul>
 *   <li>{@code sparkdedup_minhash(text[, char_ngrams[, num_hashes[, seed[, use_64_bit_hash]]]])}:
 *       {@code array<int>} (uint32 bit patterns), or {@code array<bigint>} when the constant
 *       {@code use_64_bit_hash} is true. Defaults 24, 260, 42, false. A text without shingles
 *       (null, empty, or bytes that are not UTF-8 and start no shingle) gives null. The text's
 *       stored UTF-8 bytes are hashed, invalid sequences included.
 *   <li>{@code sparkdedup_band_bucket(band, signature, minhashes_per_band)}: {@code bigint}, equal
 *       to {@code xxhash64(CAST(band AS INT), slice(signature, band*r+1, r))}; null signature
 *       gives null.
 *   <li>{@code sparkdedup_band_buckets(signature, num_bands, minhashes_per_band)}: {@code
 *       array<bigint>} of every band's key, for {@code posexplode}.
 * </ul>
 *
 * <p>Register them in a running session with {@link #register(SparkSession)}, or in every session
 * through {@link SparkDedupExtensions} (loaded automatically when the jar is on the classpath at
 * session start).
 */
public final class SparkDedupFunctions {
  public static final String MINHASH = "sparkdedup_minhash";
  public static final String BAND_BUCKET = "sparkdedup_band_bucket";
  public static final String BAND_BUCKETS = "sparkdedup_band_buckets";

  public static final int DEFAULT_CHAR_NGRAMS = 24;
  public static final int DEFAULT_NUM_HASHES = 260;
  public static final long DEFAULT_SEED = 42L;

  /** The catalog and namespace of temporary functions ({@code system.session}, Spark 4). */
  private static final String SYSTEM_CATALOG = "system";
  private static final String SESSION_NAMESPACE = "session";

  private static final DataType INTS = DataTypes.createArrayType(DataTypes.IntegerType, false);
  private static final DataType LONGS = DataTypes.createArrayType(DataTypes.LongType, false);

  private static final SparkUserDefinedFunction MINHASH32_UDF =
      udf(functions.udf(new Udfs.MinHash32(), INTS), MINHASH);
  private static final SparkUserDefinedFunction MINHASH64_UDF =
      udf(functions.udf(new Udfs.MinHash64(), LONGS), MINHASH);
  private static final SparkUserDefinedFunction BAND_BUCKET_UDF =
      udf(functions.udf(new Udfs.BandBucket(), DataTypes.LongType), BAND_BUCKET);
  private static final SparkUserDefinedFunction BAND_BUCKETS_UDF =
      udf(functions.udf(new Udfs.BandBuckets(), LONGS), BAND_BUCKETS);

  private SparkDedupFunctions() {}

  private static SparkUserDefinedFunction udf(Object f, String name) {
    return ((SparkUserDefinedFunction) f).withName(name);
  }

  /** One SQL function: its name, its DESCRIBE FUNCTION text and its expression builder. */
  public static final class Definition {
    public final FunctionIdentifier identifier;
    public final ExpressionInfo info;
    public final scala.Function1<Seq<Expression>, Expression> builder;

    Definition(String name, String usage, String arguments, String examples, Builder builder) {
      this.identifier = FunctionIdentifier.apply(name);
      this.info = new ExpressionInfo(
          SparkDedupFunctions.class.getName(), null, name, usage, arguments, examples, "",
          "hash_funcs", "", "", "java_udf");
      this.builder = new AbstractFunction1<Seq<Expression>, Expression>() {
        @Override
        public Expression apply(Seq<Expression> args) {
          return builder.build(name, CollectionConverters.asJava(args));
        }
      };
    }

    /** The triple that {@code SparkSessionExtensions.injectFunction} takes. */
    public scala.Tuple3<FunctionIdentifier, ExpressionInfo,
        scala.Function1<Seq<Expression>, Expression>> asTuple() {
      return new scala.Tuple3<>(identifier, info, builder);
    }
  }

  @FunctionalInterface
  interface Builder {
    Expression build(String name, List<Expression> args);
  }

  private static final List<Definition> DEFINITIONS = Collections.unmodifiableList(Arrays.asList(
      new Definition(
          MINHASH,
          "_FUNC_(text[, char_ngrams[, num_hashes[, seed[, use_64_bit_hash]]]]) - MinHash "
              + "signature of text over shingles of char_ngrams Unicode code points, "
              + "bit-identical to NeMo Curator / cuDF minhash: ARRAY<INT> of uint32 bit patterns, "
              + "or ARRAY<BIGINT> when use_64_bit_hash is true. NULL for a text without shingles: "
              + "NULL, empty, or bytes that are not UTF-8 and start no shingle.",
          "\n    Arguments:\n"
              + "      * text - STRING column; its stored UTF-8 bytes are hashed, invalid "
              + "sequences included (as cuDF does).\n"
              + "      * char_ngrams - shingle width in code points, >= 2 (default 24).\n"
              + "      * num_hashes - signature length (default 260).\n"
              + "      * seed - numpy RandomState seed of the permutations, 0..4294967295 "
              + "(default 42).\n"
              + "      * use_64_bit_hash - constant BOOLEAN (default false).\n",
          "\n    Examples:\n"
              + "      > SELECT slice(_FUNC_('The quick brown fox'), 1, 2);\n"
              + "      > SELECT _FUNC_(text, 24, 260, 42, true) FROM docs;\n"
              + "      > SELECT _FUNC_(text, seed => 7, use_64_bit_hash => true) FROM docs;\n",
          SparkDedupFunctions::buildMinhash),
      new Definition(
          BAND_BUCKET,
          "_FUNC_(band, signature, minhashes_per_band) - LSH bucket key of one band of a MinHash "
              + "signature: xxhash64(CAST(band AS INT), slice(signature, band * "
              + "minhashes_per_band + 1, minhashes_per_band)). NULL for a NULL signature.",
          "\n    Arguments:\n"
              + "      * band - 0-based band index (INT), with (band + 1) * minhashes_per_band <= "
              + "size(signature).\n"
              + "      * signature - ARRAY<INT> or ARRAY<BIGINT>.\n"
              + "      * minhashes_per_band - values per band, >= 1.\n",
          "\n    Examples:\n"
              + "      > SELECT _FUNC_(0, sparkdedup_minhash(text), 13) FROM docs;\n",
          SparkDedupFunctions::buildBandBucket),
      new Definition(
          BAND_BUCKETS,
          "_FUNC_(signature, num_bands, minhashes_per_band) - the bucket keys of bands 0 .. "
              + "num_bands - 1 (see sparkdedup_band_bucket) as ARRAY<BIGINT>, for posexplode. "
              + "NULL for a NULL signature.",
          "\n    Arguments:\n"
              + "      * signature - ARRAY<INT> or ARRAY<BIGINT>.\n"
              + "      * num_bands - number of bands, num_bands * minhashes_per_band <= size.\n"
              + "      * minhashes_per_band - values per band, >= 1.\n",
          "\n    Examples:\n"
              + "      > SELECT posexplode(_FUNC_(sparkdedup_minhash(text), 20, 13)) FROM docs;\n",
          SparkDedupFunctions::buildBandBuckets)));

  /** The definitions of every sparkdedup SQL function. */
  public static List<Definition> definitions() {
    return DEFINITIONS;
  }

  /** Names of every sparkdedup SQL function. */
  public static String[] names() {
    String[] out = new String[DEFINITIONS.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = DEFINITIONS.get(i).identifier.funcName();
    }
    return out;
  }

  /**
   * Registers every sparkdedup SQL function as a temporary function of {@code spark} (replacing
   * earlier registrations) and returns their names.
   *
   * @throws IllegalArgumentException for a Spark Connect session, which has no registry here
   */
  public static String[] register(SparkSession spark) {
    if (!(spark instanceof org.apache.spark.sql.classic.SparkSession)) {
      throw new IllegalArgumentException(
          "sparkdedup SQL functions can only be registered in a classic SparkSession, got "
              + spark.getClass().getName() + "; on Spark Connect start the server with the "
              + "sparkdedup jar in --jars (its session extension registers them)");
    }
    FunctionRegistry registry =
        ((org.apache.spark.sql.classic.SparkSession) spark).sessionState().functionRegistry();
    for (Definition d : DEFINITIONS) {
      // Temporary functions live in the system.session namespace (Spark 4). The names are
      // written out: CatalogManager's constants are compiled differently across 4.x (a call
      // to them from a jar built on 4.3 fails on 4.0 with IncompatibleClassChangeError).
      FunctionIdentifier temp = new FunctionIdentifier(d.identifier.funcName(),
          scala.Option.apply(SESSION_NAMESPACE), scala.Option.apply(SYSTEM_CATALOG));
      registry.registerFunction(temp, d.info, d.builder);
    }
    return names();
  }

  /**
   * The permutation parameters {@code [a_0, b_0, a_1, b_1, ...]} (unsigned values) that the
   * functions use for (numHashes, seed, mode); lets Python compare them with numpy.
   */
  public static long[] permutationParams(int numHashes, long seed, boolean use64BitHash) {
    return io.sparkdedup.PermutationParams.of(numHashes, seed, use64BitHash).interleaved();
  }

  // ---------------------------------------------------------------- builders (analysis time)

  private static IllegalArgumentException error(String name, String message) {
    return new IllegalArgumentException(name + ": " + message);
  }

  /**
   * The arguments of a call in parameter order: positional ones first, then named ones ({@code
   * name => value}, which Spark hands over as written) at their parameter's place, matched
   * without regard to case. A parameter given neither way is null in the result; the first
   * {@code required} parameters must be given.
   */
  static Expression[] byParameter(String name, List<Expression> args, String[] params,
      int required, String signature) {
    int n = args.size();
    if (n < required || n > params.length) {
      String count = required == params.length
          ? Integer.toString(required) : required + " to " + params.length;
      throw error(name, "takes " + count + " arguments " + signature + ", got " + n);
    }
    Expression[] out = new Expression[params.length];
    boolean named = false;
    for (int i = 0; i < n; i++) {
      Expression e = args.get(i);
      if (!(e instanceof NamedArgumentExpression)) {
        if (named) {
          throw error(name, "a positional argument cannot follow a named one " + signature);
        }
        out[i] = e;
        continue;
      }
      named = true;
      NamedArgumentExpression arg = (NamedArgumentExpression) e;
      int p = Arrays.asList(params).indexOf(arg.key().toLowerCase(Locale.ROOT));
      if (p < 0) {
        throw error(name, "has no parameter named '" + arg.key() + "'; its parameters are "
            + signature);
      }
      if (out[p] != null) {
        throw error(name, "parameter '" + params[p] + "' is given twice");
      }
      out[p] = arg.value();
    }
    for (int i = 0; i < required; i++) {
      if (out[i] == null) {
        throw error(name, "parameter '" + params[i] + "' is required " + signature);
      }
    }
    return out;
  }

  private static Expression orDefault(Expression e, Expression otherwise) {
    return e != null ? e : otherwise;
  }

  private static boolean isIntegral(DataType t) {
    return t instanceof IntegerType || t instanceof LongType || t instanceof ShortType
        || t instanceof ByteType || t instanceof NullType;
  }

  private static void checkIntegral(String name, String arg, Expression e) {
    if (!isIntegral(e.dataType())) {
      throw error(name, arg + " must be an integer (TINYINT, SMALLINT, INT or BIGINT), got "
          + e.dataType().sql());
    }
  }

  /** The value of a constant argument (null when not constant). */
  private static Object constant(Expression e) {
    return e.foldable() ? e.eval(null) : null;
  }

  /** Checks a constant integer argument against [min, max] at analysis time. */
  private static void checkRange(String name, String arg, Expression e, long min, long max) {
    Object v = constant(e);
    if (v instanceof Number) {
      long x = ((Number) v).longValue();
      if (x < min || x > max) {
        throw error(name, arg + " must be between " + min + " and " + max + ", got " + x);
      }
    }
  }

  private static Expression scalaUdf(SparkUserDefinedFunction udf, Expression... children) {
    Seq<Expression> seq = CollectionConverters.asScala(Arrays.asList(children)).toList();
    return UserDefinedFunctionUtils.toScalaUDF(udf, seq);
  }

  static Expression buildMinhash(String name, List<Expression> args) {
    Expression[] given = byParameter(name, args,
        new String[] {"text", "char_ngrams", "num_hashes", "seed", "use_64_bit_hash"}, 1,
        "(text[, char_ngrams[, num_hashes[, seed[, use_64_bit_hash]]]])");
    Expression text = given[0];
    DataType textType = text.dataType();
    if (!(textType instanceof StringType || textType instanceof NullType)) {
      throw error(name, "text must be a STRING, got " + textType.sql());
    }
    Expression ngrams =
        orDefault(given[1], new Literal(DEFAULT_CHAR_NGRAMS, DataTypes.IntegerType));
    Expression numHashes =
        orDefault(given[2], new Literal(DEFAULT_NUM_HASHES, DataTypes.IntegerType));
    Expression seed = orDefault(given[3], new Literal(DEFAULT_SEED, DataTypes.LongType));
    checkIntegral(name, "char_ngrams", ngrams);
    checkIntegral(name, "num_hashes", numHashes);
    checkIntegral(name, "seed", seed);
    checkRange(name, "char_ngrams", ngrams, 2, Integer.MAX_VALUE);
    checkRange(name, "num_hashes", numHashes, 1, Integer.MAX_VALUE);
    checkRange(name, "seed", seed, 0, 0xffffffffL);
    boolean use64 = false;
    if (given[4] != null) {
      Expression flag = given[4];
      if (!(flag.dataType() instanceof BooleanType) || !flag.foldable()) {
        throw error(name, "use_64_bit_hash must be a constant BOOLEAN (it decides the result "
            + "type: ARRAY<INT> or ARRAY<BIGINT>), got " + flag.sql());
      }
      Object v = flag.eval(null);
      if (v == null) {
        throw error(name, "use_64_bit_hash must be TRUE or FALSE, got NULL");
      }
      use64 = (Boolean) v;
    }
    // The UDF reads the string's stored UTF-8 bytes (a cast to BINARY copies them unchanged):
    // as a Java String, invalid UTF-8 would become U+FFFD and hash unlike cuDF and Python.
    Expression utf8 = new Cast(text, DataTypes.BinaryType, scala.Option.empty());
    return scalaUdf(use64 ? MINHASH64_UDF : MINHASH32_UDF, utf8, ngrams, numHashes, seed);
  }

  private static void checkSignature(String name, Expression signature) {
    DataType t = signature.dataType();
    boolean ok = t instanceof NullType
        || (t instanceof ArrayType
            && (((ArrayType) t).elementType() instanceof IntegerType
                || ((ArrayType) t).elementType() instanceof LongType));
    if (!ok) {
      throw error(name, "signature must be an ARRAY<INT> or ARRAY<BIGINT>, got " + t.sql());
    }
  }

  static Expression buildBandBucket(String name, List<Expression> args) {
    Expression[] a = byParameter(name, args,
        new String[] {"band", "signature", "minhashes_per_band"}, 3,
        "(band, signature, minhashes_per_band)");
    checkIntegral(name, "band", a[0]);
    checkSignature(name, a[1]);
    checkIntegral(name, "minhashes_per_band", a[2]);
    checkRange(name, "band", a[0], 0, Integer.MAX_VALUE);
    checkRange(name, "minhashes_per_band", a[2], 1, Integer.MAX_VALUE);
    return scalaUdf(BAND_BUCKET_UDF, a[0], a[1], a[2]);
  }

  static Expression buildBandBuckets(String name, List<Expression> args) {
    Expression[] a = byParameter(name, args,
        new String[] {"signature", "num_bands", "minhashes_per_band"}, 3,
        "(signature, num_bands, minhashes_per_band)");
    checkSignature(name, a[0]);
    checkIntegral(name, "num_bands", a[1]);
    checkIntegral(name, "minhashes_per_band", a[2]);
    checkRange(name, "num_bands", a[1], 1, Integer.MAX_VALUE);
    checkRange(name, "minhashes_per_band", a[2], 1, Integer.MAX_VALUE);
    return scalaUdf(BAND_BUCKETS_UDF, a[0], a[1], a[2]);
  }
}

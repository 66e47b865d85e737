/*
 * Permutation parameters of the fuzzy-dedup MinHash step (shared/reference/ALGORITHMS.md,
 * "Permutation parameters"), exactly as NeMo Curator draws them with numpy, cached per
 * (num_hashes, seed, mode) because every row of a Spark task asks for the same ones.
 */
package io.sparkdedup;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The a/b parameters of the MinHash permutations {@code (h * a + b)} and the MurmurHash seed.
 *
 * <p>{@code gen = numpy.random.RandomState(seed)}; per permutation, interleaved, {@code a =
 * gen.randint(1, P)} then {@code b = gen.randint(0, P)} with P = 2^31 - 1 (uint32) in 32-bit mode
 * and P = 2^61 - 1 (uint64) in 64-bit mode. The MurmurHash seed is {@code a[0]}.
 */
public final class PermutationParams {
  /** 2^31 - 1, the bound of the 32-bit parameters. */
  public static final long MERSENNE_31 = (1L << 31) - 1;
  /** 2^61 - 1, the bound of the 64-bit parameters and the modulus of the 64-bit permutations. */
  public static final long MERSENNE_61 = (1L << 61) - 1;

  private static final int CACHE_LIMIT = 64;
  private static final Map<Key, PermutationParams> CACHE = new ConcurrentHashMap<>();

  /** Number of permutations (signature length). */
  public final int numHashes;
  /** The seed of numpy's RandomState, in [0, 2^32 - 1]. */
  public final long seed;
  /** Whether these are the 64-bit parameters. */
  public final boolean use64BitHash;
  /** 32-bit mode: a and b as uint32 bit patterns; null in 64-bit mode. */
  public final int[] a32;
  /** 32-bit mode: see {@link #a32}. */
  public final int[] b32;
  /** 64-bit mode: a and b (all below 2^61); null in 32-bit mode. */
  public final long[] a64;
  /** 64-bit mode: see {@link #a64}. */
  public final long[] b64;

  private PermutationParams(int numHashes, long seed, boolean use64BitHash) {
    this.numHashes = numHashes;
    this.seed = seed;
    this.use64BitHash = use64BitHash;
    NumpyRandomState gen = new NumpyRandomState(seed);
    if (use64BitHash) {
      a32 = null;
      b32 = null;
      a64 = new long[numHashes];
      b64 = new long[numHashes];
      for (int i = 0; i < numHashes; i++) {
        a64[i] = gen.randintUint64(1, MERSENNE_61);
        b64[i] = gen.randintUint64(0, MERSENNE_61);
      }
    } else {
      a64 = null;
      b64 = null;
      a32 = new int[numHashes];
      b32 = new int[numHashes];
      for (int i = 0; i < numHashes; i++) {
        a32[i] = gen.randintUint32(1, MERSENNE_31);
        b32[i] = gen.randintUint32(0, MERSENNE_31);
      }
    }
  }

  /**
   * The (cached) parameters for {@code numHashes} permutations drawn from {@code seed}.
   *
   * @param numHashes number of permutations, >= 1
   * @param seed numpy RandomState seed, in [0, 2^32 - 1]
   * @param use64BitHash 64-bit parameters (uint64 below 2^61 - 1) instead of 32-bit ones
   * @throws IllegalArgumentException when numHashes or seed is out of range
   */
  public static PermutationParams of(int numHashes, long seed, boolean use64BitHash) {
    if (numHashes < 1) {
      throw new IllegalArgumentException("num_hashes must be >= 1, got " + numHashes);
    }
    if (seed < 0 || seed > 0xffffffffL) {
      throw new IllegalArgumentException(
          "seed must be between 0 and 4294967295 (2^32 - 1), got " + seed);
    }
    Key key = new Key(numHashes, seed, use64BitHash);
    PermutationParams params = CACHE.get(key);
    if (params == null) {
      if (CACHE.size() >= CACHE_LIMIT) {
        CACHE.clear();
      }
      params = CACHE.computeIfAbsent(
          key, k -> new PermutationParams(numHashes, seed, use64BitHash));
    }
    return params;
  }

  /** The MurmurHash3 seed: a[0] (as uint32 bit pattern in 32-bit mode). */
  public long murmurSeed() {
    return use64BitHash ? a64[0] : a32[0] & 0xffffffffL;
  }

  /**
   * The parameters as one array {@code [a_0, b_0, a_1, b_1, ...]} of unsigned values, for callers
   * (such as Python through py4j) that compare them with numpy.
   */
  public long[] interleaved() {
    long[] out = new long[2 * numHashes];
    for (int i = 0; i < numHashes; i++) {
      out[2 * i] = use64BitHash ? a64[i] : a32[i] & 0xffffffffL;
      out[2 * i + 1] = use64BitHash ? b64[i] : b32[i] & 0xffffffffL;
    }
    return out;
  }

  private static final class Key {
    private final int numHashes;
    private final long seed;
    private final boolean use64BitHash;

    Key(int numHashes, long seed, boolean use64BitHash) {
      this.numHashes = numHashes;
      this.seed = seed;
      this.use64BitHash = use64BitHash;
    }

    @Override
    public boolean equals(Object o) {
      if (!(o instanceof Key)) {
        return false;
      }
      Key k = (Key) o;
      return numHashes == k.numHashes && seed == k.seed && use64BitHash == k.use64BitHash;
    }

    @Override
    public int hashCode() {
      return 31 * (31 * numHashes + Long.hashCode(seed)) + (use64BitHash ? 1 : 0);
    }
  }
}

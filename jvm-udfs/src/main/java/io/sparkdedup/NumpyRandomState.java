/*
 * Permutation parameters of the fuzzy-dedup MinHash step (shared/reference/ALGORITHMS.md,
 * "Permutation parameters"): the subset of numpy.random.RandomState that NeMo Curator uses, so
 * that the JVM draws exactly the a/b values that numpy does for the same seed.
 */
package io.sparkdedup;

/**
 * numpy's legacy {@code RandomState(seed)} for an integer seed: MT19937 seeded with
 * {@code init_genrand} (numpy's {@code mt19937_seed}) and the masked rejection sampling that
 * {@code RandomState.randint} always uses for bounded integers.
 *
 * <p>Not thread-safe; each caller owns its instance.
 */
public final class NumpyRandomState {
  private static final int N = 624;
  private static final int M = 397;
  private static final int MATRIX_A = 0x9908b0df;
  private static final int UPPER_MASK = 0x80000000;
  private static final int LOWER_MASK = 0x7fffffff;

  private final int[] mt = new int[N];
  private int pos;

  /**
   * The state of {@code numpy.random.RandomState(seed)}.
   *
   * @param seed an integer in [0, 2^32 - 1], as numpy requires
   */
  public NumpyRandomState(long seed) {
    if (seed < 0 || seed > 0xffffffffL) {
      throw new IllegalArgumentException(
          "seed must be between 0 and 4294967295 (2^32 - 1), got " + seed);
    }
    mt[0] = (int) seed;
    for (int i = 1; i < N; i++) {
      mt[i] = 1812433253 * (mt[i - 1] ^ (mt[i - 1] >>> 30)) + i;
    }
    pos = N;
  }

  private void regenerate() {
    int kk;
    int y;
    for (kk = 0; kk < N - M; kk++) {
      y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
      mt[kk] = mt[kk + M] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    for (; kk < N - 1; kk++) {
      y = (mt[kk] & UPPER_MASK) | (mt[kk + 1] & LOWER_MASK);
      mt[kk] = mt[kk + (M - N)] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    y = (mt[N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
    mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    pos = 0;
  }

  /** The next 32-bit output of MT19937 (a uint32 bit pattern). */
  public int nextUint32() {
    if (pos >= N) {
      regenerate();
    }
    int y = mt[pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y;
  }

  /** The next 64-bit output as numpy's MT19937 makes it: the first 32-bit draw is the high word. */
  public long nextUint64() {
    long hi = nextUint32() & 0xffffffffL;
    long lo = nextUint32() & 0xffffffffL;
    return (hi << 32) | lo;
  }

  /** The smallest all-ones bit mask that covers {@code max} (numpy's gen_mask). */
  static long mask(long max) {
    long m = max;
    m |= m >>> 1;
    m |= m >>> 2;
    m |= m >>> 4;
    m |= m >>> 8;
    m |= m >>> 16;
    m |= m >>> 32;
    return m;
  }

  /**
   * {@code randint(low, high, dtype=np.uint32)}: a value in [low, high) as a uint32 bit pattern.
   *
   * @param low inclusive lower bound, in [0, 2^32)
   * @param high exclusive upper bound, in (low, 2^32]
   */
  public int randintUint32(long low, long high) {
    if (low < 0 || high > 0x100000000L || high <= low) {
      throw new IllegalArgumentException(
          "randint uint32 bounds must satisfy 0 <= low < high <= 2**32, got low=" + low
              + ", high=" + high);
    }
    long rng = high - 1 - low;
    if (rng == 0) {
      return (int) low;
    }
    if (rng == 0xffffffffL) {
      return (int) (low + (nextUint32() & 0xffffffffL));
    }
    int m = (int) mask(rng);
    long val;
    do {
      val = (nextUint32() & m) & 0xffffffffL;
    } while (val > rng);
    return (int) (low + val);
  }

  /**
   * {@code randint(low, high, dtype=np.uint64)} for bounds below 2^63: a value in [low, high).
   * Ranges that fit in 32 bits draw 32-bit values, wider ones draw 64-bit values (as numpy).
   *
   * @param low inclusive lower bound, >= 0
   * @param high exclusive upper bound, > low
   */
  public long randintUint64(long low, long high) {
    if (low < 0 || high <= low) {
      throw new IllegalArgumentException(
          "randint uint64 bounds must satisfy 0 <= low < high < 2**63, got low=" + low
              + ", high=" + high);
    }
    long rng = high - 1 - low;
    if (rng == 0) {
      return low;
    }
    if (rng <= 0xffffffffL) {
      if (rng == 0xffffffffL) {
        return low + (nextUint32() & 0xffffffffL);
      }
      int m = (int) mask(rng);
      long val;
      do {
        val = (nextUint32() & m) & 0xffffffffL;
      } while (val > rng);
      return low + val;
    }
    long m = mask(rng);
    long val;
    do {
      val = nextUint64() & m;
    } while (val > rng);
    return low + val;
  }
}

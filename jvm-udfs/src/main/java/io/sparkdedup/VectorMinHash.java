/*
 * Steps 4-5 of the MinHash signature (shared/reference/ALGORITHMS.md): permute every shingle
 * hash with (h * a + b) mod 2^32, or ((h * a + b) mod 2^64) mod (2^61 - 1), and keep the
 * unsigned minimum per permutation, with the JDK Vector API. Only loaded when
 * VectorSupport.AVAILABLE is true.
 */
package io.sparkdedup;

import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Vectorised permutation-minimum of the 32-bit and 64-bit MinHash. */
final class VectorMinHash {
  private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Long> LONGS = LongVector.SPECIES_PREFERRED;
  private static final long M61 = PermutationParams.MERSENNE_61;

  private VectorMinHash() {}

  static int intLanes() {
    return INTS.length();
  }

  /**
   * {@code min over hashes h of (h * a[i] + b[i]) mod 2^32}, unsigned, for every i; the same
   * values as {@link MinHash#permutedMin32}. Permutations are the outer loop: one vector of
   * permutations keeps its running minimum in a register over all hashes of the document.
   */
  static int[] permutedMin32(int[] hashes, int[] a, int[] b) {
    int k = a.length;
    int[] out = new int[k];
    int lanes = INTS.length();
    int i = 0;
    for (; i + lanes <= k; i += lanes) {
      IntVector av = IntVector.fromArray(INTS, a, i);
      IntVector bv = IntVector.fromArray(INTS, b, i);
      // Unsigned order is signed order of the values with the sign bit flipped; b is flipped
      // once here instead of every sum: (h*a + b) ^ MIN = h*a + (b ^ MIN) mod 2^32.
      IntVector bFlipped = bv.lanewise(VectorOperators.XOR, Integer.MIN_VALUE);
      IntVector min = IntVector.broadcast(INTS, Integer.MAX_VALUE);
      for (int h : hashes) {
        min = min.min(av.mul(h).add(bFlipped));
      }
      min.lanewise(VectorOperators.XOR, Integer.MIN_VALUE).intoArray(out, i);
    }
    for (; i < k; i++) {
      int ai = a[i];
      int bFlipped = b[i] ^ Integer.MIN_VALUE;
      int min = Integer.MAX_VALUE;
      for (int h : hashes) {
        min = Math.min(min, h * ai + bFlipped);
      }
      out[i] = min ^ Integer.MIN_VALUE;
    }
    return out;
  }

  /**
   * {@code min over hashes h of ((h * a[i] + b[i]) mod 2^64) mod (2^61 - 1)} for every i; the
   * same values as {@link MinHash#permutedMin64} (all below 2^61, so signed order is right).
   */
  static long[] permutedMin64(long[] hashes, long[] a, long[] b) {
    int k = a.length;
    long[] out = new long[k];
    int lanes = LONGS.length();
    int i = 0;
    for (; i + lanes <= k; i += lanes) {
      LongVector av = LongVector.fromArray(LONGS, a, i);
      LongVector bv = LongVector.fromArray(LONGS, b, i);
      LongVector min = LongVector.broadcast(LONGS, Long.MAX_VALUE);
      for (long h : hashes) {
        LongVector x = av.mul(h).add(bv);
        // x mod (2^61 - 1) as in MinHash.mod61: fold the top 3 bits in, subtract M once when
        // the sum reaches M (t < 0 adds M back).
        LongVector t = x.and(M61).add(x.lanewise(VectorOperators.LSHR, 61)).sub(M61);
        t = t.add(t.lanewise(VectorOperators.ASHR, 63).and(M61));
        min = min.min(t);
      }
      min.intoArray(out, i);
    }
    for (; i < k; i++) {
      long min = Long.MAX_VALUE;
      for (long h : hashes) {
        min = Math.min(min, MinHash.mod61(h * a[i] + b[i]));
      }
      out[i] = min;
    }
    return out;
  }
}

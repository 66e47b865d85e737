/* Permutation parameters (ALGORITHMS.md) against numpy.random.RandomState(42) via test vectors. */
package io.sparkdedup;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertSame;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.Test;

public class NumpyRandomStateTest {
  private final JsonNode v = TestVectors.get().get("curator_default_params");

  @Test
  public void mt19937MatchesReferenceOutput() {
    // First outputs of numpy.random.RandomState(5489).randint(0, 2**32, dtype=np.uint32, ...),
    // i.e. the reference MT19937 default seed (mt19937ar.c: 3499211612 581869302 ...).
    NumpyRandomState rs = new NumpyRandomState(5489);
    assertEquals(3499211612L, rs.nextUint32() & 0xffffffffL);
    assertEquals(581869302L, rs.nextUint32() & 0xffffffffL);
    assertEquals(3890346734L, rs.nextUint32() & 0xffffffffL);
  }

  @Test
  public void params32MatchCuratorDefaults() {
    PermutationParams p =
        PermutationParams.of(v.get("num_hashes").asInt(), v.get("seed").asLong(), false);
    int[] a3 = TestVectors.uint32Array(v.get("a32_first3"));
    int[] b3 = TestVectors.uint32Array(v.get("b32_first3"));
    for (int i = 0; i < 3; i++) {
      assertEquals(a3[i], p.a32[i]);
      assertEquals(b3[i], p.b32[i]);
    }
    long sa = 0;
    long sb = 0;
    for (int i = 0; i < p.numHashes; i++) {
      sa += p.a32[i] & 0xffffffffL;
      sb += p.b32[i] & 0xffffffffL;
    }
    assertEquals(v.get("a32_sum").asLong(), sa);
    assertEquals(v.get("b32_sum").asLong(), sb);
    assertEquals(v.get("murmur_seed_32").asLong(), p.murmurSeed());
  }

  @Test
  public void params64MatchCuratorDefaults() {
    PermutationParams p =
        PermutationParams.of(v.get("num_hashes").asInt(), v.get("seed").asLong(), true);
    assertArrayEquals(TestVectors.uint64Array(v.get("a64_first1")), new long[] {p.a64[0]});
    assertArrayEquals(TestVectors.uint64Array(v.get("b64_first1")), new long[] {p.b64[0]});
    assertEquals(v.get("murmur_seed_64").asLong(), p.murmurSeed());
    for (int i = 0; i < p.numHashes; i++) {
      assertEquals(true, p.a64[i] >= 1 && p.a64[i] < PermutationParams.MERSENNE_61);
      assertEquals(true, p.b64[i] >= 0 && p.b64[i] < PermutationParams.MERSENNE_61);
    }
  }

  @Test
  public void paramsAreCachedAndPrefixStable() {
    assertSame(PermutationParams.of(260, 42, false), PermutationParams.of(260, 42, false));
    // The first permutations of a longer draw are the shorter draw (interleaved a/b stream).
    PermutationParams small = PermutationParams.of(3, 42, false);
    PermutationParams big = PermutationParams.of(260, 42, false);
    for (int i = 0; i < 3; i++) {
      assertEquals(small.a32[i], big.a32[i]);
      assertEquals(small.b32[i], big.b32[i]);
    }
  }

  @Test
  public void maskIsNextPowerOfTwoMinusOne() {
    assertEquals(0x7fffffffL, NumpyRandomState.mask((1L << 31) - 3));
    assertEquals((1L << 61) - 1, NumpyRandomState.mask((1L << 61) - 2));
    assertEquals(1L, NumpyRandomState.mask(1));
    assertEquals(7L, NumpyRandomState.mask(4));
  }

  @Test(expected = IllegalArgumentException.class)
  public void seedOutOfRangeFails() {
    new NumpyRandomState(1L << 32);
  }
}

/* MurmurHash3 of the MinHash step (ALGORITHMS.md, step 2) against published vectors. */
package io.sparkdedup;

import static org.junit.Assert.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import org.junit.Test;

public class MurmurHash3Test {
  private static int h32(String s, int seed) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    return MurmurHash3.hash32(b, 0, b.length, seed);
  }

  @Test
  public void x86_32MatchesSmhasherVectors() {
    assertEquals(0, h32("", 0));
    assertEquals(0x514e28b7, h32("", 1));
    assertEquals(0x81f16f39, h32("", 0xffffffff));
    assertEquals(0x2362f9de, MurmurHash3.hash32(new byte[4], 0, 4, 0));
    assertEquals(0x5a97808a, h32("aaaa", 0x9747b28c));
    assertEquals(0x24884cba, h32("Hello, world!", 0x9747b28c));
    assertEquals(0x2fa826cd, h32("The quick brown fox jumps over the lazy dog", 0x9747b28c));
  }

  @Test
  public void x64_128MatchesSmhasherForSmallSeed() {
    byte[] b = "hello".getBytes(StandardCharsets.UTF_8);
    // mmh3.hash64("hello", 0)[0] = -3758069500696749310
    assertEquals(-3758069500696749310L, MurmurHash3.hash64(b, 0, b.length, 0));
  }

  @Test
  public void x86_32MatchesSparkStandardImplementationOnEveryTailLength() {
    Random rnd = new Random(7);
    for (int len = 0; len < 70; len++) {
      byte[] b = new byte[len];
      rnd.nextBytes(b);
      int seed = rnd.nextInt();
      int expected = org.apache.spark.unsafe.hash.Murmur3_x86_32.hashUnsafeBytes2(
          b, org.apache.spark.unsafe.Platform.BYTE_ARRAY_OFFSET, len, seed);
      assertEquals("length " + len, expected, MurmurHash3.hash32(b, 0, len, seed));
    }
  }

  @Test
  public void sliceHashEqualsHashOfCopy() {
    Random rnd = new Random(11);
    byte[] b = new byte[200];
    rnd.nextBytes(b);
    for (int off = 0; off < 20; off++) {
      for (int len = 0; len < 40; len++) {
        byte[] copy = Arrays.copyOfRange(b, off, off + len);
        assertEquals(MurmurHash3.hash32(copy, 0, len, 99), MurmurHash3.hash32(b, off, len, 99));
        assertEquals(MurmurHash3.hash64(copy, 0, len, -5L), MurmurHash3.hash64(b, off, len, -5L));
      }
    }
  }
}

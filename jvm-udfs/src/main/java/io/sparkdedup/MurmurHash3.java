/*
 * Shingle hashing of the fuzzy-dedup MinHash step (shared/reference/ALGORITHMS.md, "Signature of
 * one document", step 2): standard MurmurHash3_x86_32, and MurmurHash3_x64_128 in the variant of
 * NVIDIA cuco that loads the full 64-bit seed into both h1 and h2 and keeps h1.
 */
package io.sparkdedup;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/** MurmurHash3 over a slice of a byte array (little-endian blocks, unsigned tail bytes). */
public final class MurmurHash3 {
  private static final VarHandle INT_LE =
      MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle LONG_LE =
      MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

  private static final int C1_32 = 0xcc9e2d51;
  private static final int C2_32 = 0x1b873593;
  private static final long C1_64 = 0x87c37b91114253d5L;
  private static final long C2_64 = 0x4cf5ad432745937fL;

  private MurmurHash3() {}

  /** MurmurHash3_x86_32 of {@code data[off, off+len)}; the result is a uint32 bit pattern. */
  @SuppressWarnings("fallthrough")
  public static int hash32(byte[] data, int off, int len, int seed) {
    int h = seed;
    int end = off + (len & ~3);
    for (int i = off; i < end; i += 4) {
      int k = (int) INT_LE.get(data, i);
      k *= C1_32;
      k = Integer.rotateLeft(k, 15);
      k *= C2_32;
      h ^= k;
      h = Integer.rotateLeft(h, 13);
      h = h * 5 + 0xe6546b64;
    }
    int k = 0;
    switch (len & 3) {
      case 3:
        k ^= (data[end + 2] & 0xff) << 16;
        // fall through
      case 2:
        k ^= (data[end + 1] & 0xff) << 8;
        // fall through
      case 1:
        k ^= data[end] & 0xff;
        k *= C1_32;
        k = Integer.rotateLeft(k, 15);
        k *= C2_32;
        h ^= k;
        break;
      default:
        break;
    }
    h ^= len;
    return fmix32(h);
  }

  /**
   * First 64-bit word (h1) of MurmurHash3_x64_128 of {@code data[off, off+len)} with the full
   * 64-bit {@code seed} in h1 and h2 (cuco's variant; for seeds below 2^32 it equals smhasher's).
   */
  public static long hash64(byte[] data, int off, int len, long seed) {
    long h1 = seed;
    long h2 = seed;
    int end = off + (len & ~15);
    for (int i = off; i < end; i += 16) {
      long k1 = (long) LONG_LE.get(data, i);
      long k2 = (long) LONG_LE.get(data, i + 8);
      k1 *= C1_64;
      k1 = Long.rotateLeft(k1, 31);
      k1 *= C2_64;
      h1 ^= k1;
      h1 = Long.rotateLeft(h1, 27);
      h1 += h2;
      h1 = h1 * 5 + 0x52dce729;
      k2 *= C2_64;
      k2 = Long.rotateLeft(k2, 33);
      k2 *= C1_64;
      h2 ^= k2;
      h2 = Long.rotateLeft(h2, 31);
      h2 += h1;
      h2 = h2 * 5 + 0x38495ab5;
    }
    int tail = len & 15;
    if (tail > 8) {
      long k2 = 0;
      for (int i = tail - 1; i >= 8; i--) {
        k2 = (k2 << 8) | (data[end + i] & 0xffL);
      }
      k2 *= C2_64;
      k2 = Long.rotateLeft(k2, 33);
      k2 *= C1_64;
      h2 ^= k2;
    }
    if (tail > 0) {
      long k1 = 0;
      for (int i = Math.min(tail, 8) - 1; i >= 0; i--) {
        k1 = (k1 << 8) | (data[end + i] & 0xffL);
      }
      k1 *= C1_64;
      k1 = Long.rotateLeft(k1, 31);
      k1 *= C2_64;
      h1 ^= k1;
    }
    h1 ^= len;
    h2 ^= len;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    return h1 + h2;
  }

  private static int fmix32(int h) {
    h ^= h >>> 16;
    h *= 0x85ebca6b;
    h ^= h >>> 13;
    h *= 0xc2b2ae35;
    h ^= h >>> 16;
    return h;
  }

  private static long fmix64(long k) {
    k ^= k >>> 33;
    k *= 0xff51afd7ed558ccdL;
    k ^= k >>> 33;
    k *= 0xc4ceb9fe1a85ec53L;
    k ^= k >>> 33;
    return k;
  }
}

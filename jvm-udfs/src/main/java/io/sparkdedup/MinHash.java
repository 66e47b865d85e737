/*
 * Fuzzy dedup step 1 on the JVM: the MinHash signature of one document, bit-identical to cuDF's
 * nvtext minhash/minhash64 (the kernel NeMo Curator calls) and to sparkdedup's Python kernels.
 * shared/reference/ALGORITHMS.md, "Signature of one document", specifies every step.
 *
 * The signatures are functions of the text's UTF-8 bytes as stored (the *Utf8 methods), so that
 * a Spark string holding invalid UTF-8 (CAST of BINARY, files with bad bytes) hashes exactly as
 * in the Python and CUDA kernels: every byte that is not a continuation byte (10xxxxxx) starts a
 * code point, and the bytes are hashed unchanged (cuDF agrees on valid UTF-8; on other bytes it
 * differs, and sparkdedup's GPU path does not give it such a batch). The SQL functions hand over those bytes
 * (Udfs). The String methods encode a Java string first, which cannot carry invalid sequences.
 */
package io.sparkdedup;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** MinHash signatures of texts over shingles of Unicode code points. */
public final class MinHash {
  private MinHash() {}

  /**
   * Byte offsets of the code points of a UTF-8 array: entry i is where code point i starts, and
   * the last entry is the array length. Continuation bytes (10xxxxxx) start no code point, so a
   * 4-byte character (a surrogate pair in the Java string) counts as one code point.
   */
  static int[] codePointOffsets(byte[] utf8) {
    int n = 0;
    for (byte b : utf8) {
      if ((b & 0xc0) != 0x80) {
        n++;
      }
    }
    int[] offsets = new int[n + 1];
    int j = 0;
    for (int i = 0; i < utf8.length; i++) {
      if ((utf8[i] & 0xc0) != 0x80) {
        offsets[j++] = i;
      }
    }
    offsets[n] = utf8.length;
    return offsets;
  }

  /**
   * UTF-8 bytes of a string. Surrogate pairs become one 4-byte character; an unpaired surrogate
   * (which no string read from Spark or Arrow can hold) becomes '?', as Spark's own conversion of
   * a Java string to UTF-8 does.
   */
  static byte[] utf8(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  private static void checkWidth(int width) {
    if (width < 2) {
      throw new IllegalArgumentException("char_ngrams must be >= 2 (as cuDF), got " + width);
    }
  }

  /**
   * 32-bit signature: {@code sig[i] = min over shingles of (max(h, 1) * a[i] + b[i]) mod 2^32}
   * compared unsigned, with h the MurmurHash3_x86_32 of the shingle's UTF-8 bytes.
   *
   * @param text the document; null or empty gives null (a document without shingles)
   * @param width shingle width in code points; a shorter non-empty text is one shingle
   * @param a permutation multipliers (uint32 bit patterns)
   * @param b permutation offsets (uint32 bit patterns), same length as a
   * @param murmurSeed MurmurHash3 seed (uint32 bit pattern)
   * @return the signature as uint32 bit patterns, or null
   */
  public static int[] signature32(String text, int width, int[] a, int[] b, int murmurSeed) {
    return signature32Utf8(text == null ? null : utf8(text), width, a, b, murmurSeed);
  }

  /**
   * {@link #signature32(String, int, int[], int[], int)} of a text given as UTF-8 bytes, which
   * are hashed as they are, valid UTF-8 or not.
   *
   * @param utf8 the document's bytes; null, empty, or starting no shingle gives null
   */
  public static int[] signature32Utf8(byte[] utf8, int width, int[] a, int[] b, int murmurSeed) {
    checkWidth(width);
    if (utf8 == null || utf8.length == 0) {
      return null;
    }
    int[] hashes = shingleHashes32(utf8, width, murmurSeed);
    if (hashes.length == 0) {
      return null; // bytes that are not UTF-8 and start no shingle: see numShingles
    }
    return VectorSupport.AVAILABLE
        ? VectorMinHash.permutedMin32(hashes, a, b)
        : permutedMin32(hashes, a, b);
  }

  /**
   * 64-bit signature: {@code sig[i] = min over shingles of ((max(h, 1) * a[i] + b[i]) mod 2^64)
   * mod (2^61 - 1)}, with h the first word of cuco's MurmurHash3_x64_128 of the shingle's UTF-8
   * bytes. Every value is below 2^61, so signed and unsigned order agree.
   *
   * @param text the document; null or empty gives null (a document without shingles)
   * @param width shingle width in code points; a shorter non-empty text is one shingle
   * @param a permutation multipliers
   * @param b permutation offsets, same length as a
   * @param murmurSeed MurmurHash3 seed (full 64 bits)
   * @return the signature, or null
   */
  public static long[] signature64(String text, int width, long[] a, long[] b, long murmurSeed) {
    return signature64Utf8(text == null ? null : utf8(text), width, a, b, murmurSeed);
  }

  /**
   * {@link #signature64(String, int, long[], long[], long)} of a text given as UTF-8 bytes, which
   * are hashed as they are, valid UTF-8 or not.
   *
   * @param utf8 the document's bytes; null, empty, or starting no shingle gives null
   */
  public static long[] signature64Utf8(
      byte[] utf8, int width, long[] a, long[] b, long murmurSeed) {
    checkWidth(width);
    if (utf8 == null || utf8.length == 0) {
      return null;
    }
    long[] hashes = shingleHashes64(utf8, width, murmurSeed);
    if (hashes.length == 0) {
      return null; // bytes that are not UTF-8 and start no shingle: see numShingles
    }
    return VectorSupport.AVAILABLE
        ? VectorMinHash.permutedMin64(hashes, a, b)
        : permutedMin64(hashes, a, b);
  }

  /**
   * Number of shingles of a non-empty text of n code points: one when it is shorter than width,
   * as in cuDF only if its first byte starts a code point (bytes that are not UTF-8 may begin
   * with continuation bytes, or hold nothing else: no shingle then, and a null signature, as
   * for an empty text: cuDF's all-max row would be one signature shared by all such texts).
   */
  private static int numShingles(byte[] utf8, int n, int width) {
    if (n >= width) {
      return n - width + 1;
    }
    return n > 0 && (utf8[0] & 0xc0) != 0x80 ? 1 : 0;
  }

  /** {@code max(h, 1)} of the MurmurHash3_x86_32 of every shingle of a non-empty UTF-8 text. */
  static int[] shingleHashes32(byte[] utf8, int width, int murmurSeed) {
    int[] offsets = codePointOffsets(utf8);
    int n = offsets.length - 1;
    int span = Math.min(width, n);
    int[] hashes = new int[numShingles(utf8, n, width)];
    for (int s = 0; s < hashes.length; s++) {
      int start = offsets[s];
      int h = MurmurHash3.hash32(utf8, start, offsets[s + span] - start, murmurSeed);
      hashes[s] = h == 0 ? 1 : h;
    }
    return hashes;
  }

  /** {@code max(h, 1)} of the MurmurHash3_x64_128 h1 of every shingle of a non-empty text. */
  static long[] shingleHashes64(byte[] utf8, int width, long murmurSeed) {
    int[] offsets = codePointOffsets(utf8);
    int n = offsets.length - 1;
    int span = Math.min(width, n);
    long[] hashes = new long[numShingles(utf8, n, width)];
    for (int s = 0; s < hashes.length; s++) {
      int start = offsets[s];
      long h = MurmurHash3.hash64(utf8, start, offsets[s + span] - start, murmurSeed);
      hashes[s] = h == 0 ? 1 : h;
    }
    return hashes;
  }

  /**
   * {@code min over hashes h of (h * a[i] + b[i]) mod 2^32}, unsigned, for every i. Portable
   * version of {@link VectorMinHash#permutedMin32}, used when the Vector API is unavailable.
   */
  static int[] permutedMin32(int[] hashes, int[] a, int[] b) {
    int k = a.length;
    int[] mins = new int[k];
    Arrays.fill(mins, -1);  // the largest uint32
    for (int h : hashes) {
      // The unsigned minimum is written with bit operations only (Hacker's Delight 2-12,
      // x <u y) because C2 vectorises them, but not Math.min (JDK 17): about 4x faster.
      for (int i = 0; i < k; i++) {
        int v = h * a[i] + b[i];
        int m = mins[i];
        int vBelowM = ((~v & m) | (~(v ^ m) & (v - m))) >> 31;  // all ones iff v <u m
        mins[i] = m ^ ((m ^ v) & vBelowM);
      }
    }
    return mins;
  }

  /** {@code min over hashes h of ((h * a[i] + b[i]) mod 2^64) mod (2^61 - 1)} for every i. */
  static long[] permutedMin64(long[] hashes, long[] a, long[] b) {
    int k = a.length;
    long[] mins = new long[k];
    Arrays.fill(mins, Long.MAX_VALUE);
    for (long h : hashes) {
      // Branch-free, as in permutedMin32, so that C2 vectorises the loop. Every value is below
      // 2^61, so the signed difference d = v - m cannot overflow.
      for (int i = 0; i < k; i++) {
        long v = mod61(h * a[i] + b[i]);
        long m = mins[i];
        long d = v - m;
        mins[i] = m + (d & (d >> 63));
      }
    }
    return mins;
  }

  /**
   * {@code x mod (2^61 - 1)} for x read as an unsigned 64-bit value; equal to
   * {@code Long.remainderUnsigned(x, 2^61 - 1)}. Since 2^61 = 1 (mod 2^61 - 1), x folds to
   * {@code (x & M) + (x >>> 61)}, which is at most M + 7, so subtracting M when that sum is at
   * least M finishes it (done branch-free).
   */
  static long mod61(long x) {
    long t = (x & PermutationParams.MERSENNE_61) + (x >>> 61) - PermutationParams.MERSENNE_61;
    return t + (PermutationParams.MERSENNE_61 & (t >> 63));  // add M back when t < 0
  }

  /** The 32-bit signature with the parameters of (numHashes, seed), as Curator computes it. */
  public static int[] signature32(String text, int width, PermutationParams p) {
    return signature32(text, width, p.a32, p.b32, p.a32[0]);
  }

  /** The 64-bit signature with the parameters of (numHashes, seed), as Curator computes it. */
  public static long[] signature64(String text, int width, PermutationParams p) {
    return signature64(text, width, p.a64, p.b64, p.a64[0]);
  }

  /** The 32-bit signature of UTF-8 bytes (hashed as they are) with (numHashes, seed). */
  public static int[] signature32Utf8(byte[] utf8, int width, PermutationParams p) {
    return signature32Utf8(utf8, width, p.a32, p.b32, p.a32[0]);
  }

  /** The 64-bit signature of UTF-8 bytes (hashed as they are) with (numHashes, seed). */
  public static long[] signature64Utf8(byte[] utf8, int width, PermutationParams p) {
    return signature64Utf8(utf8, width, p.a64, p.b64, p.a64[0]);
  }
}

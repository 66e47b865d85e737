/* MinHash signatures (ALGORITHMS.md, "Signature of one document") against every cuDF vector. */
package io.sparkdedup;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import org.junit.Test;

public class MinHashTest {
  private static final JsonNode V = TestVectors.get();

  private static String[] docs(JsonNode node) {
    String[] out = new String[node.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = node.get(i).asText();
    }
    return out;
  }

  private static void check32(JsonNode c, String[] docs, JsonNode expected) {
    int[] a = TestVectors.uint32Array(c.get("a"));
    int[] b = TestVectors.uint32Array(c.get("b"));
    int seed = (int) c.get("seed").asLong();
    int width = c.get("width").asInt();
    for (int d = 0; d < docs.length; d++) {
      int[] want = TestVectors.uint32Array(expected.get(d));
      assertArrayEquals("doc " + d, want, MinHash.signature32(docs[d], width, a, b, seed));
      // The portable loops too (signature32 takes the Vector API path in this JVM).
      int[] hashes = MinHash.shingleHashes32(MinHash.utf8(docs[d]), width, seed);
      assertArrayEquals("portable, doc " + d, want, MinHash.permutedMin32(hashes, a, b));
    }
  }

  private static void check64(JsonNode c, String[] docs, JsonNode expected) {
    long[] a = TestVectors.uint64Array(c.get("a"));
    long[] b = TestVectors.uint64Array(c.get("b"));
    long seed = c.get("seed").asLong();
    int width = c.get("width").asInt();
    for (int d = 0; d < docs.length; d++) {
      long[] want = TestVectors.uint64Array(expected.get(d));
      assertArrayEquals("doc " + d, want, MinHash.signature64(docs[d], width, a, b, seed));
      long[] hashes = MinHash.shingleHashes64(MinHash.utf8(docs[d]), width, seed);
      assertArrayEquals("portable, doc " + d, want, MinHash.permutedMin64(hashes, a, b));
    }
  }

  @Test
  public void cudfCppPermuted() {
    JsonNode c = V.get("cudf_cpp_permuted");
    check32(c, docs(c.get("docs")), c.get("expected_32"));
    check64(c, docs(c.get("docs")), c.get("expected_64"));
  }

  @Test
  public void cudfPythonDocstrings() {
    JsonNode c32 = V.get("cudf_python_docstring_32");
    check32(c32, docs(c32.get("docs")), c32.get("expected"));
    JsonNode c64 = V.get("cudf_python_docstring_64");
    check64(c64, docs(c64.get("docs")), c64.get("expected"));
  }

  @Test
  public void cudfCppWide() {
    JsonNode c = V.get("cudf_cpp_wide");
    char[] x = new char[2048];
    Arrays.fill(x, 'x');
    char[] y = new char[1048576];
    Arrays.fill(y, 'y');
    String[] docs = {new String(x), new String(y)};
    check32(c, docs, c.get("expected_32"));
    check64(c, docs, c.get("expected_64"));
  }

  @Test
  public void curatorDefaultSampleSignatures() {
    JsonNode c = V.get("curator_default_params");
    String text = c.get("sample_text").asText();
    int width = c.get("char_ngrams").asInt();
    int k = c.get("num_hashes").asInt();
    long seed = c.get("seed").asLong();
    int[] s32 = MinHash.signature32(text, width, PermutationParams.of(k, seed, false));
    assertEquals(k, s32.length);
    assertArrayEquals(TestVectors.uint32Array(c.get("sample_signature_32_first8")),
        Arrays.copyOf(s32, 8));
    long[] s64 = MinHash.signature64(text, width, PermutationParams.of(k, seed, true));
    assertArrayEquals(TestVectors.uint64Array(c.get("sample_signature_64_first4")),
        Arrays.copyOf(s64, 4));
  }

  @Test
  public void nullAndEmptyTextHaveNoSignature() {
    PermutationParams p = PermutationParams.of(4, 1, false);
    assertNull(MinHash.signature32(null, 5, p));
    assertNull(MinHash.signature32("", 5, p));
    PermutationParams q = PermutationParams.of(4, 1, true);
    assertNull(MinHash.signature64(null, 5, q));
    assertNull(MinHash.signature64("", 5, q));
  }

  @Test
  public void bytesThatStartNoShingleHaveNoSignature() {
    PermutationParams p = PermutationParams.of(4, 1, false);
    PermutationParams q = PermutationParams.of(4, 1, true);
    byte[][] none = {{(byte) 0x80, (byte) 0xbf}, {(byte) 0xb0, 'C'}, {(byte) 0xbd, ' ', 'c', 'u'}};
    for (byte[] text : none) {
      assertNull(MinHash.signature32Utf8(text, 5, p));
      assertNull(MinHash.signature64Utf8(text, 5, q));
    }
    byte[] some = {(byte) 0xbd, ' ', 'c', 'u', 'p', 's'}; // five code points: one shingle
    assertEquals(4, MinHash.signature32Utf8(some, 5, p).length);
    assertEquals(4, MinHash.signature64Utf8(some, 5, q).length);
    assertEquals(4, MinHash.signature32Utf8(new byte[] {'C', (byte) 0xb0}, 5, p).length);
  }

  @Test(expected = IllegalArgumentException.class)
  public void widthBelowTwoFails() {
    MinHash.signature32("abc", 1, PermutationParams.of(4, 1, false));
  }

  // ---- an independent, literal implementation over code points, for random Unicode text

  private static String[] shingles(String text, int width) {
    int[] cps = text.codePoints().toArray();
    if (cps.length == 0) {
      return new String[0];
    }
    if (cps.length < width) {
      return new String[] {text};
    }
    String[] out = new String[cps.length - width + 1];
    for (int i = 0; i < out.length; i++) {
      out[i] = new String(cps, i, width);
    }
    return out;
  }

  private static int[] naive32(String text, int width, int[] a, int[] b, int seed) {
    int[] sig = new int[a.length];
    Arrays.fill(sig, -1);
    for (String s : shingles(text, width)) {
      byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
      int h = MurmurHash3.hash32(bytes, 0, bytes.length, seed);
      h = Integer.compareUnsigned(h, 1) < 0 ? 1 : h;
      for (int i = 0; i < a.length; i++) {
        int v = h * a[i] + b[i];
        if (Integer.compareUnsigned(v, sig[i]) < 0) {
          sig[i] = v;
        }
      }
    }
    return sig;
  }

  private static long[] naive64(String text, int width, long[] a, long[] b, long seed) {
    long[] sig = new long[a.length];
    Arrays.fill(sig, -1L);
    for (String s : shingles(text, width)) {
      byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
      long h = MurmurHash3.hash64(bytes, 0, bytes.length, seed);
      h = Long.compareUnsigned(h, 1) < 0 ? 1 : h;
      for (int i = 0; i < a.length; i++) {
        long v = Long.remainderUnsigned(h * a[i] + b[i], PermutationParams.MERSENNE_61);
        if (Long.compareUnsigned(v, sig[i]) < 0) {
          sig[i] = v;
        }
      }
    }
    return sig;
  }

  private static final int[] ALPHABET = {
    'a', 'b', ' ', 'Z', 0xe9, 0x301 /* combining acute */, 0x4e2d, 0x6587 /* CJK */,
    0x1f600, 0x1f44d /* emoji, surrogate pairs */, 0x10ffff, 0x7ff, 0x800, 0xffff, 0x0
  };

  private static String randomText(Random rnd, int maxLen) {
    int n = rnd.nextInt(maxLen + 1);
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < n; i++) {
      sb.appendCodePoint(ALPHABET[rnd.nextInt(ALPHABET.length)]);
    }
    return sb.toString();
  }

  @Test
  public void surrogatePairsCountAsOneCodePoint() {
    String text = "\ud83d\ude00\ud83d\ude00ab";  // two emoji then "ab": 4 code points
    byte[] utf8 = MinHash.utf8(text);
    assertEquals(10, utf8.length);
    assertArrayEquals(new int[] {0, 4, 8, 9, 10}, MinHash.codePointOffsets(utf8));
    PermutationParams p = PermutationParams.of(8, 3, false);
    // Width 4 covers the whole text in one shingle, exactly like a text shorter than the width.
    assertArrayEquals(MinHash.signature32(text, 4, p), MinHash.signature32(text, 9, p));
  }

  @Test
  public void randomUnicodeMatchesLiteralImplementation() {
    Random rnd = new Random(2024);
    PermutationParams p32 = PermutationParams.of(16, 42, false);
    PermutationParams p64 = PermutationParams.of(16, 42, true);
    for (int t = 0; t < 400; t++) {
      String text = randomText(rnd, 40);
      int width = 2 + rnd.nextInt(8);
      if (text.isEmpty()) {
        assertNull(MinHash.signature32(text, width, p32));
        continue;
      }
      assertArrayEquals(text, naive32(text, width, p32.a32, p32.b32, p32.a32[0]),
          MinHash.signature32(text, width, p32));
      assertArrayEquals(text, naive64(text, width, p64.a64, p64.b64, p64.a64[0]),
          MinHash.signature64(text, width, p64));
    }
  }

  @Test
  public void vectorApiIsAvailableInTheTestJvm() {
    // build.gradle starts the test JVM with --add-modules=jdk.incubator.vector, as Spark does.
    assertTrue(VectorSupport.AVAILABLE);
  }

  @Test
  public void vectorAndPortableLoopsAgreeWithLiteralMinimum() {
    Random rnd = new Random(77);
    for (int k : new int[] {1, 3, 15, 16, 17, 33, 260}) {
      int[] a32 = new int[k];
      int[] b32 = new int[k];
      long[] a64 = new long[k];
      long[] b64 = new long[k];
      for (int i = 0; i < k; i++) {
        a32[i] = rnd.nextInt();
        b32[i] = rnd.nextInt();
        a64[i] = rnd.nextLong() & PermutationParams.MERSENNE_61;
        b64[i] = rnd.nextLong() & PermutationParams.MERSENNE_61;
      }
      for (int n : new int[] {1, 2, 7, 100}) {
        int[] h32 = new int[n];
        long[] h64 = new long[n];
        for (int s = 0; s < n; s++) {
          h32[s] = rnd.nextInt(4) == 0 ? -1 : rnd.nextInt();  // include 0xFFFFFFFF
          h64[s] = rnd.nextInt(4) == 0 ? -1L : rnd.nextLong();
        }
        int[] want32 = new int[k];
        long[] want64 = new long[k];
        Arrays.fill(want32, -1);
        Arrays.fill(want64, -1L);
        for (int i = 0; i < k; i++) {
          for (int s = 0; s < n; s++) {
            int v = h32[s] * a32[i] + b32[i];
            if (Integer.compareUnsigned(v, want32[i]) < 0) {
              want32[i] = v;
            }
            long w = Long.remainderUnsigned(
                h64[s] * a64[i] + b64[i], PermutationParams.MERSENNE_61);
            if (Long.compareUnsigned(w, want64[i]) < 0) {
              want64[i] = w;
            }
          }
        }
        String at = "k=" + k + " n=" + n;
        assertArrayEquals(at, want32, MinHash.permutedMin32(h32, a32, b32));
        assertArrayEquals(at, want32, VectorMinHash.permutedMin32(h32, a32, b32));
        assertArrayEquals(at, want64, MinHash.permutedMin64(h64, a64, b64));
        assertArrayEquals(at, want64, VectorMinHash.permutedMin64(h64, a64, b64));
      }
    }
  }

  @Test
  public void mod61EqualsRemainderUnsigned() {
    Random rnd = new Random(5);
    long[] edge = {0, 1, -1, -2, PermutationParams.MERSENNE_61, PermutationParams.MERSENNE_61 + 1,
        PermutationParams.MERSENNE_61 * 2, PermutationParams.MERSENNE_61 * 8, Long.MAX_VALUE,
        Long.MIN_VALUE};
    for (long x : edge) {
      assertEquals(Long.remainderUnsigned(x, PermutationParams.MERSENNE_61), MinHash.mod61(x));
    }
    for (int i = 0; i < 100000; i++) {
      long x = rnd.nextLong();
      assertEquals(Long.remainderUnsigned(x, PermutationParams.MERSENNE_61), MinHash.mod61(x));
    }
  }
}

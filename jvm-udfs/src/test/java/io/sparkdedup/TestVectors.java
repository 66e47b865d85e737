/* Loads tests/data/test_vectors.json (the project's golden MinHash values) for the JUnit tests. */
package io.sparkdedup;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;

/** Access to tests/data/test_vectors.json, read once. */
public final class TestVectors {
  private static JsonNode root;

  private TestVectors() {}

  /** The parsed file; its path comes from the build (system property) or the project dir. */
  public static synchronized JsonNode get() {
    if (root == null) {
      String path = System.getProperty("sparkdedup.testVectors", "tests/data/test_vectors.json");
      try {
        root = new ObjectMapper().readTree(new File(path));
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read test vectors at " + path, e);
      }
    }
    return root;
  }

  public static int[] uint32Array(JsonNode node) {
    int[] out = new int[node.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (int) node.get(i).asLong();
    }
    return out;
  }

  /** Unsigned 64-bit values (JSON integers up to 2^64 - 1) as long bit patterns. */
  public static long[] uint64Array(JsonNode node) {
    long[] out = new long[node.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = node.get(i).bigIntegerValue().longValue();
    }
    return out;
  }
}

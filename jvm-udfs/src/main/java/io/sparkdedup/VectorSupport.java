/*
 * Whether the MinHash step (ALGORITHMS.md, "Signature of one document", steps 4-5) can use the
 * JDK Vector API. Spark 4 starts its JVMs with --add-modules=jdk.incubator.vector; elsewhere the
 * module may be missing, and then the portable loops of MinHash run instead (same values).
 */
package io.sparkdedup;

/** Decides once per JVM whether {@link VectorMinHash} can run. */
public final class VectorSupport {
  /**
   * True when the jdk.incubator.vector module is loaded, its preferred int vector has at least
   * 4 lanes, and the system property {@code sparkdedup.vector} is not "false".
   */
  public static final boolean AVAILABLE = detect();

  private VectorSupport() {}

  private static boolean detect() {
    if ("false".equalsIgnoreCase(System.getProperty("sparkdedup.vector", "true"))) {
      return false;
    }
    if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
      return false;
    }
    try {
      return VectorMinHash.intLanes() >= 4;
    } catch (LinkageError e) {
      return false;
    }
  }
}

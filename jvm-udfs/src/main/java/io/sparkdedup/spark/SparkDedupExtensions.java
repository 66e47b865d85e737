/*
 * Session extension that adds sparkdedup's SQL functions (fuzzy dedup MinHash and LSH band keys,
 * see SparkDedupFunctions) to every SparkSession, for SQL-only users: spark-sql, the Thrift
 * server, Spark Connect servers.
 */
package io.sparkdedup.spark;

import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.SparkSessionExtensionsProvider;
import scala.runtime.AbstractFunction1;
import scala.runtime.BoxedUnit;

/**
 * Injects the sparkdedup SQL functions into a session.
 *
 * <p>Spark loads it by itself through {@code META-INF/services} whenever the jar is on the
 * driver classpath when the session starts ({@code --jars}, {@code spark.jars}); naming it in
 * {@code spark.sql.extensions} works too.
 */
public final class SparkDedupExtensions extends AbstractFunction1<SparkSessionExtensions, BoxedUnit>
    implements SparkSessionExtensionsProvider {
  @Override
  public BoxedUnit apply(SparkSessionExtensions extensions) {
    for (SparkDedupFunctions.Definition d : SparkDedupFunctions.definitions()) {
      extensions.injectFunction(d.asTuple());
    }
    return BoxedUnit.UNIT;
  }
}

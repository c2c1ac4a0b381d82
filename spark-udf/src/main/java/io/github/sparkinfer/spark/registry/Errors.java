package io.github.sparkinfer.spark.registry;

import org.apache.spark.QueryContext;
import org.apache.spark.sql.AnalysisException;
import scala.Option;

/** Analysis errors carrying sparkinfer's own message, without a Spark error class. */
public final class Errors {
  private Errors() {}

  /**
   * Throws an AnalysisException. It is checked in Java but not in Scala, where Spark throws it
   * from anywhere in analysis; the declared return type lets callers write {@code throw analysis(...)}.
   */
  public static RuntimeException analysis(String message) {
    return analysis(message, null);
  }

  public static RuntimeException analysis(String message, Throwable cause) {
    throw Errors.<RuntimeException>unchecked(
        new AnalysisException(
            message,
            Option.empty(),
            Option.empty(),
            Option.apply(cause),
            Option.empty(),
            scala.collection.immutable.Map$.MODULE$.empty(),
            new QueryContext[0]));
  }

  @SuppressWarnings("unchecked")
  private static <T extends Throwable> T unchecked(Throwable throwable) throws T {
    throw (T) throwable;
  }
}

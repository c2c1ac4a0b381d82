package io.github.sparkinfer.spark;

import org.apache.spark.SparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import scala.Option;

/** Spark 3.5: a session on a running SparkContext with no extensions, as a notebook may have. */
final class SessionsWithoutExtensions {

  private SessionsWithoutExtensions() {}

  static SparkSession on(SparkContext context) {
    return new SparkSession(
        context,
        Option.empty(),
        Option.empty(),
        new SparkSessionExtensions(),
        scala.collection.immutable.Map$.MODULE$.empty());
  }
}

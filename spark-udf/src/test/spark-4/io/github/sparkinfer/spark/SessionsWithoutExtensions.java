package io.github.sparkinfer.spark;

import org.apache.spark.SparkContext;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.SparkSessionExtensions;
import scala.Option;

/** Spark 4: a classic session on a running SparkContext with no extensions, as a notebook may have. */
final class SessionsWithoutExtensions {

  private SessionsWithoutExtensions() {}

  static SparkSession on(SparkContext context) {
    return new org.apache.spark.sql.classic.SparkSession(
        context,
        Option.empty(),
        Option.empty(),
        new SparkSessionExtensions(),
        scala.collection.immutable.Map$.MODULE$.empty(),
        scala.collection.immutable.Map$.MODULE$.empty());
  }
}

package io.github.sparkinfer.spark.sql;

import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.ExperimentalMethods;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.analysis.FunctionRegistry;
import org.apache.spark.sql.catalyst.analysis.TableFunctionRegistry;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.internal.SQLConf;

/**
 * The calls sparkinfer makes on a session, Spark 3.5's way: one SparkSession class that holds its
 * state, columns that wrap a Catalyst expression directly. Spark 4's way is the same class in
 * src/main/spark-4. Written in Java because Dataset.ofRows is private to Spark's own Scala
 * packages, which Java does not enforce.
 */
public final class SessionBridge {

  private SessionBridge() {}

  // Session state's parts, not SessionState itself: that class is private to Spark's packages,
  // which scalac enforces on the signatures of the Java sources it reads.
  public static SQLConf conf(SparkSession spark) {
    return spark.sessionState().conf();
  }

  public static FunctionRegistry functionRegistry(SparkSession spark) {
    return spark.sessionState().functionRegistry();
  }

  public static TableFunctionRegistry tableFunctionRegistry(SparkSession spark) {
    return spark.sessionState().tableFunctionRegistry();
  }

  public static ExperimentalMethods experimental(SparkSession spark) {
    return spark.experimental();
  }

  public static Dataset<Row> dataFrame(SparkSession spark, LogicalPlan plan) {
    return Dataset.ofRows(spark, plan);
  }

  public static Expression expression(Column column) {
    return column.expr();
  }

  public static Column column(Expression expression) {
    return new Column(expression);
  }

  /** The thread's active session, or null. */
  public static SparkSession activeSession() {
    return SparkSession.getActiveSession().getOrElse(() -> null);
  }

  /** Makes the session the thread's active one; null clears it. */
  public static void setActiveSession(SparkSession spark) {
    if (spark == null) {
      SparkSession.clearActiveSession();
    } else {
      SparkSession.setActiveSession(spark);
    }
  }
}

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
import org.apache.spark.sql.classic.ExpressionUtils;
import org.apache.spark.sql.internal.SQLConf;

/**
 * The calls sparkinfer makes on a session, Spark 4's way: the session state lives on the classic
 * session (org.apache.spark.sql.classic), columns wrap Catalyst expressions through ExpressionUtils.
 * Spark 3.5's way is the same class in src/main/spark-3. Written in Java because Dataset.ofRows is
 * private to Spark's own Scala packages, which Java does not enforce.
 */
public final class SessionBridge {

  private SessionBridge() {}

  // Session state's parts, not SessionState itself: that class is private to Spark's packages,
  // which scalac enforces on the signatures of the Java sources it reads.
  public static SQLConf conf(SparkSession spark) {
    return classic(spark).sessionState().conf();
  }

  public static FunctionRegistry functionRegistry(SparkSession spark) {
    return classic(spark).sessionState().functionRegistry();
  }

  public static TableFunctionRegistry tableFunctionRegistry(SparkSession spark) {
    return classic(spark).sessionState().tableFunctionRegistry();
  }

  public static ExperimentalMethods experimental(SparkSession spark) {
    return classic(spark).experimental();
  }

  public static Dataset<Row> dataFrame(SparkSession spark, LogicalPlan plan) {
    return org.apache.spark.sql.classic.Dataset.ofRows(classic(spark), plan);
  }

  public static Expression expression(Column column) {
    return ExpressionUtils.expression(column);
  }

  public static Column column(Expression expression) {
    return ExpressionUtils.column(expression);
  }

  /** The thread's active session, or null. */
  public static SparkSession activeSession() {
    return org.apache.spark.sql.classic.SparkSession.getActiveSession().getOrElse(() -> null);
  }

  /** Makes the session the thread's active one; null clears it. */
  public static void setActiveSession(SparkSession spark) {
    if (spark == null) {
      org.apache.spark.sql.classic.SparkSession.clearActiveSession();
    } else {
      org.apache.spark.sql.classic.SparkSession.setActiveSession(classic(spark));
    }
  }

  private static org.apache.spark.sql.classic.SparkSession classic(SparkSession spark) {
    if (!(spark instanceof org.apache.spark.sql.classic.SparkSession)) {
      throw new IllegalArgumentException(
          "sparkinfer runs inside Spark's JVM session (classic Spark), not through Spark Connect: got "
              + spark.getClass().getName() + ". Call it on the Spark Connect server's side (its"
              + " spark.sql.extensions), or from a classic SparkSession");
    }
    return (org.apache.spark.sql.classic.SparkSession) spark;
  }
}

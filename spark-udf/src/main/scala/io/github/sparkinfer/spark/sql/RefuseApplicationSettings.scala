package io.github.sparkinfer.spark.sql

import io.github.sparkinfer.spark.config.ApplicationSettings
import io.github.sparkinfer.spark.registry.Errors

import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan
import org.apache.spark.sql.execution.command.SetCommand

/**
 * Refuses `SET <application key>=<value>` when the statement is analyzed, naming the key and the
 * fix, so a SQL user of a shared session learns at once that the key is the application's.
 * (`spark.conf.set` and Spark Connect's config calls bypass analysis: model calls check the whole
 * session again, see ApplicationSettings.)
 */
case class RefuseApplicationSettings(session: SparkSession) extends (LogicalPlan => Unit) {
  override def apply(plan: LogicalPlan): Unit = plan match {
    case SetCommand(Some((key, Some(value)))) if key.startsWith("spark.sparkinfer.") =>
      try {
        ApplicationSettings.checkSessionValue(key, value, session.sparkContext.getConf)
      } catch {
        case e: IllegalArgumentException => throw Errors.analysis("Cannot SET " + key + ": " + e.getMessage, e)
      }
    case _ =>
  }
}

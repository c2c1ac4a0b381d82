package io.github.sparkinfer.spark.plan

import org.apache.spark.sql.execution.SparkStrategy
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan
import org.apache.spark.sql.execution.SparkPlan

/** Plans [[BatchPredict]] as [[BatchPredictExec]]. */
object BatchPredictStrategy extends SparkStrategy {
  override def apply(plan: LogicalPlan): Seq[SparkPlan] = plan match {
    case BatchPredict(prediction, result, passThrough, child) =>
      BatchPredictExec(prediction, result, passThrough, planLater(child)) :: Nil
    case _ => Nil
  }
}

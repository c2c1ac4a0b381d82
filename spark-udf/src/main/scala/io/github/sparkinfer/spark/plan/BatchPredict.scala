package io.github.sparkinfer.spark.plan

import org.apache.spark.sql.catalyst.expressions.{Attribute, AttributeSet}
import org.apache.spark.sql.catalyst.plans.logical.{LogicalPlan, UnaryNode}

/** Runs one model call over its child's rows in batches, appending the result as a column. */
case class BatchPredict(prediction: PredictExpression, result: Attribute, child: LogicalPlan)
  extends UnaryNode {

  override def output: Seq[Attribute] = child.output :+ result

  override def producedAttributes: AttributeSet = AttributeSet(result)

  override protected def withNewChildInternal(newChild: LogicalPlan): BatchPredict =
    copy(child = newChild)
}

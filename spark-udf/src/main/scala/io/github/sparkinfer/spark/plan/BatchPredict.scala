package io.github.sparkinfer.spark.plan

import io.github.sparkinfer.spark.sql.ModelInvocation

import org.apache.spark.sql.catalyst.expressions.{Attribute, AttributeSet}
import org.apache.spark.sql.catalyst.plans.logical.{LogicalPlan, UnaryNode}

/**
 * Runs one model call over its child's rows in batches. Its output is the child columns still
 * needed above it (`passThrough`, narrowed by [[ExtractPredictions]]) and the result column, so
 * columns that only fed the model are not carried along.
 */
case class BatchPredict(
    prediction: ModelInvocation,
    result: Attribute,
    passThrough: Seq[Attribute],
    child: LogicalPlan) extends UnaryNode {

  override def output: Seq[Attribute] = passThrough :+ result

  override def producedAttributes: AttributeSet = AttributeSet(result)

  override protected def withNewChildInternal(newChild: LogicalPlan): BatchPredict =
    copy(child = newChild)
}

object BatchPredict {
  def apply(prediction: ModelInvocation, result: Attribute, child: LogicalPlan): BatchPredict =
    BatchPredict(prediction, result, child.output, child)
}

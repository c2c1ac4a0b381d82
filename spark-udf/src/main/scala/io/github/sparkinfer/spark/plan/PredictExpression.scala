package io.github.sparkinfer.spark.plan

import scala.jdk.CollectionConverters._

import org.apache.spark.sql.catalyst.analysis.TypeCheckResult
import org.apache.spark.sql.catalyst.expressions.{Expression, Unevaluable}
import org.apache.spark.sql.types.DataType

/**
 * A call of a registered model in a query. It is never evaluated row by row: the optimizer rule
 * [[ExtractPredictions]] moves every call into a [[BatchPredict]] node that runs the model batch by
 * batch, the way Spark moves Python UDFs into a batch-evaluating node.
 */
case class PredictExpression(binding: ModelBinding, children: Seq[Expression])
  extends Expression with Unevaluable {
  // Unevaluable also keeps rules such as ConvertToLocalRelation from evaluating it row by row.

  override def nullable: Boolean = true

  override def dataType: DataType = binding.resultType()


  override def checkInputDataTypes(): TypeCheckResult = {
    try {
      binding.bindInputs(children.map(_.dataType).asJava)
      TypeCheckResult.TypeCheckSuccess
    } catch {
      case e: ModelBindingException => TypeCheckResult.TypeCheckFailure(e.getMessage)
    }
  }

  override def prettyName: String = "predict"

  override def toString: String = s"predict(${binding.modelName}, ${children.mkString(", ")})"

  override def sql: String =
    (s"'${binding.modelName}'" +: children.map(_.sql)).mkString("predict(", ", ", ")")

  override protected def withNewChildrenInternal(
      newChildren: IndexedSeq[Expression]): PredictExpression = copy(children = newChildren)
}

package io.github.sparkinfer.spark.plan

import scala.jdk.CollectionConverters._

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.analysis.TypeCheckResult
import org.apache.spark.sql.catalyst.expressions.Expression
import org.apache.spark.sql.catalyst.expressions.codegen.{CodegenContext, ExprCode}
import org.apache.spark.sql.types.DataType

/**
 * A call of a registered model in a query. It is never evaluated row by row: the optimizer rule
 * [[ExtractPredictions]] moves every call into a [[BatchPredict]] node that runs the model batch by
 * batch, the way Spark moves Python UDFs into a batch-evaluating node.
 */
case class PredictExpression(binding: ModelBinding, children: Seq[Expression]) extends Expression {

  override def nullable: Boolean = true

  override def dataType: DataType = binding.resultType()

  // A model call is never folded into a constant at planning time.
  override def foldable: Boolean = false

  override def checkInputDataTypes(): TypeCheckResult = {
    try {
      binding.bindInputs(children.map(_.dataType).asJava)
      TypeCheckResult.TypeCheckSuccess
    } catch {
      case e: ModelBindingException => TypeCheckResult.TypeCheckFailure(e.getMessage)
    }
  }

  override def eval(input: InternalRow): Any = throw notPlanned()

  override protected def doGenCode(ctx: CodegenContext, ev: ExprCode): ExprCode = throw notPlanned()

  private def notPlanned(): IllegalStateException = new IllegalStateException(
    s"predict('${binding.modelName}', ...) was not planned into a batch node, so sparkinfer's rules" +
      " are not installed in this session. Start the session with spark.sql.extensions=" +
      "io.github.sparkinfer.spark.SparkInferenceExtensions, or call SparkInference.install(spark)")

  override def prettyName: String = "predict"

  override def toString: String = s"predict(${binding.modelName}, ${children.mkString(", ")})"

  override def sql: String =
    (s"'${binding.modelName}'" +: children.map(_.sql)).mkString("predict(", ", ", ")")

  override protected def withNewChildrenInternal(
      newChildren: IndexedSeq[Expression]): PredictExpression = copy(children = newChildren)
}

package io.github.sparkinfer.spark.sql

import io.github.sparkinfer.spark.registry.ModelBinding
import io.github.sparkinfer.spark.registry.ModelBindingException

import scala.jdk.CollectionConverters._

import org.apache.spark.sql.catalyst.analysis.TypeCheckResult
import org.apache.spark.sql.catalyst.expressions.{Expression, Unevaluable}
import org.apache.spark.sql.types.{ArrayType, DataType, FloatType, StringType}

/**
 * A call of a registered model in a query. It is never evaluated row by row (Unevaluable also
 * keeps rules such as ConvertToLocalRelation from trying): the optimizer rule
 * [[ExtractPredictions]] moves every call into a [[BatchPredict]] node that runs the model batch by
 * batch, the way Spark moves Python UDFs into a batch-evaluating node.
 */
trait ModelInvocation extends Expression with Unevaluable {
  def binding: ModelBinding

  override def nullable: Boolean = true

  override def toString: String = s"$prettyName(${binding.modelName}, ${children.mkString(", ")})"

  override def sql: String =
    (s"'${binding.modelName}'" +: children.map(_.sql)).mkString(s"$prettyName(", ", ", ")")
}

/** predict(model, inputs...): the model's outputs for numeric inputs. */
case class PredictExpression(binding: ModelBinding, children: Seq[Expression]) extends ModelInvocation {

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

  override protected def withNewChildrenInternal(
      newChildren: IndexedSeq[Expression]): PredictExpression = copy(children = newChildren)
}

/** embed(model, text): one pooled, normalized vector per text, from a model with a tokenizer. */
case class EmbedExpression(binding: ModelBinding, children: Seq[Expression]) extends ModelInvocation {

  override def dataType: DataType = ArrayType(FloatType, containsNull = false)

  override def checkInputDataTypes(): TypeCheckResult = {
    if (binding.text() == null) {
      TypeCheckResult.TypeCheckFailure(
        s"Model '${binding.modelName}' has no tokenizer, so embed() cannot turn text into its inputs." +
          s" Register one with SET spark.sparkinfer.model.${binding.modelName}.tokenizer=<URI of tokenizer.json>")
    } else if (children.size != 1 || children.head.dataType != StringType) {
      TypeCheckResult.TypeCheckFailure(
        s"embed('${binding.modelName}', text) takes one string column, but got " +
          children.map(_.dataType.simpleString).mkString("(", ", ", ")") +
          ". Cast the column to string or pass one text column")
    } else {
      TypeCheckResult.TypeCheckSuccess
    }
  }

  override def prettyName: String = "embed"

  override protected def withNewChildrenInternal(
      newChildren: IndexedSeq[Expression]): EmbedExpression = copy(children = newChildren)
}

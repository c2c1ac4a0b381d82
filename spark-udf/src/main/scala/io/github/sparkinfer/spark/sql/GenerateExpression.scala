package io.github.sparkinfer.spark.sql

import io.github.sparkinfer.spark.generate.GenerationRunner
import io.github.sparkinfer.spark.plan.PartitionPlan
import io.github.sparkinfer.spark.registry.ModelBinding

import scala.jdk.CollectionConverters._

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.analysis.TypeCheckResult
import org.apache.spark.sql.catalyst.expressions.{BindReferences, BoundReference, Expression, UnsafeProjection}
import org.apache.spark.sql.types.{DataType, StringType}

/**
 * generate(model, prompt): the decoder's text for each prompt, as struct<text, tokens, finish_reason>.
 * The call's options map was read into the binding when the call was resolved, so its only child is
 * the prompt.
 */
case class GenerateExpression(binding: ModelBinding, children: Seq[Expression]) extends ModelInvocation {

  override def dataType: DataType = binding.resultType(GenerationRunner.RESULT_TYPE)

  override def checkInputDataTypes(): TypeCheckResult = {
    if (binding.generation() == null) {
      TypeCheckResult.TypeCheckFailure(
        if (!io.github.sparkinfer.spark.generate.DecoderLayout.isGenerative(binding.signature())) {
          s"Model '${binding.modelName}' is not a decoder with a key/value cache (its inputs are" +
            s" ${binding.describeInputs()}), so generate() cannot run it. Register a decoder-only model exported" +
            " with its cache (past_N or past_key_values.N.key/value inputs)"
        } else {
          s"Model '${binding.modelName}' has no tokenizer, so generate() cannot turn prompts into tokens and" +
            s" tokens into text. Register one with SET spark.sparkinfer.model.${binding.modelName}.tokenizer=" +
            "<URI of the model's tokenizer.json>"
        })
    } else if (children.size != 1 || children.head.dataType != StringType) {
      TypeCheckResult.TypeCheckFailure(
        s"generate('${binding.modelName}', prompt[, options]) takes one string column of prompts, but got " +
          children.map(_.dataType.simpleString).mkString("(", ", ", ")") + ". Cast the column to string")
    } else {
      TypeCheckResult.TypeCheckSuccess
    }
  }

  override def prettyName: String =
    if (binding.reportsErrors()) SqlFunctions.GenerateWithErrorName else SqlFunctions.GenerateName

  override def tokenized: Boolean = true

  override def execute(partitions: PartitionPlan, rows: Iterator[InternalRow]): Iterator[InternalRow] = {
    val (ordinal, argumentProjection) = BindReferences.bindReference(children.head, partitions.childOutput) match {
      case reference: BoundReference => (reference.ordinal, null)
      case other => (0, UnsafeProjection.create(Seq(other)))
    }
    new GenerationRunner(binding, ordinal, argumentProjection, partitions.holdProjection(),
      partitions.outputProjection(), partitions.metrics, rows.asJava).asScala
  }

  override protected def withNewChildrenInternal(
      newChildren: IndexedSeq[Expression]): GenerateExpression = copy(children = newChildren)
}

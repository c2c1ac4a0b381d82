package io.github.sparkinfer.spark.sql

import io.github.sparkinfer.spark.InferenceProperties
import io.github.sparkinfer.spark.batch.ExecutorSessions
import io.github.sparkinfer.spark.registry.ModelBinding
import io.github.sparkinfer.spark.registry.TextSettings
import io.github.sparkinfer.spark.text.TokenizerCache

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.analysis.TypeCheckResult
import org.apache.spark.sql.catalyst.expressions.{Expression, UnaryExpression, UnsafeArrayData}
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenFallback
import org.apache.spark.sql.types.{ArrayType, DataType, LongType, StringType, StructType}
import org.apache.spark.unsafe.types.UTF8String

/**
 * tokenize(model, text): the model's tokenizer applied to one text, as the struct of its inputs
 * (input_ids, attention_mask, token_type_ids), padded with zeros to the model's maximum length so
 * that predict() can batch rows of any length. The tokenizer is the executor's cached one.
 */
case class TokenizeExpression(binding: ModelBinding, child: Expression)
  extends UnaryExpression with CodegenFallback {

  override def dataType: DataType = TokenizeExpression.Type

  override def checkInputDataTypes(): TypeCheckResult = {
    if (binding.text() == null) {
      TypeCheckResult.TypeCheckFailure(
        s"Model '${binding.modelName}' has no tokenizer. Register one with SET " +
          InferenceProperties.MODEL_PREFIX + binding.modelName + InferenceProperties.MODEL_TOKENIZER_SUFFIX +
          "=<URI of tokenizer.json>")
    } else if (child.dataType != StringType) {
      TypeCheckResult.TypeCheckFailure(
        s"tokenize('${binding.modelName}', text) takes a string column, but got ${child.dataType.simpleString}")
    } else {
      TypeCheckResult.TypeCheckSuccess
    }
  }

  @transient private lazy val tokenizer =
    TokenizerCache.get(binding.modelName, binding.text(), ExecutorSessions.hadoopConfiguration())

  override protected def nullSafeEval(input: Any): Any = {
    val maxLength = binding.text().maxLength()
    val ids = tokenizer.ids(input.asInstanceOf[UTF8String].toString)
    val padded = java.util.Arrays.copyOf(ids, maxLength)
    val mask = new Array[Long](maxLength)
    java.util.Arrays.fill(mask, 0, math.min(ids.length, maxLength), 1L)
    InternalRow(
      UnsafeArrayData.fromPrimitiveArray(padded),
      UnsafeArrayData.fromPrimitiveArray(mask),
      UnsafeArrayData.fromPrimitiveArray(new Array[Long](maxLength)))
  }

  override def prettyName: String = "tokenize"

  override def toString: String = s"tokenize(${binding.modelName}, $child)"

  override def sql: String = s"tokenize('${binding.modelName}', ${child.sql})"

  override protected def withNewChildInternal(newChild: Expression): TokenizeExpression =
    copy(child = newChild)
}

object TokenizeExpression {
  val Type: StructType = new StructType()
    .add(TextSettings.INPUT_IDS, ArrayType(LongType, containsNull = false), nullable = false)
    .add(TextSettings.ATTENTION_MASK, ArrayType(LongType, containsNull = false), nullable = false)
    .add(TextSettings.TOKEN_TYPE_IDS, ArrayType(LongType, containsNull = false), nullable = false)
}

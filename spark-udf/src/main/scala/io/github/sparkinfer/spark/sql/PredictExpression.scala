package io.github.sparkinfer.spark.sql

import io.github.sparkinfer.spark.registry.InputLayout
import io.github.sparkinfer.spark.registry.ModelBinding
import io.github.sparkinfer.spark.registry.ModelBindingException

import io.github.sparkinfer.spark.batch.BatchPredictionRunner
import io.github.sparkinfer.spark.batch.ColumnarOutputRunner
import io.github.sparkinfer.spark.batch.ColumnarPredictionRunner
import io.github.sparkinfer.spark.batch.ResultColumns
import io.github.sparkinfer.spark.batch.ModelCall
import io.github.sparkinfer.spark.plan.PartitionPlan
import io.github.sparkinfer.spark.text.TextEmbeddingRunner

import scala.jdk.CollectionConverters._

import org.apache.spark.TaskContext

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.analysis.TypeCheckResult
import org.apache.spark.sql.catalyst.util.ArrayData
import org.apache.spark.sql.catalyst.expressions.{BindReferences, BoundReference, Expression, Unevaluable, UnsafeProjection}
import org.apache.spark.sql.types.{ArrayType, DataType, FloatType, StringType, StructType}
import org.apache.spark.sql.vectorized.ColumnarBatch

/**
 * A call of a registered model in a query. It is never evaluated row by row (Unevaluable also
 * keeps rules such as ConvertToLocalRelation from trying): the optimizer rule
 * [[ExtractPredictions]] moves every call into a [[BatchPredict]] node that runs the model batch by
 * batch, the way Spark moves Python UDFs into a batch-evaluating node.
 */
trait ModelInvocation extends Expression with Unevaluable {
  def binding: ModelBinding

  /** Whether the node reports the text metrics (tokens, padding, tokenizer time). */
  def tokenized: Boolean = false

  /**
   * One partition's rows of `partitions.childOutput` through this function's batches, giving rows of
   * `partitions.output` in the order they came: the one place a function says how it runs.
   */
  def execute(partitions: PartitionPlan, rows: Iterator[InternalRow]): Iterator[InternalRow]

  override def nullable: Boolean = true

  override def toString: String = s"$prettyName(${binding.modelName}, ${children.mkString(", ")})"

  override def sql: String =
    (s"'${binding.modelName}'" +: children.map(_.sql)).mkString(s"$prettyName(", ", ", ")")
}

object ModelInvocation {
  /**
   * The model function named `function` (SQL's name: predict, embed) on these arguments, from Java
   * (the DataFrame API and the ML stage): read from the one function list,
   * [[SqlFunctions.modelInvocations]]; one Seq type for every Scala.
   */
  def of(function: String, binding: ModelBinding, children: java.util.List[Expression]): Expression =
    SqlFunctions.modelInvocations.get(function) match {
      case Some(build) => build(binding, children.asScala.toSeq)
      case None => throw new IllegalArgumentException(
        s"No model function '$function': the DataFrame API and the ML stage call one of " +
          SqlFunctions.modelInvocations.keys.toSeq.sorted.mkString(", "))
    }
}

/** predict(model, inputs...): the model's outputs for numeric inputs. */
case class PredictExpression(binding: ModelBinding, children: Seq[Expression]) extends ModelInvocation {

  override def dataType: DataType = binding.resultType()

  override def checkInputDataTypes(): TypeCheckResult = {
    try {
      val inputs = binding.bindInputs(children.map(_.dataType).asJava)
      inputs.inputs().asScala.flatMap(literalProblem).headOption match {
        case Some(problem) => TypeCheckResult.TypeCheckFailure(problem)
        case None => TypeCheckResult.TypeCheckSuccess
      }
    } catch {
      case e: ModelBindingException => TypeCheckResult.TypeCheckFailure(e.getMessage)
    }
  }

  /**
   * A constant argument (a literal array, or a field of a literal struct) is checked now against
   * the input's fixed length, so that a wrong literal fails the query before any task runs.
   */
  private def literalProblem(layout: InputLayout): Option[String] = {
    val argument = children(if (layout.structFieldOrdinal() >= 0) 0 else layout.argumentOrdinal())
    if (layout.kind() != InputLayout.Kind.ARRAY || !argument.foldable) {
      return None
    }
    val value = argument.eval() match {
      case row: InternalRow if layout.structFieldOrdinal() >= 0 =>
        if (row.isNullAt(layout.structFieldOrdinal())) null else row.getArray(layout.structFieldOrdinal())
      case array: ArrayData => array
      case _ => null
    }
    if (value == null) {
      None
    } else if (layout.fixedValuesPerRow() > 0 && value.numElements() != layout.fixedValuesPerRow()) {
      Some(s"predict('${binding.modelName}', ...): the constant array for input '${layout.input().name()}' has" +
        s" ${value.numElements()} values, but the input takes ${layout.fixedValuesPerRow()}" +
        s" (${ModelBinding.expectation(layout.input())}). Give it ${layout.fixedValuesPerRow()} values")
    } else if ((0 until value.numElements()).exists(value.isNullAt)) {
      Some(s"predict('${binding.modelName}', ...): the constant array for input '${layout.input().name()}' has a" +
        " null element, which a tensor cannot hold. Replace it with a number")
    } else {
      None
    }
  }

  override def prettyName: String = if (binding.reportsErrors()) "predict_with_error" else "predict"

  override def execute(partitions: PartitionPlan, rows: Iterator[InternalRow]): Iterator[InternalRow] = {
    val bound = children.map(BindReferences.bindReference(_, partitions.childOutput))
    // Plain column arguments are read in place; computed ones are projected first.
    val (ordinals, argumentProjection) =
      if (bound.forall(_.isInstanceOf[BoundReference])) {
        (bound.map(_.asInstanceOf[BoundReference].ordinal).toArray, null)
      } else {
        (bound.indices.toArray, UnsafeProjection.create(bound))
      }
    // Rows are held only with the columns kept; the model's own inputs are read first.
    new BatchPredictionRunner(newCall(ordinals, partitions), argumentProjection, partitions.holdProjection(),
      partitions.outputProjection(), partitions.metrics, rows.asJava).asScala
  }

  /** A vectorized scan's batches, plain column arguments read from the column vectors. */
  def executeColumnar(partitions: PartitionPlan, batches: Iterator[ColumnarBatch]): Iterator[InternalRow] = {
    val ordinals = children.map(BindReferences.bindReference(_, partitions.childOutput))
      .map(_.asInstanceOf[BoundReference].ordinal).toArray
    // Columnar rows are not held: every column of the child is in the output projection's input.
    val outputProjection = UnsafeProjection.create(partitions.output, partitions.childOutput :+ partitions.result)
    new ColumnarPredictionRunner(newCall(ordinals, partitions), outputProjection, partitions.metrics,
      batches.asJava).asScala
  }

  /**
   * A vectorized scan's batches, giving columnar batches: the child's kept vectors as they are and
   * the result column, filled in bulk. Its off-heap memory is freed when the task completes.
   */
  def executeColumnarOutput(partitions: PartitionPlan, batches: Iterator[ColumnarBatch]): Iterator[ColumnarBatch] = {
    val ordinals = children.map(BindReferences.bindReference(_, partitions.childOutput))
      .map(_.asInstanceOf[BoundReference].ordinal).toArray
    val kept = partitions.passThrough.map(attribute => partitions.childOutput.indexWhere(_.exprId == attribute.exprId))
      .toArray
    val call = newCall(ordinals, partitions)
    // Room for a vectorized scan's batch of rows at first; it grows for larger ones.
    val results = new ResultColumns(binding, 4096)
    Option(TaskContext.get()).foreach(_.addTaskCompletionListener[Unit](_ => results.close()))
    new ColumnarOutputRunner(call, kept, results, partitions.metrics, batches.asJava).asScala
  }

  private def newCall(ordinals: Array[Int], partitions: PartitionPlan): ModelCall = {
    val argumentStruct = children.head.dataType match {
      case struct: StructType if children.size == 1 => struct
      case _ => null
    }
    new ModelCall(binding, binding.bindInputs(children.map(_.dataType).asJava), argumentStruct, ordinals,
      partitions.metrics)
  }

  override protected def withNewChildrenInternal(
      newChildren: IndexedSeq[Expression]): PredictExpression = copy(children = newChildren)
}

/** embed(model, text): one pooled, normalized vector per text, from a model with a tokenizer. */
case class EmbedExpression(binding: ModelBinding, children: Seq[Expression]) extends ModelInvocation {

  override def dataType: DataType = binding.resultType(ArrayType(FloatType, containsNull = false))

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

  override def prettyName: String = if (binding.reportsErrors()) "embed_with_error" else "embed"

  override def tokenized: Boolean = true

  override def execute(partitions: PartitionPlan, rows: Iterator[InternalRow]): Iterator[InternalRow] = {
    val (ordinal, argumentProjection) = BindReferences.bindReference(children.head, partitions.childOutput) match {
      case reference: BoundReference => (reference.ordinal, null)
      case other => (0, UnsafeProjection.create(Seq(other)))
    }
    new TextEmbeddingRunner(binding, ordinal, argumentProjection, partitions.holdProjection(),
      partitions.outputProjection(), partitions.metrics, rows.asJava).asScala
  }

  override protected def withNewChildrenInternal(
      newChildren: IndexedSeq[Expression]): EmbedExpression = copy(children = newChildren)
}

package io.github.sparkinfer.spark.sql

import io.github.sparkinfer.spark.PredictionException

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.analysis.TypeCheckResult
import org.apache.spark.sql.catalyst.expressions.{BinaryExpression, Expression}
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenFallback
import org.apache.spark.sql.catalyst.util.ArrayData
import org.apache.spark.sql.types._

/**
 * compare_outputs(a, b): how close two models' outputs for one row are, as
 * struct&lt;cosine, max_abs_error, argmax_equal&gt; over the flattened values. Aggregating it over a
 * table (avg, min, max) validates a compressed model against the original on that data.
 */
case class CompareOutputsExpression(left: Expression, right: Expression)
  extends BinaryExpression with CodegenFallback {

  override def dataType: DataType = CompareOutputsExpression.Type

  override def checkInputDataTypes(): TypeCheckResult = {
    if (CompareOutputsExpression.numeric(left.dataType) && CompareOutputsExpression.numeric(right.dataType)) {
      TypeCheckResult.TypeCheckSuccess
    } else {
      TypeCheckResult.TypeCheckFailure(
        s"compare_outputs takes two numeric values or (nested) numeric arrays, such as two predict() or" +
          s" embed() results, but got ${left.dataType.simpleString} and ${right.dataType.simpleString}")
    }
  }

  override protected def nullSafeEval(first: Any, second: Any): Any = {
    val a = CompareOutputsExpression.flatten(first, left.dataType)
    val b = CompareOutputsExpression.flatten(second, right.dataType)
    if (a.length != b.length) {
      throw new PredictionException(
        s"compare_outputs got outputs of different sizes (${a.length} and ${b.length} values): compare" +
          " two models with the same outputs")
    }
    var dot = 0.0
    var normA = 0.0
    var normB = 0.0
    var maxError = 0.0
    var argmaxA = 0
    var argmaxB = 0
    var i = 0
    while (i < a.length) {
      dot += a(i) * b(i)
      normA += a(i) * a(i)
      normB += b(i) * b(i)
      maxError = math.max(maxError, math.abs(a(i) - b(i)))
      if (a(i) > a(argmaxA)) argmaxA = i
      if (b(i) > b(argmaxB)) argmaxB = i
      i += 1
    }
    val cosine = if (normA == 0 || normB == 0) (if (normA == normB) 1.0 else 0.0) else dot / math.sqrt(normA * normB)
    InternalRow(cosine, maxError, argmaxA == argmaxB)
  }

  override def prettyName: String = "compare_outputs"

  override protected def withNewChildrenInternal(
      newLeft: Expression, newRight: Expression): CompareOutputsExpression = copy(left = newLeft, right = newRight)
}

object CompareOutputsExpression {
  val Type: StructType = new StructType()
    .add("cosine", DoubleType, nullable = false)
    .add("max_abs_error", DoubleType, nullable = false)
    .add("argmax_equal", BooleanType, nullable = false)

  def numeric(dataType: DataType): Boolean = dataType match {
    case ArrayType(element, _) => numeric(element)
    case _: NumericType => true
    case _ => false
  }

  def flatten(value: Any, dataType: DataType): Array[Double] = {
    val values = scala.collection.mutable.ArrayBuilder.make[Double]
    def add(value: Any, dataType: DataType): Unit = dataType match {
      case ArrayType(element, _) =>
        val array = value.asInstanceOf[ArrayData]
        var i = 0
        while (i < array.numElements()) {
          if (array.isNullAt(i)) values += Double.NaN else add(array.get(i, element), element)
          i += 1
        }
      case FloatType => values += value.asInstanceOf[Float].toDouble
      case DoubleType => values += value.asInstanceOf[Double]
      case IntegerType => values += value.asInstanceOf[Int].toDouble
      case LongType => values += value.asInstanceOf[Long].toDouble
      case ShortType => values += value.asInstanceOf[Short].toDouble
      case ByteType => values += value.asInstanceOf[Byte].toDouble
      case other => throw new IllegalArgumentException(s"Not numeric: $other")
    }
    add(value, dataType)
    values.result()
  }
}

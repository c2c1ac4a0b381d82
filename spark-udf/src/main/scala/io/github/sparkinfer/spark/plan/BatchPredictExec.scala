package io.github.sparkinfer.spark.plan

import io.github.sparkinfer.spark.InferenceProperties
import io.github.sparkinfer.spark.batch.PredictionMetrics
import io.github.sparkinfer.spark.batch.ResultColumns
import io.github.sparkinfer.spark.sql.ModelInvocation
import io.github.sparkinfer.spark.sql.PredictExpression

import scala.jdk.CollectionConverters._

import io.github.sparkinfer.partitioning.StageResourceProfiles

import org.apache.spark.rdd.RDD
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.{Attribute, AttributeReference, AttributeSet, UnsafeProjection}
import org.apache.spark.sql.catalyst.rules.Rule
import org.apache.spark.sql.execution.{ColumnarRule, ColumnarToRowExec, SQLExecution, SparkPlan, UnaryExecNode}
import org.apache.spark.sql.execution.metric.{SQLMetric, SQLMetrics}
import org.apache.spark.sql.internal.SQLConf
import org.apache.spark.sql.vectorized.ColumnarBatch

/**
 * Physical node of [[BatchPredict]]: each partition goes through its function's runner
 * ([[io.github.sparkinfer.spark.sql.ModelInvocation.execute]]), which calls the model once per batch
 * on the session this executor's cache holds. With `columnarInput` its child produces
 * columnar batches (a vectorized scan) and the arguments are read straight from the column vectors.
 * With `columnarOutput` as well the node gives columnar batches itself: the child's kept vectors
 * beside a result column filled in bulk ([[io.github.sparkinfer.spark.batch.ResultColumns]]), and a
 * ColumnarToRow above it makes the rows.
 *
 * When the model's binding asks for stage resources, its RDD runs with their Spark resource profile:
 * Spark gives a stage one profile, so every task of the stage around this node (from the last
 * shuffle to the next) runs with it, and the rest of the job keeps the default profile.
 */
case class BatchPredictExec(
    prediction: ModelInvocation,
    result: Attribute,
    passThrough: Seq[Attribute],
    child: SparkPlan,
    columnarInput: Boolean = false,
    columnarOutput: Boolean = false) extends UnaryExecNode {

  override def output: Seq[Attribute] = passThrough :+ result

  override def producedAttributes: AttributeSet = AttributeSet(result)

  override def nodeName: String =
    if (columnarOutput) "BatchPredict (columnar input and output)"
    else if (columnarInput) "BatchPredict (columnar input)"
    else "BatchPredict"

  // Only ReadColumnarInput sets columnarOutput, with columnarInput, and puts a ColumnarToRow above.
  override def supportsColumnar: Boolean = columnarOutput

  private def isText: Boolean = prediction.tokenized

  // The node's one list of metrics; PredictionMetrics reads them by name.
  override lazy val metrics: Map[String, SQLMetric] = Map(
    "numOutputRows" -> SQLMetrics.createMetric(sparkContext, "number of output rows"),
    "modelRows" -> SQLMetrics.createMetric(sparkContext, "rows sent to the model"),
    "nullRows" -> SQLMetrics.createMetric(sparkContext, "rows with a null argument (no model call)"),
    "errorRows" -> SQLMetrics.createMetric(sparkContext, "rows the model could not take (onError=null)"),
    "batches" -> SQLMetrics.createMetric(sparkContext, "model batches"),
    "bufferBytes" -> SQLMetrics.createSizeMetric(sparkContext, "batch buffer memory (peak per task)"),
    "memorySplits" -> SQLMetrics.createMetric(sparkContext, "batches split after running out of device memory"),
    "memoryRetriesAlone" ->
      SQLMetrics.createMetric(sparkContext, "batches run again alone after running out of device memory beside other runs"),
    "modelTime" -> SQLMetrics.createNanoTimingMetric(sparkContext, "inference time"),
    "deviceWaitTime" -> SQLMetrics.createNanoTimingMetric(sparkContext, "time waiting for the device"),
    "fallbackTasks" -> SQLMetrics.createMetric(sparkContext, "tasks on a fallback device"),
    "stageProfile" -> SQLMetrics.createMetric(sparkContext, "resource profile id of the stage"),
    "stageProfileNotApplied" -> SQLMetrics.createMetric(sparkContext, "stage resources not applied")) ++
    (if (isText) Map(
      "tokens" -> SQLMetrics.createMetric(sparkContext, "tokens"),
      "paddingTokens" -> SQLMetrics.createMetric(sparkContext, "padding tokens"),
      "paddingPercent" -> SQLMetrics.createAverageMetric(sparkContext, "padding ratio (% of batch tokens)"),
      "tokenizeTime" -> SQLMetrics.createNanoTimingMetric(sparkContext, "tokenize time"),
      "tokenizerWaitTime" -> SQLMetrics.createNanoTimingMetric(sparkContext, "time waiting for the tokenizer"),
      "crossTaskBatches" -> SQLMetrics.createMetric(sparkContext, "batches holding texts of several tasks"),
      "decodeFallbackBatches" ->
        SQLMetrics.createMetric(sparkContext, "generate() batches decoded in Java instead of inside ONNX Runtime"))
    else Map.empty)

  /**
   * Where the node's tasks ran the model (assigned, requested and bound device), a bounded summary.
   * Unnamed: Spark copies a named accumulator's whole value into every TaskInfo (issue 28).
   */
  lazy val deviceBindings: io.github.sparkinfer.spark.batch.DeviceBindingSummary = {
    val accumulator = new io.github.sparkinfer.spark.batch.DeviceBindingSummary
    sparkContext.register(accumulator)
    accumulator
  }

  /** Each batch's model run time over the node's tasks: p50 and p99 (SparkInference.batchLatency). */
  lazy val batchLatencies: io.github.sparkinfer.spark.batch.BatchLatencies = {
    val accumulator = new io.github.sparkinfer.spark.batch.BatchLatencies
    sparkContext.register(accumulator, "sparkinfer batch latency")
    accumulator
  }

  override def simpleString(maxFields: Int): String = {
    val resources = prediction.binding.stageResources
    super.simpleString(maxFields) + (if (resources.isEmpty) "" else s", stage resources [$resources]")
  }

  override protected def doExecute(): RDD[InternalRow] = withStageResources(executePartitions())

  override protected def doExecuteColumnar(): RDD[ColumnarBatch] = {
    val partitions = PartitionPlan(child.output, passThrough, result, output,
      new PredictionMetrics(metrics.asJava, deviceBindings, batchLatencies))
    val predict = prediction.asInstanceOf[PredictExpression]
    withStageResources(child.executeColumnar().mapPartitions(batches => predict.executeColumnarOutput(partitions, batches)))
  }

  /**
   * Gives the stage the binding's resource profile. Where Spark cannot (local mode) the stage keeps
   * the default profile, with a WARN and the "stage resources not applied" metric.
   */
  private def withStageResources[T](rdd: RDD[T]): RDD[T] = {
    val binding = prediction.binding
    val resources = binding.stageResources
    if (resources.isEmpty) {
      return rdd
    }
    val executionId = sparkContext.getLocalProperty(SQLExecution.EXECUTION_ID_KEY)
    // Option(orElse(null)), not toScala: Scala 2.12 (Spark 3.5) has no scala.jdk.OptionConverters.
    Option(StageResourceProfiles.profileFor(sparkContext, resources, binding.modelName).orElse(null)) match {
      case Some(profile) =>
        if (!sparkContext.getConf.getBoolean("spark.scheduler.resource.profileMergeConflicts", false)) {
          BatchPredictNodes.conflictInStage(this).foreach(message => throw new IllegalArgumentException(message))
        }
        longMetric("stageProfile").set(profile.id.toLong)
        SQLMetrics.postDriverMetricUpdates(sparkContext, executionId, Seq(longMetric("stageProfile")))
        rdd.withResources(profile)
      case None =>
        logWarning(s"Model '${binding.modelName}': stage resources [$resources] not applied. " +
          StageResourceProfiles.notAppliedReason(sparkContext.getConf).orElse(""))
        longMetric("stageProfileNotApplied").add(1)
        SQLMetrics.postDriverMetricUpdates(sparkContext, executionId, Seq(longMetric("stageProfileNotApplied")))
        rdd
    }
  }

  private def executePartitions(): RDD[InternalRow] = {
    val partitions = PartitionPlan(child.output, passThrough, result, output,
      new PredictionMetrics(metrics.asJava, deviceBindings, batchLatencies))
    val invocation = prediction
    if (columnarInput) {
      // ReadColumnarInput sets columnarInput only for predict() over plain columns.
      val predict = invocation.asInstanceOf[PredictExpression]
      child.executeColumnar().mapPartitions(batches => predict.executeColumnar(partitions, batches))
    } else {
      child.execute().mapPartitions(rows => invocation.execute(partitions, rows))
    }
  }

  override protected def withNewChildInternal(newChild: SparkPlan): BatchPredictExec =
    copy(child = newChild)
}

/**
 * What a model function's tasks get from its node: the child's columns, the columns kept beside
 * the result, the result and the node's output, and the node's metrics. Serializable: it travels
 * in each task's closure.
 */
case class PartitionPlan(
    childOutput: Seq[Attribute],
    passThrough: Seq[Attribute],
    result: Attribute,
    output: Seq[Attribute],
    metrics: PredictionMetrics) {

  /** The kept columns of a child row, or null when the row is kept whole. */
  def holdProjection(): UnsafeProjection =
    if (passThrough == childOutput) null else UnsafeProjection.create(passThrough, childOutput)

  /** A kept row joined to its result, as the node's output row. */
  def outputProjection(): UnsafeProjection = UnsafeProjection.create(output, passThrough :+ result)
}

/**
 * After Spark inserts its row/columnar transitions: a BatchPredictExec whose arguments are plain
 * columns of a columnar child reads that child's batches itself, either instead of through
 * ColumnarToRow (a vectorized file scan) or instead of the child's row path when the child offers
 * both (an in-memory cache of primitive columns, which Spark reads as rows when its parent wants
 * rows, so no transition is inserted there).
 */
object ReadColumnarInput extends ColumnarRule {
  override def postColumnarTransitions: Rule[SparkPlan] = new Rule[SparkPlan] {
    override def apply(plan: SparkPlan): SparkPlan = plan.transformUp {
      case exec @ BatchPredictExec(prediction: PredictExpression, _, _, ColumnarToRowExec(columnar), false, _)
          if plainColumnsOf(prediction, columnar) =>
        withColumnarOutput(exec.copy(child = columnar, columnarInput = true))
      case exec @ BatchPredictExec(prediction: PredictExpression, _, _, child, false, _)
          if child.supportsColumnar && child.supportsRowBased && plainColumnsOf(prediction, child) =>
        withColumnarOutput(exec.copy(columnarInput = true))
    }
  }

  /**
   * The node giving columnar batches when spark.sparkinfer.columnarOutput is on and its result can
   * be written as columns; the node's parent wanted rows, so a ColumnarToRow goes between them
   * (Spark inserted its transitions before this rule: it would not add this one).
   */
  private def withColumnarOutput(exec: BatchPredictExec): SparkPlan = {
    val setting = SQLConf.get.getConfString(
      InferenceProperties.COLUMNAR_OUTPUT, InferenceProperties.COLUMNAR_OUTPUT_DEFAULT).trim.toLowerCase
    if (setting != "true" && setting != "false") {
      throw new IllegalArgumentException(s"Invalid value '$setting' for ${InferenceProperties.COLUMNAR_OUTPUT}: use" +
        " true (predict() over a columnar child gives columnar batches) or false (it gives rows)")
    }
    if (setting == "true" && ResultColumns.supports(exec.prediction.binding.resultType()) &&
        exec.passThrough.forall(exec.child.outputSet.contains)) {
      ColumnarToRowExec(exec.copy(columnarOutput = true))
    } else {
      exec
    }
  }

  private def plainColumnsOf(prediction: PredictExpression, child: SparkPlan): Boolean =
    prediction.children.forall {
      case attribute: AttributeReference => child.outputSet.contains(attribute)
      case _ => false
    }
}

/** Finding batch-prediction nodes in an executed plan, adaptive query execution included. */
object BatchPredictNodes extends org.apache.spark.sql.execution.adaptive.AdaptiveSparkPlanHelper {
  def in(plan: SparkPlan): java.util.List[BatchPredictExec] =
    collect(plan) { case node: BatchPredictExec => node }.asJava

  /** The model calls below `node` in its stage: up to the next exchange or query stage. */
  private def sameStage(plan: SparkPlan): Seq[BatchPredictExec] = plan match {
    case _: org.apache.spark.sql.execution.exchange.Exchange => Nil
    case _: org.apache.spark.sql.execution.adaptive.QueryStageExec => Nil
    case call: BatchPredictExec => call +: call.children.flatMap(sameStage)
    case other => other.children.flatMap(sameStage)
  }

  /**
   * Why `node` cannot get its stage resources: another model call in the same stage asks for
   * different ones, and Spark gives a stage one profile (its own error names neither model).
   */
  def conflictInStage(node: BatchPredictExec): Option[String] = {
    val resources = node.prediction.binding.stageResources
    node.children.flatMap(sameStage).map(_.prediction.binding)
      .find(other => !other.stageResources.isEmpty && other.stageResources != resources)
      .map { other =>
        s"Cannot run models '${other.modelName}' and '${node.prediction.binding.modelName}' in one stage with" +
          s" different stage resources [${other.stageResources}] and [$resources]: Spark runs a stage with" +
          " one resource profile. Put a shuffle between the calls (repartition the result of the first)," +
          " give both models the same spark.sparkinfer.model.<name>.stage.* settings, or set" +
          " spark.scheduler.resource.profileMergeConflicts=true to let Spark merge them (the larger of" +
          " each request)"
      }
  }
}

package io.github.sparkinfer.spark.plan

import io.github.sparkinfer.spark.batch.BatchPredictionRunner
import io.github.sparkinfer.spark.batch.ColumnarPredictionRunner
import io.github.sparkinfer.spark.batch.ModelCall
import io.github.sparkinfer.spark.batch.PredictionMetrics
import io.github.sparkinfer.spark.sql.EmbedExpression
import io.github.sparkinfer.spark.sql.ModelInvocation
import io.github.sparkinfer.spark.sql.PredictExpression
import io.github.sparkinfer.spark.text.TextEmbeddingRunner

import scala.jdk.CollectionConverters._

import io.github.sparkinfer.partitioning.StageResourceProfiles

import org.apache.spark.rdd.RDD
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.{Attribute, AttributeReference, AttributeSet, BindReferences, BoundReference, UnsafeProjection}
import org.apache.spark.sql.catalyst.rules.Rule
import org.apache.spark.sql.execution.{ColumnarRule, ColumnarToRowExec, SQLExecution, SparkPlan, UnaryExecNode}
import org.apache.spark.sql.execution.metric.{SQLMetric, SQLMetrics}
import org.apache.spark.sql.types.StructType

/**
 * Physical node of [[BatchPredict]]: each partition goes through a runner that calls the model once
 * per batch on the session this executor's cache holds. With `columnarInput` its child produces
 * columnar batches (a vectorized scan) and the arguments are read straight from the column vectors.
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
    columnarInput: Boolean = false) extends UnaryExecNode {

  override def output: Seq[Attribute] = passThrough :+ result

  override def producedAttributes: AttributeSet = AttributeSet(result)

  override def nodeName: String = if (columnarInput) "BatchPredict (columnar input)" else "BatchPredict"

  private def isText: Boolean = prediction.isInstanceOf[EmbedExpression]

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
      "tokenizerWaitTime" -> SQLMetrics.createNanoTimingMetric(sparkContext, "time waiting for the tokenizer"))
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

  /**
   * Gives the stage the binding's resource profile. Where Spark cannot (local mode) the stage keeps
   * the default profile, with a WARN and the "stage resources not applied" metric.
   */
  private def withStageResources(rdd: RDD[InternalRow]): RDD[InternalRow] = {
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
    val binding = prediction.binding
    val arguments = prediction.children
    val childOutput = child.output
    val kept = passThrough
    val outputAttributes = output
    val predictionMetrics = new PredictionMetrics(metrics.asJava, deviceBindings, batchLatencies)

    if (isText) {
      return child.execute().mapPartitions { rows =>
        val bound = BindReferences.bindReference(arguments.head, childOutput)
        val (ordinal, argumentProjection) = bound match {
          case reference: BoundReference => (reference.ordinal, null)
          case other => (0, UnsafeProjection.create(Seq(other)))
        }
        val holdProjection = if (kept == childOutput) null else UnsafeProjection.create(kept, childOutput)
        val outputProjection = UnsafeProjection.create(outputAttributes, kept :+ result)
        new TextEmbeddingRunner(binding, ordinal, argumentProjection, holdProjection, outputProjection,
          predictionMetrics, rows.asJava).asScala
      }
    }
    val inputBinding = binding.bindInputs(arguments.map(_.dataType).asJava)
    val argumentStruct = arguments.head.dataType match {
      case struct: StructType if arguments.size == 1 => struct
      case _ => null
    }

    if (columnarInput) {
      child.executeColumnar().mapPartitions { batches =>
        val ordinals = arguments.map(BindReferences.bindReference(_, childOutput))
          .map(_.asInstanceOf[BoundReference].ordinal).toArray
        val call = new ModelCall(binding, inputBinding, argumentStruct, ordinals, predictionMetrics)
        val outputProjection = UnsafeProjection.create(outputAttributes, childOutput :+ result)
        new ColumnarPredictionRunner(call, outputProjection, predictionMetrics, batches.asJava).asScala
      }
    } else {
      child.execute().mapPartitions { rows =>
        val bound = arguments.map(BindReferences.bindReference(_, childOutput))
        // Plain column arguments are read in place; computed ones are projected first.
        val (ordinals, argumentProjection) =
          if (bound.forall(_.isInstanceOf[BoundReference])) {
            (bound.map(_.asInstanceOf[BoundReference].ordinal).toArray, null)
          } else {
            (bound.indices.toArray, UnsafeProjection.create(bound))
          }
        val call = new ModelCall(binding, inputBinding, argumentStruct, ordinals, predictionMetrics)
        // Rows are held only with the columns used above; the model's own inputs are read first.
        val holdProjection = if (kept == childOutput) null else UnsafeProjection.create(kept, childOutput)
        val outputProjection = UnsafeProjection.create(outputAttributes, kept :+ result)
        new BatchPredictionRunner(
          call, argumentProjection, holdProjection, outputProjection, predictionMetrics, rows.asJava).asScala
      }
    }
  }

  override protected def withNewChildInternal(newChild: SparkPlan): BatchPredictExec =
    copy(child = newChild)
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
      case exec @ BatchPredictExec(prediction: PredictExpression, _, _, ColumnarToRowExec(columnar), false)
          if plainColumnsOf(prediction, columnar) =>
        exec.copy(child = columnar, columnarInput = true)
      case exec @ BatchPredictExec(prediction: PredictExpression, _, _, child, false)
          if child.supportsColumnar && child.supportsRowBased && plainColumnsOf(prediction, child) =>
        exec.copy(columnarInput = true)
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

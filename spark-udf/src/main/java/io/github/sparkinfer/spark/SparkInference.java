package io.github.sparkinfer.spark;

import io.github.sparkinfer.spark.registry.ModelRegistry;
import io.github.sparkinfer.spark.sql.SessionBridge;
import io.github.sparkinfer.spark.sql.SessionInstaller;
import java.util.List;
import java.util.OptionalInt;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Entry points for Java and notebooks: register models, install sparkinfer into a running session,
 * and look at a model's inputs and outputs.
 *
 * <pre>{@code
 * SparkInference.install(spark);   // not needed with spark.sql.extensions=...SparkInferenceExtensions
 * SparkInference.register(spark, ModelSpec.builder("mlp").path("hdfs://nn/models/mlp.onnx").build());
 * spark.sql("SELECT id, predict('mlp', features) FROM t");
 * }</pre>
 */
public final class SparkInference {
  private SparkInference() {}

  /**
   * Adds predict() and model_info() and sparkinfer's planning to a session that is already running.
   * Idempotent.
   */
  public static void install(SparkSession spark) {
    SessionInstaller.install(spark);
  }

  /** Registers a model in the session; the same as the SET commands for its keys. */
  public static void register(SparkSession spark, ModelSpec spec) {
    String prefix = InferenceProperties.MODEL_PREFIX + spec.name();
    spark.conf().set(prefix + InferenceProperties.MODEL_PATH_SUFFIX, spec.path());
    setOrUnset(spark, prefix + InferenceProperties.MODEL_BATCH_SIZE_SUFFIX, spec.batchSize());
    setOrUnset(spark, prefix + InferenceProperties.MODEL_INTRA_OP_THREADS_SUFFIX, spec.intraOpThreads());
    if (spec.outputs().isEmpty()) {
      spark.conf().unset(prefix + InferenceProperties.MODEL_OUTPUTS_SUFFIX);
    } else {
      spark.conf().set(prefix + InferenceProperties.MODEL_OUTPUTS_SUFFIX, String.join(",", spec.outputs()));
    }
  }

  /**
   * Removes every key of a model from the session ({@code spark.sparkinfer.model.<name>.*}: path,
   * batch size, tokenizer, precision, stage resources, ...), so that a model registered again
   * under the name starts from the defaults.
   */
  public static void unregister(SparkSession spark, String name) {
    String prefix = InferenceProperties.MODEL_PREFIX + name + ".";
    for (String key : JavaCollections.asJava(spark.conf().getAll()).keySet()) {
      if (key.startsWith(prefix)) {
        spark.conf().unset(key);
      }
    }
  }

  /** Names of the models registered in the session, sorted. */
  public static List<String> registeredModels(SparkSession spark) {
    return withSession(spark, ModelRegistry::registeredModels);
  }

  /** The model's inputs and outputs, the same rows as {@code SELECT * FROM model_info('name')}. */
  public static Dataset<Row> modelInfo(SparkSession spark, String name) {
    return withSession(
        spark,
        () -> {
          var binding = ModelRegistry.resolve(name, OptionalInt.empty(), List.of());
          return SessionBridge.dataFrame(spark, io.github.sparkinfer.spark.sql.SqlFunctions.modelInfo(binding));
        });
  }

  /**
   * Where each task of an executed query ran its models: one record per task and model call,
   * {@code partition=<p> executor=<id> assigned=<Spark's gpu/npu addresses or none>
   * requested=<device> bound=<device> provider=<ONNX Runtime provider> threads=<intra-op threads of
   * the session> fallback=<reason or none>}, with {@code pooling=<graph or java>} for text models.
   * The driver keeps a bounded summary: past 1,024 tasks of a node only the first are listed
   * ({@link #deviceBindingSummary} counts them all). Run the query first (collect, write, count).
   */
  public static List<String> deviceBindings(Dataset<?> executed) {
    List<String> records = new java.util.ArrayList<>();
    for (io.github.sparkinfer.spark.plan.BatchPredictExec node :
        io.github.sparkinfer.spark.plan.BatchPredictNodes.in(executed.queryExecution().executedPlan())) {
      records.addAll(node.deviceBindings().value().records());
    }
    return records;
  }

  /**
   * Where the tasks of an executed query ran their models, one line per distinct binding with its
   * task count: {@code tasks=<n> executor=<id> assigned=... fallback=<reason or none>} (the fields
   * of {@link #deviceBindings} but the partition), and {@code tasks=<n> others} past 64 distinct
   * bindings of a node.
   */
  public static List<String> deviceBindingSummary(Dataset<?> executed) {
    List<String> lines = new java.util.ArrayList<>();
    for (io.github.sparkinfer.spark.plan.BatchPredictExec node :
        io.github.sparkinfer.spark.plan.BatchPredictNodes.in(executed.queryExecution().executedPlan())) {
      lines.addAll(node.deviceBindings().value().summary());
    }
    return lines;
  }

  /**
   * Per-batch model run times of an executed query's model calls, over all their tasks: {@code
   * [batches, p50 ms, p99 ms]} (the percentiles within about 9 %; NaN when no batch ran).
   */
  public static double[] batchLatency(Dataset<?> executed) {
    io.github.sparkinfer.spark.batch.BatchLatencies all = new io.github.sparkinfer.spark.batch.BatchLatencies();
    for (io.github.sparkinfer.spark.plan.BatchPredictExec node :
        io.github.sparkinfer.spark.plan.BatchPredictNodes.in(executed.queryExecution().executedPlan())) {
      all.merge(node.batchLatencies());
    }
    return new double[] {all.count(), all.percentileMillis(0.5), all.percentileMillis(0.99)};
  }

  /** Runs registry code with this session's SQL configuration active, as analysis does. */
  static <T> T withSession(SparkSession spark, java.util.function.Supplier<T> action) {
    return org.apache.spark.sql.internal.SQLConf.withExistingConf(
        SessionBridge.conf(spark),
        new scala.runtime.AbstractFunction0<T>() {
          @Override
          public T apply() {
            SparkSession previous = SessionBridge.activeSession();
            SessionBridge.setActiveSession(spark);
            try {
              return action.get();
            } finally {
              SessionBridge.setActiveSession(previous);
            }
          }
        });
  }

  private static void setOrUnset(SparkSession spark, String key, OptionalInt value) {
    if (value.isPresent()) {
      spark.conf().set(key, value.getAsInt());
    } else {
      spark.conf().unset(key);
    }
  }
}

package io.github.sparkinfer.spark.batch;

import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.registry.CompressedModels;
import io.github.sparkinfer.spark.registry.DevicePooling;
import io.github.sparkinfer.spark.registry.ModelBinding;

import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import io.github.sparkinfer.device.Device;
import io.github.sparkinfer.device.DeviceFallback;
import io.github.sparkinfer.device.DeviceResolver;
import io.github.sparkinfer.device.DeviceRunLimiter;
import io.github.sparkinfer.device.ExecutionProviderOptions;
import io.github.sparkinfer.device.LoadedModel;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.ModelLoadException;
import io.github.sparkinfer.device.ModelRun;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.device.SchedulingProperties;
import io.github.sparkinfer.device.SessionSettings;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.deploy.SparkHadoopUtil;

/**
 * A task's access to the executor's shared sessions: the session a binding runs on (on the task's
 * device), a run under the device's run limit, and the executor's Hadoop configuration.
 */
public final class ExecutorSessions {
  private ExecutorSessions() {}

  /**
   * The executor's shared session for this model on this task's device (Spark's assignment, else
   * spark.sparkinfer.device), checked against the plan's signature. Records the binding decision
   * and counts a fallback.
   */
  public static LoadedModel acquire(ModelBinding binding, PredictionMetrics metrics) {
    return acquire(binding, metrics, null);
  }

  /** A model made on the executor from the registered one (a decode loop around a decoder, say). */
  public interface Derivation {
    /** The derived model's source, made from {@code source} (the registered model, compressed as asked). */
    ModelSource source(ModelSource source, Configuration configuration);
  }

  /**
   * As {@link #acquire(ModelBinding, PredictionMetrics)}, the session being {@code derivation}'s model
   * (null: the registered model itself). A derived model's signature is its own: not checked
   * against the plan's, which describes the registered model.
   */
  public static LoadedModel acquire(ModelBinding binding, PredictionMetrics metrics, Derivation derivation) {
    Map<String, String> settings = deviceSettings(binding);
    TaskContext task = TaskContext.get();
    Device requested = requestedDevice(binding, settings);
    int threads = binding.intraOpThreads();
    if (threads <= 0) {
      threads = task == null ? 1 : Math.max(task.cpus(), 1);
    }
    SessionSettings sessionSettings = SessionSettings.builder()
        .intraOpThreads(threads)
        .device(requested)
        .providerOptions(ExecutionProviderOptions.fromSettings(settings))
        .fallback(DeviceFallback.fromSettings(settings))
        .build();
    LoadedModel model;
    boolean pooled = derivation == null && DevicePooling.applies(binding, requested);
    try {
      Configuration configuration = hadoopConfiguration();
      String precision = CompressedModels.effective(binding.precision(), requested);
      ModelSource source = CompressedModels.source(binding.source(), precision, binding.int8Scheme(),
          binding.pruneRatio(), configuration);
      if (pooled) {
        source = DevicePooling.source(source, binding, configuration);
      } else if (derivation != null) {
        source = derivation.source(source, configuration);
      }
      if (task != null) {
        // Leased as it is returned: no eviction (another model's load) can close it before the task has it.
        ModelCache.Lease lease = ModelCache.shared().acquireLeased(source, sessionSettings, configuration);
        task.addTaskCompletionListener((org.apache.spark.util.TaskCompletionListener) context -> lease.close());
        model = lease.model();
      } else {
        model = ModelCache.shared().acquire(source, sessionSettings, configuration);
      }
    } catch (ModelLoadException e) {
      throw new PredictionException(e.getMessage(), e);
    }
    if (derivation == null
        && !(pooled ? DevicePooling.planned(model.signature()) : model.signature()).equals(binding.signature())) {
      throw new PredictionException(
          "Model '" + binding.modelName() + "' at " + binding.source().uri() + " changed after the"
              + " query was planned: it was planned for " + binding.signature() + " but the file now"
              + " has " + model.signature() + ". Run the query again");
    }
    if (model.isFallback()) {
      metrics.fallbackTasks.add(1);
    }
    metrics.deviceBindings.add(describeBinding(task, settings, model)
        + (binding.isTextModel() ? " pooling=" + (pooled ? "graph" : "java") : ""));
    return model;
  }

  /** The device this task asks for model {@code binding}: Spark's assignment, else spark.sparkinfer.device. */
  public static Device requestedDevice(ModelBinding binding) {
    return requestedDevice(binding, deviceSettings(binding));
  }

  private static Device requestedDevice(ModelBinding binding, Map<String, String> settings) {
    try {
      return DeviceResolver.resolve(TaskContext.get(), settings);
    } catch (IllegalArgumentException e) {
      throw new PredictionException("Cannot run model '" + binding.modelName() + "': " + e.getMessage(), e);
    }
  }

  /** The executor's device keys with the plan's over them, except the application's: those only the SparkConf sets. */
  private static Map<String, String> deviceSettings(ModelBinding binding) {
    Map<String, String> settings = new HashMap<>();
    SparkEnv environment = SparkEnv.get();
    if (environment != null) {
      for (scala.Tuple2<String, String> entry : environment.conf().getAllWithPrefix(SchedulingProperties.PREFIX)) {
        settings.put(SchedulingProperties.PREFIX + entry._1(), entry._2());
      }
    }
    settings.putAll(io.github.sparkinfer.spark.config.ApplicationSettings.withoutApplicationKeys(binding.deviceSettings()));
    return settings;
  }

  private static String describeBinding(TaskContext task, Map<String, String> settings, LoadedModel model) {
    String assigned = "none";
    if (task != null) {
      String gpu = settings.getOrDefault(SchedulingProperties.GPU_RESOURCE, SchedulingProperties.GPU_RESOURCE_DEFAULT);
      String npu = settings.getOrDefault(SchedulingProperties.NPU_RESOURCE, SchedulingProperties.NPU_RESOURCE_DEFAULT);
      Map<String, org.apache.spark.resource.ResourceInformation> resources = task.resourcesJMap();
      org.apache.spark.resource.ResourceInformation information =
          resources.containsKey(gpu) ? resources.get(gpu) : resources.get(npu);
      if (information != null) {
        assigned = String.join(",", information.addresses());
      }
    }
    SparkEnv environment = SparkEnv.get();
    return "partition=" + (task == null ? -1 : task.partitionId())
        + " executor=" + (environment == null ? "none" : environment.executorId())
        + " assigned=" + assigned
        + " requested=" + model.requestedDevice()
        + " bound=" + model.device()
        + " provider=" + model.executionProvider()
        + " threads=" + model.settings().intraOpThreads()
        + " fallback=" + model.fallbackReason().orElse("none").replace('\n', ' ');
  }

  /**
   * Runs the session under this device's run limit (spark.sparkinfer.device.concurrentRuns) and
   * records the wait for a permit and the run itself apart (metrics deviceWaitTime, modelTime and
   * the batch latencies), so a profile tells queueing for the device from time on it. The returned
   * run holds the session until the caller closes it, after reading the outputs. {@code alone}: the
   * run waits until no other run holds the device and holds it alone (a retry after running out of
   * device memory beside other runs, see {@link RetryInHalves}).
   */
  @SuppressWarnings("try")
  public static ModelRun run(
      LoadedModel model,
      Map<String, ? extends ai.onnxruntime.OnnxTensorLike> inputs,
      Set<String> requested,
      Map<String, ? extends OnnxValue> pinned,
      PredictionMetrics metrics,
      boolean alone) throws OrtException {
    long asked = System.nanoTime();
    DeviceRunLimiter limiter = DeviceRunLimiter.shared();
    try (DeviceRunLimiter.Permit permit = alone ? limiter.acquireAlone(model.device()) : limiter.acquire(model.device())) {
      long start = System.nanoTime();
      metrics.deviceWaitTime.add(start - asked);
      ModelRun run = model.run(inputs, requested, pinned);
      long elapsed = System.nanoTime() - start;
      metrics.modelTime.add(elapsed);
      metrics.batchLatencies.add(elapsed);
      return run;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new PredictionException("Interrupted while waiting to run model on " + model.device(), e);
    } catch (IllegalStateException e) {
      throw new PredictionException(e.getMessage(), e);
    }
  }

  /**
   * Whether other runs may share {@code model}'s device with a run of this JVM (so a run out of
   * device memory may have lost it to them): an accelerator with more than one run permit.
   */
  static boolean sharesDevice(LoadedModel model) {
    return model.device().isAccelerator() && DeviceRunLimiter.shared().concurrentRuns() > 1;
  }

  /**
   * The executor's Hadoop configuration (its SparkConf's spark.hadoop.* entries), built once per
   * SparkConf and shared read-only: building one parses Hadoop's XML resources, and doing that for
   * every task took a quarter of predict()'s task time on a 16-core GPU host (JFR, GpuBenchmark).
   * An executor's SparkConf does not change once it runs; a new SparkContext in the same JVM brings a
   * new SparkConf, and with it a new configuration. Callers must not modify it.
   */
  public static Configuration hadoopConfiguration() {
    SparkEnv environment = SparkEnv.get();
    if (environment == null) {
      return new Configuration();
    }
    org.apache.spark.SparkConf conf = environment.conf();
    HadoopConfiguration cached = hadoopConfiguration;
    if (cached == null || cached.sparkConf != conf) {
      cached = new HadoopConfiguration(conf, SparkHadoopUtil.get().newConfiguration(conf));
      hadoopConfiguration = cached;
    }
    return cached.hadoop;
  }

  private static volatile HadoopConfiguration hadoopConfiguration;

  /** A Hadoop configuration and the SparkConf it was built from (compared by identity). */
  private static final class HadoopConfiguration {
    final org.apache.spark.SparkConf sparkConf;
    final Configuration hadoop;

    HadoopConfiguration(org.apache.spark.SparkConf sparkConf, Configuration hadoop) {
      this.sparkConf = sparkConf;
      this.hadoop = hadoop;
    }
  }
}

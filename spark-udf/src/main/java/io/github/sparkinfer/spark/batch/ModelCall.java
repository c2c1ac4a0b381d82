package io.github.sparkinfer.spark.batch;

import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.registry.CompressedModels;
import io.github.sparkinfer.spark.registry.InputBinding;
import io.github.sparkinfer.spark.registry.InputLayout;
import io.github.sparkinfer.spark.registry.ModelBinding;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.device.Device;
import io.github.sparkinfer.device.DeviceFallback;
import io.github.sparkinfer.device.DeviceResolver;
import io.github.sparkinfer.device.DeviceRunLimiter;
import io.github.sparkinfer.device.ExecutionProviderOptions;
import io.github.sparkinfer.device.LoadedModel;
import io.github.sparkinfer.device.ModelLoadException;
import io.github.sparkinfer.device.ModelRun;
import io.github.sparkinfer.device.SchedulingProperties;
import io.github.sparkinfer.device.ModelCache;
import io.github.sparkinfer.device.OrtEnvironments;
import io.github.sparkinfer.device.SessionSettings;
import io.github.sparkinfer.device.TensorSpec;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.deploy.SparkHadoopUtil;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.SpecializedGetters;
import org.apache.spark.sql.catalyst.expressions.SpecificInternalRow;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;

/**
 * One task's calls of one model: the direct input and output buffers of a batch, the shared
 * session, and the result of each row. Rows are added one by one ({@link #add}); {@link #run} then
 * calls the model once for all of them; {@link #result} gives a row's result. Rows with a null
 * argument take no place in the model's batch and get a null result.
 */
public final class ModelCall {
  private final ModelBinding binding;
  private final PredictionMetrics metrics;
  private final int[] argumentOrdinals;
  private final boolean byStructField;
  private final int structFieldCount;
  private final InputBuffer[] inputs;
  private final OutputBuffer[] outputs;
  private final boolean fixedBatch;
  private final SpecificInternalRow resultRow;
  private final SpecificInternalRow structResult;
  private int modelRows;
  private LoadedModel loaded;

  /**
   * @param argumentOrdinals where each call argument is in the rows passed to {@link #add}
   * @param argumentStruct the type of the only argument when it is a struct mapped by field name
   */
  public ModelCall(
      ModelBinding binding,
      InputBinding inputBinding,
      StructType argumentStruct,
      int[] argumentOrdinals,
      PredictionMetrics metrics) {
    this.binding = binding;
    this.metrics = metrics;
    this.argumentOrdinals = argumentOrdinals;
    this.fixedBatch =
        binding.signature().inputs().stream().anyMatch(spec -> spec.rank() > 0 && spec.dimension(0) > 0);
    this.byStructField = inputBinding.inputs().get(0).structFieldOrdinal() >= 0;
    this.structFieldCount = argumentStruct == null ? 0 : argumentStruct.size();
    int batchSize = binding.batchSize();
    List<InputLayout> layouts = inputBinding.inputs();
    this.inputs = new InputBuffer[layouts.size()];
    for (int i = 0; i < inputs.length; i++) {
      InputLayout layout = layouts.get(i);
      int ordinal = byStructField ? layout.structFieldOrdinal() : argumentOrdinals[layout.argumentOrdinal()];
      inputs[i] = new InputBuffer(binding.modelName(), layout, ordinal, batchSize);
    }
    List<TensorSpec> selected = binding.selectedOutputs();
    this.outputs = new OutputBuffer[selected.size()];
    for (int i = 0; i < outputs.length; i++) {
      outputs[i] = new OutputBuffer(binding.modelName(), selected.get(i), batchSize);
    }
    DataType resultType = binding.resultType();
    this.resultRow = new SpecificInternalRow(new StructType().add("result", resultType));
    this.structResult = outputs.length > 1 ? new SpecificInternalRow((StructType) resultType) : null;
  }

  int batchSize() {
    return binding.batchSize();
  }

  /** Starts a new batch. */
  void clear() {
    modelRows = 0;
    for (InputBuffer buffer : inputs) {
      buffer.startBatch();
    }
  }

  /**
   * Writes a row's arguments into the batch; returns the row's position in the model's batch, or
   * -1 when an argument is null.
   */
  int add(InternalRow arguments) {
    SpecializedGetters source = arguments;
    if (byStructField) {
      int structOrdinal = argumentOrdinals[0];
      if (arguments.isNullAt(structOrdinal)) {
        metrics.nullRows.add(1);
        return -1;
      }
      source = arguments.getStruct(structOrdinal, structFieldCount);
    }
    for (InputBuffer buffer : inputs) {
      if (buffer.isNull(source)) {
        metrics.nullRows.add(1);
        return -1;
      }
    }
    for (InputBuffer buffer : inputs) {
      buffer.write(source, modelRows, binding.batchSize());
    }
    return modelRows++;
  }

  /** Runs the model once over the rows added since {@link #clear}, if there are any. */
  public void run() {
    if (modelRows == 0) {
      return;
    }
    int tensorRows = fixedBatch ? binding.batchSize() : modelRows;
    if (tensorRows > modelRows) {
      for (InputBuffer buffer : inputs) {
        buffer.zeroRows(modelRows, tensorRows);
      }
    }
    LoadedModel model = loaded();
    OrtEnvironment environment = OrtEnvironments.get();
    Map<String, Long> dimensions = new HashMap<>();
    Map<String, OnnxTensor> inputTensors = new LinkedHashMap<>();
    Map<String, OnnxTensor> pinned = new LinkedHashMap<>();
    Set<String> requested = new LinkedHashSet<>();
    try {
      for (InputBuffer buffer : inputs) {
        buffer.recordDimensions(tensorRows, dimensions);
        inputTensors.put(buffer.layout().input().name(), buffer.tensor(environment, tensorRows));
      }
      for (OutputBuffer output : outputs) {
        if (output.prepare(tensorRows, dimensions)) {
          pinned.put(output.name(), output.pinnedTensor(environment));
        } else {
          requested.add(output.name());
        }
      }
      long start = System.nanoTime();
      try (ModelRun result = run(model, inputTensors, requested, pinned)) {
        for (OutputBuffer output : outputs) {
          if (!pinned.containsKey(output.name())) {
            OnnxValue value = result.result().get(output.name()).orElseThrow();
            output.collect(value, tensorRows);
          }
        }
      }
      metrics.modelTime.add(System.nanoTime() - start);
      metrics.batches.add(1);
      metrics.modelRows.add(modelRows);
    } catch (OrtException e) {
      throw new PredictionException(
          "Model '" + binding.modelName() + "' failed on a batch of " + tensorRows + " rows with "
              + describeShapes(tensorRows) + ": " + e.getMessage() + ". The model's inputs are "
              + binding.describeInputs() + "; check that the columns' values fit them",
          e);
    } finally {
      inputTensors.values().forEach(OnnxTensor::close);
      pinned.values().forEach(OnnxTensor::close);
    }
  }

  /**
   * The one-field row holding the result at {@code position} (null for -1). Reused: read it
   * before asking for the next.
   */
  InternalRow result(int position) {
    if (position < 0) {
      resultRow.setNullAt(0);
    } else if (structResult == null) {
      outputs[0].read(position, resultRow, 0);
    } else {
      for (int i = 0; i < outputs.length; i++) {
        outputs[i].read(position, structResult, i);
      }
      resultRow.update(0, structResult);
    }
    return resultRow;
  }

  private String describeShapes(int rows) {
    StringBuilder text = new StringBuilder();
    for (InputBuffer buffer : inputs) {
      if (text.length() > 0) {
        text.append(", ");
      }
      text.append("input '").append(buffer.layout().input().name()).append("' shape ")
          .append(Arrays.toString(buffer.shape(rows)));
    }
    return text.toString();
  }

  private LoadedModel loaded() {
    if (loaded == null) {
      loaded = acquire(binding, metrics);
    }
    return loaded;
  }

  /**
   * The executor's shared session for this model on this task's device (Spark's assignment, else
   * spark.sparkinfer.device), checked against the plan's signature. Records the binding decision
   * and counts a fallback.
   */
  public static LoadedModel acquire(ModelBinding binding, PredictionMetrics metrics) {
    Map<String, String> settings = new HashMap<>();
    SparkEnv environment = SparkEnv.get();
    if (environment != null) {
      for (scala.Tuple2<String, String> entry : environment.conf().getAllWithPrefix(SchedulingProperties.PREFIX)) {
        settings.put(SchedulingProperties.PREFIX + entry._1(), entry._2());
      }
    }
    settings.putAll(binding.deviceSettings());
    TaskContext task = TaskContext.get();
    Device requested;
    try {
      requested = DeviceResolver.resolve(task, settings);
    } catch (IllegalArgumentException e) {
      throw new PredictionException("Cannot run model '" + binding.modelName() + "': " + e.getMessage(), e);
    }
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
    try {
      Configuration configuration = hadoopConfiguration();
      String precision = CompressedModels.effective(binding.precision(), requested);
      model = ModelCache.shared().acquire(
          CompressedModels.source(binding.source(), precision, binding.int8Scheme(), configuration), sessionSettings,
          configuration);
    } catch (ModelLoadException e) {
      throw new PredictionException(e.getMessage(), e);
    }
    if (!model.signature().equals(binding.signature())) {
      throw new PredictionException(
          "Model '" + binding.modelName() + "' at " + binding.source().uri() + " changed after the"
              + " query was planned: it was planned for " + binding.signature() + " but the file now"
              + " has " + model.signature() + ". Run the query again");
    }
    if (model.isFallback()) {
      metrics.fallbackTasks.add(1);
    }
    metrics.deviceBindings.add(describeBinding(task, settings, model));
    return model;
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
   * Runs the session under this device's run limit (spark.sparkinfer.device.concurrentRuns). The
   * returned run holds the session until the caller closes it, after reading the outputs.
   */
  @SuppressWarnings("try")
  public static ModelRun run(
      LoadedModel model,
      Map<String, ? extends ai.onnxruntime.OnnxTensorLike> inputs,
      Set<String> requested,
      Map<String, ? extends OnnxValue> pinned) throws OrtException {
    try (DeviceRunLimiter.Permit permit = DeviceRunLimiter.shared().acquire(model.device())) {
      return model.run(inputs, requested, pinned);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new PredictionException("Interrupted while waiting to run model on " + model.device(), e);
    } catch (IllegalStateException e) {
      throw new PredictionException(e.getMessage(), e);
    }
  }

  public static Configuration hadoopConfiguration() {
    SparkEnv environment = SparkEnv.get();
    return environment == null
        ? new Configuration()
        : SparkHadoopUtil.get().newConfiguration(environment.conf());
  }
}

package io.github.sparkinfer.spark.plan;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import io.github.sparkinfer.device.LoadedModel;
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
final class ModelCall {
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
  private OrtSession session;

  /**
   * @param argumentOrdinals where each call argument is in the rows passed to {@link #add}
   * @param argumentStruct the type of the only argument when it is a struct mapped by field name
   */
  ModelCall(
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
  void run() {
    if (modelRows == 0) {
      return;
    }
    int tensorRows = fixedBatch ? binding.batchSize() : modelRows;
    if (tensorRows > modelRows) {
      for (InputBuffer buffer : inputs) {
        buffer.zeroRows(modelRows, tensorRows);
      }
    }
    OrtSession model = session();
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
      try (OrtSession.Result result = model.run(inputTensors, requested, pinned)) {
        for (OutputBuffer output : outputs) {
          if (!pinned.containsKey(output.name())) {
            OnnxValue value = result.get(output.name()).orElseThrow();
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

  private OrtSession session() {
    if (session == null) {
      session = acquireSession(binding);
    }
    return session;
  }

  /** The executor's shared session for this model, checked against the plan's signature. */
  static OrtSession acquireSession(ModelBinding binding) {
    LoadedModel model =
        ModelCache.shared().acquire(binding.source(), sessionSettings(binding), hadoopConfiguration());
    if (!model.signature().equals(binding.signature())) {
      throw new PredictionException(
          "Model '" + binding.modelName() + "' at " + binding.source().uri() + " changed after the"
              + " query was planned: it was planned for " + binding.signature() + " but the file now"
              + " has " + model.signature() + ". Run the query again");
    }
    return model.session();
  }

  private static SessionSettings sessionSettings(ModelBinding binding) {
    int threads = binding.intraOpThreads();
    if (threads <= 0) {
      TaskContext task = TaskContext.get();
      threads = task == null ? 1 : Math.max(task.cpus(), 1);
    }
    return SessionSettings.builder().intraOpThreads(threads).build();
  }

  static Configuration hadoopConfiguration() {
    SparkEnv environment = SparkEnv.get();
    return environment == null
        ? new Configuration()
        : SparkHadoopUtil.get().newConfiguration(environment.conf());
  }
}

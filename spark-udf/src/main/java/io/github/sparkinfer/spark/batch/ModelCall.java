package io.github.sparkinfer.spark.batch;

import io.github.sparkinfer.spark.PredictionException;
import io.github.sparkinfer.spark.registry.InputBinding;
import io.github.sparkinfer.spark.registry.InputLayout;
import io.github.sparkinfer.spark.registry.ModelBinding;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import io.github.sparkinfer.device.LoadedModel;
import io.github.sparkinfer.device.ModelRun;
import io.github.sparkinfer.device.OrtEnvironments;
import io.github.sparkinfer.device.TensorSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.SpecializedGetters;
import org.apache.spark.sql.catalyst.expressions.SpecificInternalRow;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * One task's calls of one model: the direct input and output buffers of a batch, the shared
 * session, and the result of each row. Rows are added one by one ({@link #add}); {@link #run} then
 * calls the model once for all of them; {@link #result} gives a row's result. Rows with a null
 * argument take no place in the model's batch and get a null result.
 *
 * <p>A row the model cannot take goes by the binding's row error policy ({@link RowErrors}): one
 * whose values do not fit an input is known as it is added; one that ONNX Runtime rejects is found
 * by the shared retry ({@link RetryInHalves}), so the batch's other rows are still computed (and
 * under fail, the error names the row).
 */
public final class ModelCall {
  /** {@link #add}'s position codes below this are rows rejected as they were added. */
  private static final int REJECTED = -2;

  private final ModelBinding binding;
  private final PredictionMetrics metrics;
  private final int[] argumentOrdinals;
  private final boolean byStructField;
  private final int structFieldCount;
  private final InputBuffer[] inputs;
  private final OutputBuffer[] outputs;
  private final boolean fixedBatch;
  private final ResultRow result;
  private final SpecificInternalRow structResult;
  private final RowErrors rowErrors;
  private long[] rowOfPosition = new long[InputBuffer.INITIAL_ROWS];
  private String[] positionErrors = new String[InputBuffer.INITIAL_ROWS];
  private long peakBufferBytes;
  private long batchRowLimit;
  private long batchRowBytes = -1;
  private final List<String> addErrors = new ArrayList<>();
  private boolean anyPositionError;
  private long rowsAdded;
  private int modelRows;
  private LoadedModel loaded;
  private RetryInHalves retry;

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
      inputs[i] = new InputBuffer(binding.modelName(), layout, ordinal, batchSize, binding.maxBatchBytes());
    }
    List<TensorSpec> selected = binding.selectedOutputs();
    this.outputs = new OutputBuffer[selected.size()];
    for (int i = 0; i < outputs.length; i++) {
      outputs[i] = new OutputBuffer(binding.modelName(), selected.get(i), batchSize);
    }
    DataType valueType = binding.valueType();
    this.result = new ResultRow(binding, valueType);
    this.structResult = outputs.length > 1 ? new SpecificInternalRow((StructType) valueType) : null;
    this.rowErrors = new RowErrors(binding, metrics);
    this.batchRowLimit = binding.batchSize();
  }

  int batchSize() {
    return binding.batchSize();
  }

  /** Starts a new batch. */
  void clear() {
    modelRows = 0;
    batchRowLimit = loaded == null ? binding.batchSize() : deviceRowLimit();
    batchRowBytes = -1;  // known once the batch's first row sets any dynamic length
    addErrors.clear();
    if (anyPositionError) {
      Arrays.fill(positionErrors, null);
      anyPositionError = false;
    }
    for (InputBuffer buffer : inputs) {
      buffer.startBatch();
    }
  }

  /**
   * Writes a row's arguments into the batch; returns the row's position in the model's batch, -1
   * when an argument is null, or a code below -1 when the row is rejected (onError=null).
   */
  int add(InternalRow arguments) {
    return add(arguments, -1);
  }

  /**
   * The columns of the columnar batch the next rows come from (null: rows of any other kind), so
   * that inputs that can be copied from column vectors in bulk are ({@link InputBuffer#useColumns}).
   */
  void useColumns(ColumnarBatch batch) {
    if (byStructField) {
      return;
    }
    ColumnVector[] columns = null;
    if (batch != null) {
      columns = new ColumnVector[batch.numCols()];
      for (int i = 0; i < columns.length; i++) {
        columns[i] = batch.column(i);
      }
    }
    for (InputBuffer buffer : inputs) {
      buffer.useColumns(columns);
    }
  }

  /** As {@link #add(InternalRow)}, for row {@code columnRow} of the batch given to {@link #useColumns}. */
  int add(InternalRow arguments, int columnRow) {
    if (loaded == null) {
      // The first row binds the session: its device sets the batch size when none is set.
      loaded();
      batchRowLimit = deviceRowLimit();
    }
    long row = rowsAdded++;
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
    try {
      for (InputBuffer buffer : inputs) {
        buffer.write(source, modelRows, binding.batchSize(), columnRow);
      }
    } catch (PredictionException e) {
      for (InputBuffer buffer : inputs) {
        buffer.dropRow(modelRows);
      }
      if (modelRows == 0) {
        // A rejected first row must not set a dynamic length for the rows after it.
        for (InputBuffer buffer : inputs) {
          buffer.startBatch();
        }
      }
      addErrors.add(rowErrors.reject(row, e.getMessage(), e));
      return REJECTED - (addErrors.size() - 1);
    }
    if (modelRows == rowOfPosition.length) {
      int grown = (int) Math.min(binding.batchSize(), 2L * rowOfPosition.length);
      rowOfPosition = Arrays.copyOf(rowOfPosition, grown);
      positionErrors = Arrays.copyOf(positionErrors, grown);
    }
    rowOfPosition[modelRows] = row;
    return modelRows++;
  }

  /**
   * Whether the batch is full: batchSize rows, or buffers at the batch byte budget
   * (spark.sparkinfer.maxBatchBytes) for rows whose size only their values tell.
   */
  boolean full() {
    // Asked before every row: the limits are worked out once per batch (a profile on the GPU host
    // found 11 % of predict()'s task time here when they were worked out per row).
    if (modelRows >= batchRowLimit) {
      return true;
    }
    if (modelRows == 0) {
      return false;
    }
    if (batchRowBytes < 0) {
      long bytes = 0;
      for (InputBuffer buffer : inputs) {
        bytes += buffer.rowBytes();
      }
      for (OutputBuffer output : outputs) {
        bytes += output.rowBytes();
      }
      batchRowBytes = bytes;
    }
    return modelRows * batchRowBytes >= binding.maxBatchBytes();
  }

  /** Runs the model once over the rows added since {@link #clear}, if there are any. */
  public void run() {
    for (InputBuffer buffer : inputs) {
      buffer.flush();
    }
    if (modelRows == 0) {
      return;
    }
    if (fixedBatch && modelRows < binding.batchSize()) {
      for (InputBuffer buffer : inputs) {
        buffer.zeroRows(modelRows, binding.batchSize());
      }
    }
    retry().run(parts, modelRows);
    recordBufferBytes();
  }

  /** The largest the task's input and output buffers have been: memory follows the rows, not the setting. */
  private void recordBufferBytes() {
    long bytes = 0;
    for (InputBuffer buffer : inputs) {
      bytes += buffer.capacity();
    }
    for (OutputBuffer output : outputs) {
      bytes += output.capacity();
    }
    if (bytes > peakBufferBytes) {
      peakBufferBytes = bytes;
      metrics.bufferBytes.set(bytes);
    }
  }

  /** This batch's rows for the shared retry: ranges of positions, a row's error kept by position. */
  private final RetryInHalves.Batch parts = new RetryInHalves.Batch() {
    @Override
    public void run(int from, int to, boolean whole, boolean alone) throws OrtException {
      runRows(from, to, whole, alone);
    }

    @Override
    public long memorySize(int from, int to) {
      return to - from;
    }

    @Override
    public String memoryUnit() {
      return "rows";
    }

    @Override
    public String describe(int position) {
      return rowErrors.describeRow(rowOfPosition[position]);
    }

    @Override
    public void reject(int position, OrtException e) {
      String reason = "Model '" + binding.modelName() + "' cannot take this row: " + e.getMessage() + ". Its"
          + " inputs are " + binding.describeInputs() + "; this row gave " + describeShapes(1);
      positionErrors[position] = rowErrors.reject(rowOfPosition[position], reason, e);
      anyPositionError = true;
    }
  };

  /**
   * Runs rows [from, to) of the batch. The whole batch ({@code whole}) runs on the buffers in place,
   * into pinned outputs where their shapes are known; a part (a retry) runs on a copy of its rows
   * and its outputs are copied to the rows' places.
   */
  private void runRows(int from, int to, boolean whole, boolean alone) throws OrtException {
    int rows = to - from;
    int tensorRows = fixedBatch ? binding.batchSize() : rows;
    LoadedModel model = loaded();
    OrtEnvironment environment = OrtEnvironments.get();
    Map<String, Long> dimensions = new HashMap<>();
    Map<String, OnnxTensor> inputTensors = new LinkedHashMap<>();
    Map<String, OnnxTensor> pinned = new LinkedHashMap<>();
    Set<String> requested = new LinkedHashSet<>();
    try {
      for (InputBuffer buffer : inputs) {
        buffer.recordDimensions(tensorRows, dimensions);
        inputTensors.put(buffer.layout().input().name(),
            whole ? buffer.tensor(environment, tensorRows) : buffer.tensor(environment, from, rows, tensorRows));
      }
      for (OutputBuffer output : outputs) {
        if (whole && output.prepare(tensorRows, dimensions)) {
          pinned.put(output.name(), output.pinnedTensor(environment));
        } else {
          requested.add(output.name());
        }
      }
      try (ModelRun result = ExecutorSessions.run(model, inputTensors, requested, pinned, metrics, alone)) {
        for (OutputBuffer output : outputs) {
          if (!pinned.containsKey(output.name())) {
            OnnxValue value = result.result().get(output.name()).orElseThrow();
            output.collect(value, tensorRows, rows, from);
          }
        }
      }
      metrics.batches.add(1);
      metrics.modelRows.add(rows);
    } finally {
      inputTensors.values().forEach(OnnxTensor::close);
      pinned.values().forEach(OnnxTensor::close);
    }
  }

  /**
   * The one-field row holding the result at {@code position} (null for -1 or a rejected row, with
   * its reason when the call reports errors). Reused: read it before asking for the next.
   */
  InternalRow result(int position) {
    String error = error(position);
    if (position == -1 || error != null) {
      return result.withoutValue(error);
    }
    if (structResult == null) {
      outputs[0].read(position, result.valueSlot(), 0);
    } else {
      for (int i = 0; i < outputs.length; i++) {
        outputs[i].read(position, structResult, i);
      }
      result.valueSlot().update(0, structResult);
    }
    return result.withValue();
  }

  /** The reason the row at {@code position} has no result, or null (a value, or a null argument). */
  String error(int position) {
    return position <= REJECTED ? addErrors.get(REJECTED - position)
        : position >= 0 && anyPositionError ? positionErrors[position] : null;
  }

  /** The output buffers of the batch that ran last, in the order of the result's fields. */
  OutputBuffer[] outputs() {
    return outputs;
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

  /** Rows per batch on the bound device, lowered where that device ran out of memory before. */
  private long deviceRowLimit() {
    return DeviceMemory.limit(binding.source().uri(), loaded, binding.batchSizeOn(loaded.device()));
  }

  private RetryInHalves retry() {
    if (retry == null) {
      retry = new RetryInHalves(binding, loaded(), metrics);
    }
    return retry;
  }

  private LoadedModel loaded() {
    if (loaded == null) {
      loaded = ExecutorSessions.acquire(binding, metrics);
    }
    return loaded;
  }
}

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
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.deploy.SparkHadoopUtil;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.JoinedRow;
import org.apache.spark.sql.catalyst.expressions.SpecializedGetters;
import org.apache.spark.sql.catalyst.expressions.SpecificInternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.expressions.UnsafeRow;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.Platform;

/**
 * Runs one model over one partition, a batch at a time: it buffers up to batchSize input rows,
 * writes their arguments into direct input buffers, runs the shared session once, and then emits
 * each buffered row joined with its own result. Rows with a null argument get a null result and
 * take no place in the model's batch.
 */
final class BatchPredictionRunner implements Iterator<InternalRow> {
  private final ModelBinding binding;
  private final Iterator<InternalRow> input;
  private final int[] argumentOrdinals;
  private final UnsafeProjection argumentProjection;
  private final UnsafeProjection holdProjection;
  private final UnsafeProjection outputProjection;
  private final PredictionMetrics metrics;
  private final boolean byStructField;
  private final int structFieldCount;
  private final InputBuffer[] inputs;
  private final OutputBuffer[] outputs;
  private final int batchSize;
  private final boolean fixedBatch;

  private final InternalRow[] rows;
  private final int[] positions;
  private final JoinedRow joined = new JoinedRow();
  private final SpecificInternalRow resultRow;
  private final SpecificInternalRow structResult;
  private int filled;
  private int cursor;
  private OrtSession session;

  BatchPredictionRunner(
      ModelBinding binding,
      InputBinding inputBinding,
      StructType argumentStruct,
      int[] argumentOrdinals,
      UnsafeProjection argumentProjection,
      UnsafeProjection holdProjection,
      UnsafeProjection outputProjection,
      PredictionMetrics metrics,
      Iterator<InternalRow> input) {
    this.binding = binding;
    this.input = input;
    this.argumentOrdinals = argumentOrdinals;
    this.argumentProjection = argumentProjection;
    this.holdProjection = holdProjection;
    this.outputProjection = outputProjection;
    this.metrics = metrics;
    this.batchSize = binding.batchSize();
    this.fixedBatch = binding.signature().inputs().stream().anyMatch(spec -> spec.rank() > 0 && spec.dimension(0) > 0);
    this.byStructField = inputBinding.inputs().get(0).structFieldOrdinal() >= 0;
    this.structFieldCount = argumentStruct == null ? 0 : argumentStruct.size();
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
    this.rows = new InternalRow[batchSize];
    this.positions = new int[batchSize];
  }

  @Override
  public boolean hasNext() {
    if (cursor < filled) {
      return true;
    }
    fillBatch();
    return filled > 0;
  }

  @Override
  public InternalRow next() {
    if (!hasNext()) {
      throw new NoSuchElementException();
    }
    int position = positions[cursor];
    InternalRow row = rows[cursor];
    cursor++;
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
    return outputProjection.apply(joined.apply(row, resultRow));
  }

  private void fillBatch() {
    filled = 0;
    cursor = 0;
    int modelRows = 0;
    for (InputBuffer buffer : inputs) {
      buffer.startBatch();
    }
    while (filled < batchSize && input.hasNext()) {
      InternalRow row = input.next();
      SpecializedGetters arguments = argumentProjection == null ? row : argumentProjection.apply(row);
      SpecializedGetters source = arguments;
      boolean isNull = false;
      if (byStructField) {
        int structOrdinal = argumentProjection == null ? argumentOrdinals[0] : 0;
        isNull = arguments.isNullAt(structOrdinal);
        source = isNull ? null : arguments.getStruct(structOrdinal, structFieldCount);
      }
      for (int i = 0; i < inputs.length && !isNull; i++) {
        isNull = inputs[i].isNull(source);
      }
      if (isNull) {
        positions[filled] = -1;
        metrics.nullRows.add(1);
      } else {
        for (InputBuffer buffer : inputs) {
          buffer.write(source, modelRows, batchSize);
        }
        positions[filled] = modelRows++;
      }
      rows[filled] = hold(holdProjection == null ? row : holdProjection.apply(row), filled);
      filled++;
    }
    if (modelRows > 0) {
      run(modelRows);
    }
    metrics.outputRows.add(filled);
  }

  /** Keeps a row past the child's iterator, reusing this slot's byte array when it can. */
  private InternalRow hold(InternalRow row, int slot) {
    if (row instanceof UnsafeRow) {
      UnsafeRow unsafeRow = (UnsafeRow) row;
      InternalRow held = rows[slot];
      if (!(held instanceof UnsafeRow) || ((UnsafeRow) held).numFields() != unsafeRow.numFields()) {
        UnsafeRow fresh = new UnsafeRow(unsafeRow.numFields());
        fresh.pointTo(new byte[Math.max(unsafeRow.getSizeInBytes(), 8)], unsafeRow.getSizeInBytes());
        held = fresh;
      }
      UnsafeRow target = (UnsafeRow) held;
      byte[] bytes = (byte[]) target.getBaseObject();
      if (bytes.length < unsafeRow.getSizeInBytes()) {
        bytes = new byte[unsafeRow.getSizeInBytes()];
      }
      Platform.copyMemory(unsafeRow.getBaseObject(), unsafeRow.getBaseOffset(), bytes,
          Platform.BYTE_ARRAY_OFFSET, unsafeRow.getSizeInBytes());
      target.pointTo(bytes, unsafeRow.getSizeInBytes());
      return target;
    }
    return row.copy();
  }

  private void run(int modelRows) {
    int tensorRows = fixedBatch ? batchSize : modelRows;
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
              + describeShapes() + ": " + e.getMessage() + ". The model's inputs are "
              + binding.describeInputs() + "; check that the columns' values fit them",
          e);
    } finally {
      inputTensors.values().forEach(OnnxTensor::close);
      pinned.values().forEach(OnnxTensor::close);
    }
  }

  private String describeShapes() {
    StringBuilder text = new StringBuilder();
    for (InputBuffer buffer : inputs) {
      if (text.length() > 0) {
        text.append(", ");
      }
      text.append("input '").append(buffer.layout().input().name()).append("' shape ")
          .append(Arrays.toString(buffer.shape(batchSize)));
    }
    return text.toString();
  }

  private OrtSession session() {
    if (session == null) {
      LoadedModel model = ModelCache.shared().acquire(binding.source(), sessionSettings(), hadoopConfiguration());
      if (!model.signature().equals(binding.signature())) {
        throw new PredictionException(
            "Model '" + binding.modelName() + "' at " + binding.source().uri() + " changed after the"
                + " query was planned: it was planned for " + binding.signature() + " but the file now"
                + " has " + model.signature() + ". Run the query again");
      }
      session = model.session();
    }
    return session;
  }

  private SessionSettings sessionSettings() {
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

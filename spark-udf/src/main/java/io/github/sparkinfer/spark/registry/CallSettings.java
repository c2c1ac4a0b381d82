package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.partitioning.StageResources;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.TreeMap;

/**
 * What one call of a model sets for itself, over the session's keys: a batch size, the outputs,
 * stage resources, the row error policy and whether the result carries the reason, and any other
 * setting by its full key (an ML stage's model URI, precision, device, ...). Immutable.
 */
public final class CallSettings {
  private static final CallSettings NONE =
      new CallSettings(OptionalInt.empty(), List.of(), null, null, false, Map.of());

  private final OptionalInt batchSize;
  private final List<String> outputs;
  private final StageResources stageResources;
  private final RowErrorPolicy onError;
  private final boolean reportErrors;
  private final Map<String, String> settings;

  private CallSettings(OptionalInt batchSize, List<String> outputs, StageResources stageResources,
      RowErrorPolicy onError, boolean reportErrors, Map<String, String> settings) {
    this.batchSize = batchSize;
    this.outputs = List.copyOf(outputs);
    this.stageResources = stageResources;
    this.onError = onError;
    this.reportErrors = reportErrors;
    this.settings = Map.copyOf(settings);
  }

  /** Nothing set by the call: the session's keys alone. */
  public static CallSettings none() {
    return NONE;
  }

  public CallSettings withBatchSize(OptionalInt rows) {
    return new CallSettings(rows, outputs, stageResources, onError, reportErrors, settings);
  }

  public CallSettings withOutputs(List<String> names) {
    return new CallSettings(batchSize, names, stageResources, onError, reportErrors, settings);
  }

  /** {@code null}: the session's stage keys. */
  public CallSettings withStageResources(StageResources resources) {
    return new CallSettings(batchSize, outputs, resources, onError, reportErrors, settings);
  }

  /** {@code null}: the model's or the session's key. */
  public CallSettings withOnError(RowErrorPolicy policy) {
    return new CallSettings(batchSize, outputs, stageResources, policy, reportErrors, settings);
  }

  /**
   * The result becomes struct&lt;result, error&gt;: a row the model cannot take gets a null result and
   * the reason, whatever the row error policy (predict_with_error, embed_with_error).
   */
  public CallSettings reportingErrors() {
    return new CallSettings(batchSize, outputs, stageResources, RowErrorPolicy.NULL, true, settings);
  }

  /** {@code key} (a full spark.sparkinfer.* key) set to {@code value} for this call only. */
  public CallSettings with(String key, String value) {
    Map<String, String> copy = new TreeMap<>(settings);
    copy.put(key, value);
    return new CallSettings(batchSize, outputs, stageResources, onError, reportErrors, copy);
  }

  OptionalInt batchSize() {
    return batchSize;
  }

  List<String> outputs() {
    return outputs;
  }

  StageResources stageResources() {
    return stageResources;
  }

  RowErrorPolicy onError() {
    return onError;
  }

  boolean reportErrors() {
    return reportErrors;
  }

  Map<String, String> settings() {
    return settings;
  }
}

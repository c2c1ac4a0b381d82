package io.github.sparkinfer.spark.registry;

import io.github.sparkinfer.device.ModelSignature;
import io.github.sparkinfer.device.ModelSource;
import io.github.sparkinfer.partitioning.StageResources;
import java.util.List;
import java.util.Objects;

/**
 * A binding's values, set one by one; {@link #build()} checks them (input types, outputs, a fixed
 * batch dimension) and gives the immutable binding.
 */
final class ModelBindingBuilder {
  final String modelName;
  final ModelSource source;
  final ModelSignature signature;
  int batchSize = io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE_DEFAULT;
  int cpuBatchSize = io.github.sparkinfer.spark.InferenceProperties.BATCH_SIZE_DEFAULT;
  int intraOpThreads;
  List<String> outputNames = List.of();
  TextSettings text;
  io.github.sparkinfer.spark.generate.GenerationSettings generation;
  java.util.Map<String, String> deviceSettings = java.util.Map.of();
  LoadTimeCompression compression = LoadTimeCompression.NONE;
  StageResources stageResources = StageResources.NONE;
  RowErrorPolicy onError = RowErrorPolicy.FAIL;
  boolean reportErrors;
  long maxBatchBytes = Integer.MAX_VALUE;

  ModelBindingBuilder(String modelName, ModelSource source, ModelSignature signature) {
    this.modelName = Objects.requireNonNull(modelName, "modelName");
    this.source = Objects.requireNonNull(source, "source");
    this.signature = Objects.requireNonNull(signature, "signature");
  }

  /** Rows per call on an accelerator and on a CPU (a fixed batch dimension overrides both). */
  ModelBindingBuilder batchSizes(int batchSize, int cpuBatchSize) {
    this.batchSize = batchSize;
    this.cpuBatchSize = cpuBatchSize;
    return this;
  }

  /** 0: follow spark.task.cpus. */
  ModelBindingBuilder intraOpThreads(int threads) {
    this.intraOpThreads = threads;
    return this;
  }

  /** The outputs a query returns, by name; empty: all. */
  ModelBindingBuilder outputs(List<String> names) {
    this.outputNames = List.copyOf(names);
    return this;
  }

  /** A text model: strings are tokenized into its inputs. */
  ModelBindingBuilder text(TextSettings settings) {
    this.text = settings;
    return this;
  }

  /** A decoder: generate() turns prompts into text with it. */
  ModelBindingBuilder generation(io.github.sparkinfer.spark.generate.GenerationSettings settings) {
    this.generation = settings;
    return this;
  }

  /** The session's device settings, which take precedence over the executors' own. */
  ModelBindingBuilder deviceSettings(java.util.Map<String, String> settings) {
    this.deviceSettings = settings;
    return this;
  }

  /** The precision (fp32, int8, fp16, int4 or auto) and int8 scheme the executors load the model at. */
  ModelBindingBuilder precision(String value, String int8Scheme) {
    this.compression = new LoadTimeCompression(value, int8Scheme, compression.pruneRatio);
    return this;
  }

  /** The ratio of every chain's hidden units the executors prune before loading the model. */
  ModelBindingBuilder pruneRatio(double ratio) {
    this.compression = new LoadTimeCompression(compression.precision, compression.int8Scheme, ratio);
    return this;
  }

  /** What the stage that runs the model asks Spark for. */
  ModelBindingBuilder stageResources(StageResources resources) {
    this.stageResources = resources;
    return this;
  }

  /** The row error policy; with {@code report} the result also carries the reason. */
  ModelBindingBuilder rowErrors(RowErrorPolicy policy, boolean report) {
    this.onError = policy;
    this.reportErrors = report;
    return this;
  }

  /** The most bytes one batch's input and output buffers may hold. */
  ModelBindingBuilder maxBatchBytes(long bytes) {
    this.maxBatchBytes = bytes;
    return this;
  }

  /** @throws ModelBindingException naming the model when an input type, an output or the batch dimension is unusable */
  ModelBinding build() {
    return new ModelBinding(this);
  }
}

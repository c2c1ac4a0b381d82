package io.github.sparkinfer.device;

import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A model loaded by the {@link ModelCache}: one ONNX Runtime session shared by every task in this
 * JVM whose source and settings match. Tasks run it concurrently through {@link #run} (OrtSession.run
 * is thread-safe) and never close it; the cache closes it when the executor shuts down, and only
 * once no run holds it (see {@link ModelRun}).
 *
 * <p>It says where the session really runs: {@link #device()} is the CPU when the {@link
 * #requestedDevice()} could not be used and the {@link DeviceFallback} policy was cpu, so that
 * callers can record the binding decision.
 */
public interface LoadedModel {
  ModelSource source();

  /** The settings the model was asked for; their device is {@link #requestedDevice()}. */
  SessionSettings settings();

  ModelSignature signature();

  /**
   * The session, for its metadata (inputs, outputs, providers). Run it through {@link #run}: a run
   * on this object directly is not seen by the cache, which may then close the session under it.
   */
  OrtSession session();

  /**
   * Runs the session, holding it until the returned run is closed, so that the cache never closes
   * it under the run or its outputs. Arguments as {@link OrtSession#run(Map, Set, Map)}.
   *
   * @throws IllegalStateException when the cache is closing the session (the executor is shutting
   *     down): the run did not start
   */
  ModelRun run(
      Map<String, ? extends OnnxTensorLike> inputs,
      Set<String> outputs,
      Map<String, ? extends OnnxValue> pinnedOutputs)
      throws OrtException;

  /** The device the session is bound to: the requested one, or the CPU after a fallback. */
  Device device();

  /** The device the settings asked for. */
  default Device requestedDevice() {
    return settings().device();
  }

  /**
   * The execution providers the session was created with, in ORT's order of preference, such as
   * [CUDAExecutionProvider, CPUExecutionProvider]; the first takes every operator it supports.
   */
  List<String> executionProviders();

  /** The session's first execution provider: CUDAExecutionProvider, CPUExecutionProvider, ... */
  default String executionProvider() {
    return executionProviders().get(0);
  }

  /** Why the requested device could not be used, when the session fell back to the CPU. */
  Optional<String> fallbackReason();

  /** Whether the session runs on the CPU instead of the requested accelerator. */
  default boolean isFallback() {
    return fallbackReason().isPresent();
  }
}

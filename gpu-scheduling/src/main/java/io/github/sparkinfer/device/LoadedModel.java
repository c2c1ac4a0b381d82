package io.github.sparkinfer.device;

import ai.onnxruntime.OrtSession;
import java.util.List;
import java.util.Optional;

/**
 * A model loaded by the {@link ModelCache}: one ONNX Runtime session shared by every task in this
 * JVM whose source and settings match. Tasks run it concurrently (OrtSession.run is thread-safe)
 * and never close it; the cache closes it when the executor shuts down.
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

  OrtSession session();

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

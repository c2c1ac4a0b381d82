package io.github.sparkinfer.device;

import ai.onnxruntime.OrtSession;

/**
 * A model loaded by the {@link ModelCache}: one ONNX Runtime session shared by every task in this
 * JVM whose source and settings match. Tasks run it concurrently (OrtSession.run is thread-safe) and
 * never close it; the cache closes it when the executor shuts down.
 */
public interface LoadedModel {
  ModelSource source();

  SessionSettings settings();

  ModelSignature signature();

  OrtSession session();
}

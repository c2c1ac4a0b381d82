package io.github.sparkinfer.device;

import ai.onnxruntime.OrtSession;

/**
 * One run of a {@link LoadedModel}: its outputs, and the hold on the session that keeps the cache
 * from closing the session while the run or its outputs are in use. Close it, on the thread that
 * ran it, once the outputs are read: that closes the outputs and gives the hold back.
 *
 * <pre>{@code
 * try (ModelRun run = model.run(inputs, outputNames, pinnedOutputs)) {
 *   OnnxValue scores = run.result().get("scores").orElseThrow();
 *   ...
 * }
 * }</pre>
 *
 * <p>Not thread-safe: one thread runs, reads and closes it.
 */
public final class ModelRun implements AutoCloseable {
  private final OrtSession.Result result;
  private final SessionLifetime lifetime;
  private boolean closed;

  ModelRun(OrtSession.Result result, SessionLifetime lifetime) {
    this.result = result;
    this.lifetime = lifetime;
  }

  /** The outputs asked for that were not pinned; valid until {@link #close}. */
  public OrtSession.Result result() {
    if (closed) {
      throw new IllegalStateException("The run is closed: its outputs are freed");
    }
    return result;
  }

  /** Closes the outputs, then lets the session go. Later calls do nothing. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      result.close();
    } finally {
      lifetime.release();
    }
  }
}

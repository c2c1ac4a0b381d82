package io.github.sparkinfer.device;

import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/** A session held by the {@link ModelCache}, with what it was loaded from and where it runs. */
final class CachedModel implements LoadedModel {
  private final ModelSource source;
  private final SessionSettings settings;
  private final Device device;
  private final List<String> executionProviders;
  private final String fallbackReason;
  private final ModelSignature signature;
  private final Path localFile;
  // Shared by the views of one session: it is closed once, and only when no run of any view holds it.
  private final SessionLifetime lifetime;

  CachedModel(
      ModelSource source,
      SessionSettings settings,
      List<String> executionProviders,
      ModelSignature signature,
      OrtSession session,
      Path localFile,
      java.util.function.LongSupplier clock) {
    this(
        source,
        settings,
        settings.device(),
        executionProviders,
        null,
        signature,
        localFile,
        new SessionLifetime(Objects.requireNonNull(session, "session"), clock));
  }

  private CachedModel(
      ModelSource source,
      SessionSettings settings,
      Device device,
      List<String> executionProviders,
      String fallbackReason,
      ModelSignature signature,
      Path localFile,
      SessionLifetime lifetime) {
    this.source = Objects.requireNonNull(source, "source");
    this.settings = Objects.requireNonNull(settings, "settings");
    this.device = Objects.requireNonNull(device, "device");
    this.executionProviders = List.copyOf(executionProviders);
    this.fallbackReason = fallbackReason;
    this.signature = Objects.requireNonNull(signature, "signature");
    this.localFile = Objects.requireNonNull(localFile, "localFile");
    this.lifetime = lifetime;
  }

  @Override
  public ModelSource source() {
    return source;
  }

  @Override
  public SessionSettings settings() {
    return settings;
  }

  @Override
  public ModelSignature signature() {
    return signature;
  }

  @Override
  public OrtSession session() {
    return lifetime.session();
  }

  @Override
  public ModelRun run(
      Map<String, ? extends OnnxTensorLike> inputs,
      Set<String> outputs,
      Map<String, ? extends OnnxValue> pinnedOutputs)
      throws OrtException {
    if (!lifetime.hold()) {
      throw new IllegalStateException(
          "Model '" + source.name() + "' (" + source.uri() + ") is closed: the executor is shutting down, or the"
              + " cache closed the unused session (acquire it again)");
    }
    try {
      return new ModelRun(lifetime.session().run(inputs, outputs, pinnedOutputs), lifetime);
    } catch (OrtException | RuntimeException | Error e) {
      lifetime.release();
      throw e;
    }
  }

  @Override
  public Device device() {
    return device;
  }

  @Override
  public List<String> executionProviders() {
    return executionProviders;
  }

  @Override
  public Optional<String> fallbackReason() {
    return Optional.ofNullable(fallbackReason);
  }

  Path localFile() {
    return localFile;
  }

  /**
   * The same session seen under another model name: two registered names may point at one file, and
   * each caller should see the name it asked for.
   */
  CachedModel as(ModelSource otherSource) {
    if (otherSource.equals(source)) {
      return this;
    }
    return new CachedModel(
        otherSource,
        settings,
        device,
        executionProviders,
        fallbackReason,
        signature,
        localFile,
        lifetime);
  }

  /**
   * This CPU session standing in for one on the accelerator of {@code requested}, which could not
   * be used for {@code reason}. It shares the session, so one CPU copy serves every device that
   * fell back and the tasks that asked for the CPU.
   */
  CachedModel fallbackFor(SessionSettings requested, String reason) {
    return new CachedModel(
        source,
        requested,
        device,
        executionProviders,
        Objects.requireNonNull(reason, "reason"),
        signature,
        localFile,
        lifetime);
  }

  /** The session's lifetime, shared by every view of it. */
  SessionLifetime lifetime() {
    return lifetime;
  }

  boolean isClosed() {
    return lifetime.isClosed();
  }

  /** Whether closing has begun: no new run may start. */
  boolean isClosing() {
    return lifetime.isClosing();
  }

  /** Runs holding the session now, over every view. */
  int runsInFlight() {
    return lifetime.holds();
  }

  /**
   * Closes the session once no run holds it, waiting up to {@code deadlineNanos} (of {@link
   * System#nanoTime()}); refuses new runs from now on.
   *
   * @return false when runs still held it at the deadline: it was left open, not closed under them
   */
  boolean close(long deadlineNanos) throws OrtException {
    return lifetime.close(deadlineNanos);
  }

  @Override
  public String toString() {
    String binding =
        fallbackReason == null ? settings.toString() : settings + ", fell back to " + device;
    return source + " (" + binding + ")";
  }
}

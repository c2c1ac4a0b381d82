package io.github.sparkinfer.device;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;

/** A session held by the {@link ModelCache}, with what it was loaded from and where it runs. */
final class CachedModel implements LoadedModel {
  private final ModelSource source;
  private final SessionSettings settings;
  private final Device device;
  private final List<String> executionProviders;
  private final String fallbackReason;
  private final ModelSignature signature;
  private final OrtSession session;
  private final Path localFile;
  // Shared by the views of one session so that it is closed once: ORT throws on a second close.
  private final AtomicBoolean closed;

  CachedModel(
      ModelSource source,
      SessionSettings settings,
      List<String> executionProviders,
      ModelSignature signature,
      OrtSession session,
      Path localFile) {
    this(
        source,
        settings,
        settings.device(),
        executionProviders,
        null,
        signature,
        session,
        localFile,
        new AtomicBoolean());
  }

  private CachedModel(
      ModelSource source,
      SessionSettings settings,
      Device device,
      List<String> executionProviders,
      String fallbackReason,
      ModelSignature signature,
      OrtSession session,
      Path localFile,
      AtomicBoolean closed) {
    this.source = Objects.requireNonNull(source, "source");
    this.settings = Objects.requireNonNull(settings, "settings");
    this.device = Objects.requireNonNull(device, "device");
    this.executionProviders = List.copyOf(executionProviders);
    this.fallbackReason = fallbackReason;
    this.signature = Objects.requireNonNull(signature, "signature");
    this.session = Objects.requireNonNull(session, "session");
    this.localFile = Objects.requireNonNull(localFile, "localFile");
    this.closed = closed;
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
    return session;
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
        session,
        localFile,
        closed);
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
        session,
        localFile,
        closed);
  }

  boolean isClosed() {
    return closed.get();
  }

  /** Closes the session once; later calls do nothing. */
  void close() throws OrtException {
    if (closed.compareAndSet(false, true)) {
      session.close();
    }
  }

  @Override
  public String toString() {
    String binding =
        fallbackReason == null ? settings.toString() : settings + ", fell back to " + device;
    return source + " (" + binding + ")";
  }
}

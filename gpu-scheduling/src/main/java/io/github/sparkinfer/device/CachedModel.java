package io.github.sparkinfer.device;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;

/** A session held by the {@link ModelCache}, with what it was loaded from. */
final class CachedModel implements LoadedModel {
  private final ModelSource source;
  private final SessionSettings settings;
  private final ModelSignature signature;
  private final OrtSession session;
  private final Path localFile;
  // Shared by the views of one session so that it is closed once: ORT throws on a second close.
  private final AtomicBoolean closed;

  CachedModel(
      ModelSource source,
      SessionSettings settings,
      ModelSignature signature,
      OrtSession session,
      Path localFile) {
    this(source, settings, signature, session, localFile, new AtomicBoolean());
  }

  private CachedModel(
      ModelSource source,
      SessionSettings settings,
      ModelSignature signature,
      OrtSession session,
      Path localFile,
      AtomicBoolean closed) {
    this.source = Objects.requireNonNull(source, "source");
    this.settings = Objects.requireNonNull(settings, "settings");
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

  Path localFile() {
    return localFile;
  }

  /**
   * The same session seen under another model name: two registered names may point at one file,
   * and each caller should see the name it asked for.
   */
  CachedModel as(ModelSource otherSource) {
    if (otherSource.equals(source)) {
      return this;
    }
    return new CachedModel(otherSource, settings, signature, session, localFile, closed);
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
    return source + " (" + settings + ")";
  }
}

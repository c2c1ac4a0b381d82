package io.github.sparkinfer.device;

import java.util.Objects;

/**
 * What a session is loaded for: the model's URI, the content of its local copy (the SHA-256 of the
 * manifest of its .onnx and data files, {@link ModelFiles.LocalCopy#digest()}), and the settings,
 * which hold the device, so a model gets one session per device. Content, not the file's status: a
 * file replaced with the same size and mtime, or whose data file alone changed, is a new key.
 */
final class ModelKey {
  final String uri;
  final String digest;
  final SessionSettings settings;

  ModelKey(String uri, String digest, SessionSettings settings) {
    this.uri = Objects.requireNonNull(uri, "uri");
    this.digest = Objects.requireNonNull(digest, "digest");
    this.settings = Objects.requireNonNull(settings, "settings");
  }

  ModelKey withSettings(SessionSettings other) {
    return new ModelKey(uri, digest, other);
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof ModelKey
        && ((ModelKey) other).uri.equals(uri)
        && ((ModelKey) other).digest.equals(digest)
        && ((ModelKey) other).settings.equals(settings);
  }

  @Override
  public int hashCode() {
    return Objects.hash(uri, digest, settings);
  }

  @Override
  public String toString() {
    return uri + " (sha256 " + digest.substring(0, Math.min(12, digest.length())) + "…) [" + settings + "]";
  }
}

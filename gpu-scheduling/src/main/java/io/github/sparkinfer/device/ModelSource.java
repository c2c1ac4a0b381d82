package io.github.sparkinfer.device;

import java.io.Serializable;
import java.util.Objects;
import java.util.Optional;

/**
 * Where a model's file lives: a model name and any Hadoop FileSystem URI, and, when a setting
 * registered it, that setting's key, which error messages name as the thing to fix. The key only
 * words messages: two sources with the same name and URI are equal whatever their keys. Immutable.
 */
public final class ModelSource implements Serializable {
  private static final long serialVersionUID = 3L;

  private final String name;
  private final String uri;
  private final String registrationKey;
  private final boolean onnxFile;
  private final String sha256;
  private final String sha256Key;
  private final String derivedFrom;

  private ModelSource(String name, String uri, String registrationKey, boolean onnxFile) {
    this(name, uri, registrationKey, onnxFile, null, null, null);
  }

  private ModelSource(String name, String uri, String registrationKey, boolean onnxFile, String sha256,
      String sha256Key, String derivedFrom) {
    this.name = Objects.requireNonNull(name, "name");
    this.uri = Objects.requireNonNull(uri, "uri");
    this.registrationKey = registrationKey;
    this.onnxFile = onnxFile;
    this.sha256 = sha256;
    this.sha256Key = sha256Key;
    this.derivedFrom = derivedFrom;
  }

  /**
   * This source, whose file must have the SHA-256 {@code hex} (64 hex digits, any case), as the
   * setting {@code key} says: the local copy is checked before anything reads it.
   *
   * @throws IllegalArgumentException when {@code hex} is not 64 hex digits
   */
  public ModelSource withSha256(String hex, String key) {
    String normalized = Objects.requireNonNull(hex, "hex").trim().toLowerCase(java.util.Locale.ROOT);
    if (!normalized.matches("[0-9a-f]{64}")) {
      throw new IllegalArgumentException("Invalid value '" + hex + "' for " + key + " (model '" + name
          + "'): a SHA-256 is 64 hexadecimal digits, as sha256sum prints it");
    }
    return new ModelSource(name, uri, registrationKey, onnxFile, normalized, key, derivedFrom);
  }

  /** The SHA-256 the file must have, lower-case hex, if one was given. */
  public Optional<String> sha256() {
    return Optional.ofNullable(sha256);
  }

  /** The setting that gave {@link #sha256()}. */
  String sha256Key() {
    return sha256Key == null ? "the expected SHA-256" : sha256Key;
  }

  /** A model's .onnx file given by its URI alone (a program's own call, not a setting). */
  public static ModelSource of(String name, String uri) {
    return new ModelSource(name, uri, null, true);
  }

  /** A model's .onnx file registered under the setting {@code registrationKey}. */
  public static ModelSource registered(String name, String uri, String registrationKey) {
    return new ModelSource(name, uri, Objects.requireNonNull(registrationKey, "registrationKey"), true);
  }

  /**
   * Another file of model {@code name} (a tokenizer, say), registered under {@code
   * registrationKey}.
   */
  public static ModelSource ofFile(String name, String uri, String registrationKey) {
    return new ModelSource(name, uri, Objects.requireNonNull(registrationKey, "registrationKey"), false);
  }

  /**
   * A file sparkinfer made from this source's (a compressed copy in the model cache, say),
   * registered as this one is. The expected SHA-256 is dropped: it was the original's. The cache
   * loads such a file only from its own folder, and checks the original's URI against the allowed
   * roots.
   */
  public ModelSource withUri(String otherUri) {
    return new ModelSource(name, otherUri, registrationKey, onnxFile, null, null, derivedFrom != null ? derivedFrom : uri);
  }

  /** The URI of the file this one was made from, for a file sparkinfer made. */
  Optional<String> derivedFrom() {
    return Optional.ofNullable(derivedFrom);
  }

  /** The setting that registered this file, if one did. */
  public Optional<String> registrationKey() {
    return Optional.ofNullable(registrationKey);
  }

  /** How to point this source at a good file: the SET to run, or what to pass. */
  String registrationFix(String start) {
    String value = onnxFile ? "=<URI of an .onnx file>" : "=<URI of the file>";
    if (registrationKey != null) {
      return start + " with SET " + registrationKey + value;
    }
    // Not registered by a setting: the caller passed the URI itself.
    String pass = "pass the URI of an existing " + (onnxFile ? ".onnx file" : "file") + " for model '" + name + "'";
    return Character.isUpperCase(start.charAt(0)) ? Character.toUpperCase(pass.charAt(0)) + pass.substring(1) : pass;
  }

  /** Whether this is the model's .onnx file (not a tokenizer or another file). */
  boolean onnxFile() {
    return onnxFile;
  }

  public String name() {
    return name;
  }

  public String uri() {
    return uri;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof ModelSource
        && ((ModelSource) other).name.equals(name)
        && ((ModelSource) other).uri.equals(uri);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, uri);
  }

  @Override
  public String toString() {
    return "model '" + name + "' at " + uri;
  }
}

package io.github.sparkinfer.device;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Objects;
import org.apache.hadoop.fs.FileStatus;

/**
 * One version of a model file, as its FileSystem reports it: qualified URI, modification time and
 * length. A file replaced at the same URI is a new version, with its own session and local copy.
 * Immutable.
 */
final class ModelFileVersion {
  private static final int MAX_NAME_LENGTH = 100;
  private static final char[] HEX = "0123456789abcdef".toCharArray();

  private final String uri;
  private final long modificationTime;
  private final long length;

  ModelFileVersion(String uri, long modificationTime, long length) {
    this.uri = Objects.requireNonNull(uri, "uri");
    this.modificationTime = modificationTime;
    this.length = length;
  }

  static ModelFileVersion of(FileStatus status) {
    return new ModelFileVersion(
        status.getPath().toString(), status.getModificationTime(), status.getLen());
  }

  String uri() {
    return uri;
  }

  long modificationTime() {
    return modificationTime;
  }

  long length() {
    return length;
  }

  /**
   * Name of this version's own folder in the local cache: a hash of (URI, modification time,
   * length), so every executor JVM on a machine picks the same folder for the same version. The
   * model file keeps its own name in it ({@link #localBaseName()}), next to the external-data files
   * it references, which nothing outside the folder can reach.
   */
  String localFolderName() {
    String identity = uri + '\n' + modificationTime + '\n' + length;
    byte[] digest = sha256(identity.getBytes(StandardCharsets.UTF_8));
    StringBuilder name = new StringBuilder();
    // 128 bits are plenty to keep versions apart and keep the name short.
    for (int i = 0; i < 16; i++) {
      name.append(HEX[(digest[i] >> 4) & 0xF]).append(HEX[digest[i] & 0xF]);
    }
    return name.toString();
  }

  /** The file's own name, safe characters only. */
  String localBaseName() {
    return safeBaseName();
  }

  private String safeBaseName() {
    String baseName = uri.substring(uri.lastIndexOf('/') + 1);
    StringBuilder safe = new StringBuilder();
    for (int i = 0; i < baseName.length() && safe.length() < MAX_NAME_LENGTH; i++) {
      char character = baseName.charAt(i);
      boolean allowed =
          (character >= 'a' && character <= 'z')
              || (character >= 'A' && character <= 'Z')
              || (character >= '0' && character <= '9')
              || character == '.'
              || character == '-'
              || character == '_';
      safe.append(allowed ? character : '_');
    }
    return safe.length() == 0 ? "model.onnx" : safe.toString();
  }

  private static byte[] sha256(byte[] bytes) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(bytes);
    } catch (NoSuchAlgorithmException e) {
      // Every Java platform must provide SHA-256.
      throw new IllegalStateException("SHA-256 is not available", e);
    }
  }

  @Override
  public boolean equals(Object other) {
    if (!(other instanceof ModelFileVersion)) {
      return false;
    }
    ModelFileVersion that = (ModelFileVersion) other;
    return uri.equals(that.uri)
        && modificationTime == that.modificationTime
        && length == that.length;
  }

  @Override
  public int hashCode() {
    return Objects.hash(uri, modificationTime, length);
  }

  @Override
  public String toString() {
    return uri + " (modified " + modificationTime + ", " + length + " bytes)";
  }
}

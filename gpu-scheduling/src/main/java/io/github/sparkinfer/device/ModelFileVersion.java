package io.github.sparkinfer.device;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import org.apache.hadoop.fs.FileChecksum;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;

/**
 * One version of a remote model file as its FileSystem reports it, cheaply, on every acquire: URI,
 * modification time, length and a change token. It only says which local copy to try: what a
 * session is loaded for is the copy's content hash ({@link ModelFiles.LocalCopy#digest()}).
 *
 * <p>Why a change token: (modification time, length) misses a same-size file written within the
 * mtime's granularity (S3 has 1 s) and any copy that preserves mtime ({@code cp -p}, {@code rsync
 * -a}, {@code distcp -pt}). Rehashing the remote file on every acquire would read the whole model
 * each time, so the token is what the file system gives for (nearly) free:
 *
 * <ul>
 *   <li>an ETag where the status has one (S3A, ABFS: {@link org.apache.hadoop.fs.EtagSource}): a new
 *       one on every write, so it pins the content ({@link #exact()});
 *   <li>for a local file, its ctime and inode: neither can be set by a user ({@code cp -p} and
 *       {@code touch -d} set the mtime, and change the ctime), a rename-over changes the inode;
 *   <li>else the file system's checksum where it has one ({@link FileSystem#getFileChecksum}; HDFS:
 *       an MD5 of its stored block CRCs, no data read): exact;
 *   <li>else nothing: only the mtime.
 * </ul>
 *
 * A token that is a time (ctime, or the mtime alone) cannot tell a write that happened within its
 * granularity after the copy started: such a copy is trusted only once it started {@link
 * #ambiguityMillis()} after that time ({@link #trusts}); before that, the next acquire hashes the
 * remote file again. A file whose only token is the mtime and that is replaced by a same-size file
 * with the mtime preserved is not detected: set the model's sha256 key for such file systems.
 * Immutable.
 */
final class ModelFileVersion {
  private static final int MAX_NAME_LENGTH = 100;
  // A local ctime is the kernel's coarse clock (a few ms); a remote mtime may be 1 s coarse and
  // comes from another host's clock.
  private static final long LOCAL_AMBIGUITY_MILLIS = 50;
  private static final long REMOTE_AMBIGUITY_MILLIS = 2_000;

  private final String uri;
  private final long modificationTime;
  private final long length;
  private final String changeToken;
  private final boolean exact;
  private final long tokenTimeMillis;
  private final long ambiguityMillis;

  ModelFileVersion(String uri, long modificationTime, long length) {
    this(uri, modificationTime, length, "", false, modificationTime, REMOTE_AMBIGUITY_MILLIS);
  }

  private ModelFileVersion(String uri, long modificationTime, long length, String changeToken, boolean exact,
      long tokenTimeMillis, long ambiguityMillis) {
    this.uri = Objects.requireNonNull(uri, "uri");
    this.modificationTime = modificationTime;
    this.length = length;
    this.changeToken = Objects.requireNonNull(changeToken, "changeToken");
    this.exact = exact;
    this.tokenTimeMillis = tokenTimeMillis;
    this.ambiguityMillis = ambiguityMillis;
  }

  /** The status with its change token: an ETag, a local ctime and inode, or a checksum. */
  static ModelFileVersion of(FileSystem fileSystem, FileStatus status) {
    String uri = status.getPath().toString();
    long mtime = status.getModificationTime();
    long length = status.getLen();
    if (status instanceof org.apache.hadoop.fs.EtagSource) {
      String etag = ((org.apache.hadoop.fs.EtagSource) status).getEtag();
      if (etag != null && !etag.isEmpty()) {
        return new ModelFileVersion(uri, mtime, length, "etag:" + etag, true, mtime, 0);
      }
    }
    java.net.URI location = status.getPath().toUri();
    if ("file".equals(location.getScheme())) {
      try {
        Map<String, Object> unix = Files.readAttributes(Paths.get(location), "unix:ctime,ino");
        FileTime ctime = (FileTime) unix.get("ctime");
        return new ModelFileVersion(uri, mtime, length, "ctime:" + ctime.to(TimeUnit.NANOSECONDS) + ",ino:"
            + unix.get("ino"), false, ctime.toMillis(), LOCAL_AMBIGUITY_MILLIS);
      } catch (IOException | RuntimeException e) {
        return new ModelFileVersion(uri, mtime, length);  // no unix view (Windows): the mtime alone
      }
    }
    try {
      FileChecksum checksum = fileSystem.getFileChecksum(status.getPath());
      if (checksum != null && checksum.getBytes() != null) {
        return new ModelFileVersion(uri, mtime, length, "checksum:" + checksum.getAlgorithmName() + ":"
            + HexFormat.of().formatHex(checksum.getBytes()), true, mtime, 0);
      }
    } catch (IOException | RuntimeException e) {
      // No checksum: the mtime alone, with its ambiguity.
    }
    return new ModelFileVersion(uri, mtime, length);
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

  /** Whether the token pins the content (an ETag or a checksum): no time-based ambiguity. */
  boolean exact() {
    return exact;
  }

  long ambiguityMillis() {
    return ambiguityMillis;
  }

  /**
   * Whether a copy (or hash) of this version that started at {@code readStartMillis} (wall clock)
   * is known to be of its content: any later write would have changed the token. With a time
   * token, only when the read started {@link #ambiguityMillis()} after it.
   */
  boolean trusts(long readStartMillis) {
    return exact || readStartMillis >= tokenTimeMillis + ambiguityMillis;
  }

  /**
   * The name this version's record has in the local cache (a hash of URI, modification time, length
   * and token), so every executor JVM on a machine finds the copy another one made of it.
   */
  String indexName() {
    String identity = uri + '\n' + modificationTime + '\n' + length + '\n' + changeToken;
    byte[] digest = sha256(identity.getBytes(StandardCharsets.UTF_8));
    // 128 bits are plenty to keep versions apart and keep the name short.
    return HexFormat.of().formatHex(digest, 0, 16);
  }

  /** The file's own name, safe characters only. */
  String localBaseName() {
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
    return safe.length() == 0 || safe.charAt(0) == '.' ? "model.onnx" : safe.toString();
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
        && length == that.length
        && changeToken.equals(that.changeToken);
  }

  @Override
  public int hashCode() {
    return Objects.hash(uri, modificationTime, length, changeToken);
  }

  @Override
  public String toString() {
    return uri + " (modified " + modificationTime + ", " + length + " bytes"
        + (changeToken.isEmpty() ? "" : ", " + changeToken) + ")";
  }
}

package io.github.sparkinfer.device;

import java.io.FileNotFoundException;
import java.io.IOException;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.UnsupportedFileSystemException;

/**
 * A model file where its FileSystem keeps it (file:, hdfs:, s3a:, ...), at one version: found
 * through the Hadoop FileSystem API, each way of failing to find it told as a {@link
 * ModelLoadException} that names the model, the reason and the fix.
 */
final class RemoteFile {
  // From Hadoop's per-JVM cache and shared: never closed here.
  private final FileSystem fileSystem;
  private final FileStatus status;
  private final ModelFileVersion version;

  private RemoteFile(FileSystem fileSystem, FileStatus status) {
    this.fileSystem = fileSystem;
    this.status = status;
    this.version = ModelFileVersion.of(fileSystem, status);
  }

  FileSystem fileSystem() {
    return fileSystem;
  }

  FileStatus status() {
    return status;
  }

  ModelFileVersion version() {
    return version;
  }

  /** The current version of {@code source}'s file where its FileSystem keeps it. */
  static RemoteFile find(ModelSource source, Configuration configuration) {
    org.apache.hadoop.fs.Path path;
    try {
      path = new org.apache.hadoop.fs.Path(source.uri());
    } catch (IllegalArgumentException e) {
      throw ModelLoadException.of(source, "it is not a valid URI (" + e.getMessage() + ")",
          source.registrationFix("Register a valid one"), e);
    }
    try {
      FileSystem fileSystem;
      if (path.toUri().getScheme() == null) {
        // Hadoop would resolve a bare path against fs.defaultFS, HDFS on most clusters.
        fileSystem = FileSystem.getLocal(configuration);
        path = fileSystem.makeQualified(path);
      } else {
        fileSystem = path.getFileSystem(configuration);
      }
      FileStatus status = fileSystem.getFileStatus(path);
      if (status.isDirectory()) {
        throw ModelLoadException.of(source, "it is a directory, not a file",
            source.registrationFix(source.onnxFile() ? "Register the .onnx file itself" : "Register the file itself"), null);
      }
      return new RemoteFile(fileSystem, status);
    } catch (FileNotFoundException e) {
      throw ModelLoadException.of(source, "file not found", source.registrationFix("Register it"), e);
    } catch (org.apache.hadoop.security.AccessControlException | java.nio.file.AccessDeniedException e) {
      throw ModelLoadException.of(source, "permission denied (" + e.getMessage() + ")",
          "Give the user that runs Spark (the executors' user) read access to it", e);
    } catch (java.net.SocketTimeoutException e) {
      throw ModelLoadException.of(source, "its file system timed out (" + e + ")",
          "Check that the executors can reach " + hostOf(path) + ", or raise the file system's timeout", e);
    } catch (UnsupportedFileSystemException e) {
      String scheme = path.toUri().getScheme();
      throw ModelLoadException.of(source,
          "no Hadoop FileSystem is available for the scheme '" + scheme + "'",
          "Use a file:, hdfs: or s3a: URI, or put the FileSystem for '" + scheme
              + "' on the executors' classpath (for s3a: hadoop-aws)",
          e);
    } catch (IOException e) {
      throw ModelLoadException.of(source, "its file system failed (" + e + ")",
          "Check that the executors can reach " + source.uri() + " and may read it", e);
    } catch (ModelLoadException e) {
      throw e;
    } catch (RuntimeException e) {
      // Hadoop reports an unknown host as IllegalArgumentException(UnknownHostException).
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      if (cause instanceof java.net.UnknownHostException) {
        throw ModelLoadException.of(source, "the host '" + hostOf(path) + "' is unknown (" + cause.getMessage() + ")",
            "Fix the host name in the URI, or check the executors' DNS", e);
      }
      throw ModelLoadException.of(source, "its file system failed (" + e + ")",
          "Check the URI and that the executors can reach " + source.uri() + " and may read it", e);
    }
  }

  private static String hostOf(org.apache.hadoop.fs.Path path) {
    String host = path.toUri().getHost();
    return host == null ? path.toUri().getAuthority() == null ? path.toString() : path.toUri().getAuthority() : host;
  }
}

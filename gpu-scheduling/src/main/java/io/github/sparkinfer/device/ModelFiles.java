package io.github.sparkinfer.device;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.UnsupportedFileSystemException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Model files as the cache sees them: found through the Hadoop FileSystem API (file:, hdfs:, s3a:,
 * ...) with their version, and copied once per version into a folder of its own in a local
 * cache that is the executor user's alone. Thread-safe.
 */
final class ModelFiles {
  private static final Logger LOG = LoggerFactory.getLogger(ModelFiles.class);

  private final Path directory;
  private final AllowedRoots allowedRoots;
  private final ConcurrentMap<String, Object> copyLocks = new ConcurrentHashMap<>();
  private final AtomicLong copies = new AtomicLong();

  /** Copies to {@code directory}, of data files only those {@code allowedRoots} allows. */
  ModelFiles(Path directory, AllowedRoots allowedRoots) {
    this.directory = Objects.requireNonNull(directory, "directory");
    this.allowedRoots = Objects.requireNonNull(allowedRoots, "allowedRoots");
  }

  Path directory() {
    return directory;
  }

  /** Files this JVM copied to the folder; a copy another JVM made first is not counted. */
  long copyCount() {
    return copies.get();
  }

  /** The current version of {@code source}'s file where its FileSystem keeps it. */
  static Remote find(ModelSource source, Configuration configuration) {
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
      return new Remote(fileSystem, status);
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

  /**
   * Copies the file to the folder unless this version is already there. Executors of one machine
   * may copy the same version at once: each writes its own temporary file and renames it into
   * place atomically, so a file under the final name is always complete.
   */
  LocalCopy copy(ModelSource source, Remote file) {
    LocalCopy copy = copyUnchecked(source, file);
    verify(source, copy.file());
    return copy;
  }

  // The SHA-256 of each local copy, computed once per JVM (a version's copy never changes).
  private final java.util.concurrent.ConcurrentMap<Path, String> digests = new java.util.concurrent.ConcurrentHashMap<>();

  /**
   * Checks the local copy against the source's expected SHA-256, if it has one; a copy that does
   * not match is deleted, so a fixed file is copied again.
   */
  void verify(ModelSource source, Path local) {
    if (source.sha256().isEmpty()) {
      return;
    }
    String actual = digests.computeIfAbsent(local, ModelFiles::sha256Of);
    if (!actual.equals(source.sha256().get())) {
      digests.remove(local);
      deleteQuietly(local);
      throw ModelLoadException.of(source, "its SHA-256 is " + actual + ", but " + source.sha256Key() + " expects "
          + source.sha256().get(), "The file is not the one that was registered: check where it came from, or set "
          + source.sha256Key() + " to the new file's hash", null);
    }
  }

  private static String sha256Of(Path file) {
    try (InputStream input = Files.newInputStream(file)) {
      java.security.MessageDigest digest = java.security.MessageDigest.getInstance("SHA-256");
      byte[] chunk = new byte[1 << 16];
      for (int read = input.read(chunk); read >= 0; read = input.read(chunk)) {
        digest.update(chunk, 0, read);
      }
      return java.util.HexFormat.of().formatHex(digest.digest());
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("Cannot read " + file + " to check its SHA-256", e);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Copies a version into a folder of its own unless it is there already: the .onnx first to a
   * temporary file, whose external-data references are read and checked (relative, inside the
   * folder), then each data file from the model's remote folder, then the .onnx into place, so a
   * model file under its final name always has its data next to it. Executors of one machine may
   * copy the same version at once: each writes its own temporary files and renames them into place
   * atomically. Folders are the executor user's alone (0700), files too (0600).
   */
  private LocalCopy copyUnchecked(ModelSource source, Remote file) {
    Path folder = directory.resolve(file.version.localFolderName());
    Path target = folder.resolve(file.version.localBaseName());
    long length = file.version.length();
    // Sessions with other settings share the copy; within this JVM it is made once.
    synchronized (copyLocks.computeIfAbsent(folder.toString(), ignored -> new Object())) {
      try {
        if (isComplete(target, length)) {
          return new LocalCopy(target, false);
        }
        PrivateFiles.createFolder(directory);
        PrivateFiles.createFolder(folder);
        Path temporary = folder.resolve("." + target.getFileName() + "." + UUID.randomUUID() + ".tmp");
        try {
          copyInto(file.fileSystem, file.status.getPath(), temporary, length);
          if (source.onnxFile()) {
            for (ExternalData.DataFile data : ExternalData.files(source, temporary)) {
              copyData(source, file, folder, data);
            }
          }
          moveIntoPlace(temporary, target, length);
        } finally {
          Files.deleteIfExists(temporary);
        }
        copies.incrementAndGet();
        return new LocalCopy(target, true);
      } catch (IOException e) {
        throw ModelLoadException.of(source,
            "copying it to the local cache folder " + folder + " failed (" + e + ")",
            "Check that the executors may read the file and that " + directory + " ("
                + SchedulingProperties.CACHE_DIRECTORY + ") is writable and has room for it",
            e);
      }
    }
  }

  /** One external-data file, from the model's remote folder to the same relative place in its local one. */
  private void copyData(ModelSource source, Remote model, Path folder, ExternalData.DataFile data) throws IOException {
    String location = data.location();
    org.apache.hadoop.fs.Path remote = new org.apache.hadoop.fs.Path(model.status.getPath().getParent(), location);
    // The data file as the model's own URI is: within the allowed roots (a symlink out of them is
    // refused); a file sparkinfer made in its cache folder has its data beside it there.
    if (source.derivedFrom().isEmpty()) {
      allowedRoots.check(source, remote.toString());
    }
    FileStatus status;
    try {
      status = model.fileSystem.getFileStatus(remote);
    } catch (FileNotFoundException e) {
      throw ModelLoadException.of(source, "its external data '" + location + "' is not at " + remote,
          "Put the model's data files next to its .onnx file, as it was saved", e);
    }
    data.checkRanges(source, status.getLen());
    Path target = folder.resolve(location).normalize();
    if (!target.startsWith(folder)) {
      throw ModelLoadException.of(source, "its external data '" + location + "' leaves the model's folder",
          "Save the model with its data files next to the .onnx file", null);
    }
    data.createFolders(folder);
    if (isComplete(target, status.getLen())) {
      return;
    }
    for (Path parent = target.getParent(); !parent.equals(folder); parent = parent.getParent()) {
      PrivateFiles.createFolder(parent);
    }
    Path temporary = target.resolveSibling("." + target.getFileName() + "." + UUID.randomUUID() + ".tmp");
    try {
      copyInto(model.fileSystem, remote, temporary, status.getLen());
      moveIntoPlace(temporary, target, status.getLen());
    } finally {
      Files.deleteIfExists(temporary);
    }
  }

  /** Copies a remote file to a new private local file, checking that it is whole. */
  private static void copyInto(FileSystem fileSystem, org.apache.hadoop.fs.Path remote, Path local, long length)
      throws IOException {
    try (InputStream input = fileSystem.open(remote); OutputStream output = PrivateFiles.newFile(local)) {
      input.transferTo(output);
    }
    long copied = Files.size(local);
    if (copied != length) {
      throw new IOException("read " + copied + " bytes of " + length + " from " + remote
          + "; the file changed while being copied");
    }
  }

  /** Deletes a local copy that ONNX Runtime could not read, so that the next attempt copies again. */
  static void deleteQuietly(Path file) {
    try {
      Files.deleteIfExists(file);
    } catch (IOException e) {
      LOG.warn("Cannot delete {}", file, e);
    }
  }

  private static boolean isComplete(Path file, long length) throws IOException {
    return Files.isRegularFile(file) && Files.size(file) == length;
  }

  private static void moveIntoPlace(Path temporary, Path target, long length) throws IOException {
    try {
      // On POSIX file systems this is rename(2), which atomically replaces an existing target.
      Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE);
    } catch (FileAlreadyExistsException e) {
      // Where rename does not replace, another executor got there first with the same version.
      if (!isComplete(target, length)) {
        throw e;
      }
    }
  }

  /** A model file where its FileSystem keeps it, at one version. */
  static final class Remote {
    // From Hadoop's per-JVM cache and shared: never closed here.
    private final FileSystem fileSystem;
    private final FileStatus status;
    private final ModelFileVersion version;

    private Remote(FileSystem fileSystem, FileStatus status) {
      this.fileSystem = fileSystem;
      this.status = status;
      this.version = ModelFileVersion.of(status);
    }

    ModelFileVersion version() {
      return version;
    }
  }

  /** The local copy of one version, and whether this call made it. */
  static final class LocalCopy {
    private final Path file;
    private final boolean copied;

    LocalCopy(Path file, boolean copied) {
      this.file = file;
      this.copied = copied;
    }

    Path file() {
      return file;
    }

    boolean copied() {
      return copied;
    }
  }
}

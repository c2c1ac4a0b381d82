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
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Model files as the cache sees them: found through the Hadoop FileSystem API (file:, hdfs:, s3a:,
 * ...) with their version ({@link RemoteFile}), and copied once per version into a folder of its
 * own in a local cache that is the executor user's alone. Thread-safe.
 */
final class ModelFiles {
  private static final Logger LOG = LoggerFactory.getLogger(ModelFiles.class);

  private final Path directory;
  private final AllowedRoots allowedRoots;
  private final ConcurrentMap<String, Object> copyLocks = new ConcurrentHashMap<>();
  private final AtomicLong copies = new AtomicLong();
  // The copies this JVM resolved, by the index name of their .onnx version.
  private final ConcurrentMap<String, CopyRecord> records = new ConcurrentHashMap<>();
  static final String INDEX_PREFIX = ".version-";

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

  /**
   * The local copy of {@code file}'s current version, with a use of its folder held for the caller
   * ({@link FolderLocks#release}). Found without reading the remote file when this JVM or another
   * one of this machine has copied the same version (same URI, mtime, length and change token for
   * the .onnx and each data file) and that copy is trusted ({@link ModelFileVersion#trusts});
   * otherwise the remote files are hashed again (an ambiguous copy) or copied into a new folder.
   * Checked against the source's SHA-256, if it has one.
   */
  LocalCopy copy(ModelSource source, RemoteFile file) {
    String indexName = file.version().indexName();
    synchronized (copyLocks.computeIfAbsent(indexName, ignored -> new Object())) {
      try {
        CopyRecord known = records.get(indexName);
        if (known == null) {
          known = CopyRecord.read(directory.resolve(INDEX_PREFIX + indexName));
        }
        if (known != null && FolderLocks.use(directory.resolve(known.folder))) {
          LocalCopy copy = reuse(source, file, known, indexName);
          if (copy != null) {
            return verified(source, copy);
          }
          FolderLocks.release(directory.resolve(known.folder));
        }
        return verified(source, copyAnew(source, file, indexName));
      } catch (IOException e) {
        throw ModelLoadException.of(source,
            "copying it to the local cache folder " + directory + " failed (" + e + ")",
            "Check that the executors may read the file and that " + directory + " ("
                + SchedulingProperties.CACHE_DIRECTORY + ") is writable and has room for it",
            e);
      }
    }
  }

  /** The known copy if its data files are the same versions and it is trusted or still hashes the same; else null. */
  private LocalCopy reuse(ModelSource source, RemoteFile file, CopyRecord known, String indexName) throws IOException {
    if (!Files.isRegularFile(directory.resolve(known.folder).resolve(file.version().localBaseName()))) {
      return null;  // deleted from under the record (ONNX Runtime could not read it)
    }
    boolean trusted = file.version().trusts(known.readStartMillis);
    for (CopyRecord.Data data : known.data) {
      ModelFileVersion now = ModelFileVersion.of(file.fileSystem(), dataStatus(source, file, data.location));
      if (!now.indexName().equals(data.versionName)) {
        return null;  // a data file changed: its .onnx may be the same, its weights are not
      }
      trusted &= now.trusts(known.readStartMillis);
    }
    if (!trusted) {
      // Written too close to when the copy was read to be sure the copy is of what is there now.
      long start = System.currentTimeMillis();
      if (!manifest(file.version().localBaseName(), hashRemote(file.fileSystem(), file.status().getPath()),
          hashData(source, file, known)).equals(known.manifestSha256)) {
        return null;
      }
      known = known.readAt(start);
      known.write(directory, INDEX_PREFIX + indexName);
    }
    records.put(indexName, known);
    return new LocalCopy(directory.resolve(known.folder).resolve(file.version().localBaseName()), false,
        known.onnxSha256, known.manifestSha256, !known.data.isEmpty());
  }

  private java.util.Map<String, String> hashData(ModelSource source, RemoteFile file, CopyRecord known) throws IOException {
    java.util.Map<String, String> hashes = new java.util.TreeMap<>();
    for (CopyRecord.Data data : known.data) {
      hashes.put(data.location, hashRemote(file.fileSystem(), dataStatus(source, file, data.location).getPath()));
    }
    return hashes;
  }

  /**
   * Copies a version into a new folder of its own, hashing each file as it is written: the .onnx
   * first, whose external-data references are read and checked (relative, inside the folder), then
   * each data file from the model's remote folder. The folder is recorded (its {@code .complete}
   * marker, then the index other JVMs read) only once every file is there and hashed; a failed copy
   * deletes it. Folders are the executor user's alone (0700), files too (0600).
   */
  private LocalCopy copyAnew(ModelSource source, RemoteFile file, String indexName) throws IOException {
    PrivateFiles.createFolder(directory);
    long start = System.currentTimeMillis();
    String folderName = UUID.randomUUID().toString().replace("-", "");
    Path folder = directory.resolve(folderName);
    boolean done = false;
    try {
      PrivateFiles.createFolder(folder);
      Path target = folder.resolve(file.version().localBaseName());
      String onnxSha256 = copyInto(file.fileSystem(), file.status().getPath(), target, file.version().length());
      java.util.List<CopyRecord.Data> data = new java.util.ArrayList<>();
      java.util.Map<String, String> dataHashes = new java.util.TreeMap<>();
      if (source.onnxFile()) {
        for (ExternalData.DataFile dataFile : ExternalData.files(source, target)) {
          CopyRecord.Data copied = copyData(source, file, folder, dataFile);
          data.add(copied);
          dataHashes.put(dataFile.location(), copied.sha256);
        }
      }
      CopyRecord record = new CopyRecord(folderName, start, onnxSha256,
          manifest(file.version().localBaseName(), onnxSha256, dataHashes), data);
      record.write(folder, FolderLocks.COMPLETE_FILE);
      if (!FolderLocks.use(folder)) {
        throw new IOException("the new local copy " + folder + " vanished");
      }
      done = true;
      record.write(directory, INDEX_PREFIX + indexName);
      records.put(indexName, record);
      copies.incrementAndGet();
      return new LocalCopy(target, true, onnxSha256, record.manifestSha256, !data.isEmpty());
    } finally {
      if (!done) {
        // A failed copy leaves nothing behind; nobody else knows of the folder yet.
        FolderLocks.deleteTree(folder);
      }
    }
  }

  /** The status of one external-data file, from the model's remote folder. */
  private static FileStatus dataStatus(ModelSource source, RemoteFile model, String location) throws IOException {
    org.apache.hadoop.fs.Path remote = new org.apache.hadoop.fs.Path(model.status().getPath().getParent(), location);
    try {
      return model.fileSystem().getFileStatus(remote);
    } catch (FileNotFoundException e) {
      throw ModelLoadException.of(source, "its external data '" + location + "' is not at " + remote,
          "Put the model's data files next to its .onnx file, as it was saved", e);
    }
  }

  /** One external-data file, from the model's remote folder to the same relative place in its local one. */
  private CopyRecord.Data copyData(ModelSource source, RemoteFile model, Path folder, ExternalData.DataFile dataFile)
      throws IOException {
    String location = dataFile.location();
    // The data file as the model's own URI is: within the allowed roots (a symlink out of them is
    // refused); a file sparkinfer made in its cache folder has its data beside it there.
    if (source.derivedFrom().isEmpty()) {
      allowedRoots.check(source, new org.apache.hadoop.fs.Path(model.status().getPath().getParent(), location).toString());
    }
    FileStatus status = dataStatus(source, model, location);
    dataFile.checkRanges(source, status.getLen());
    Path target = folder.resolve(location).normalize();
    if (!target.startsWith(folder) || target.getFileName().toString().startsWith(".")) {
      throw ModelLoadException.of(source, "its external data '" + location + "' leaves the model's folder",
          "Save the model with its data files next to the .onnx file", null);
    }
    dataFile.createFolders(folder);
    for (Path parent = target.getParent(); !parent.equals(folder); parent = parent.getParent()) {
      PrivateFiles.createFolder(parent);
    }
    String sha256 = Files.exists(target) ? sha256Of(target) : copyInto(model.fileSystem(), status.getPath(), target,
        status.getLen());
    return new CopyRecord.Data(location, ModelFileVersion.of(model.fileSystem(), status).indexName(), sha256);
  }

  /**
   * The SHA-256 a model's sha256 key is checked against when it has external data: that of the
   * manifest {@code sha256sum} prints for its files, sorted by name (LC_ALL=C), the .onnx included;
   * for example {@code sha256sum model.onnx weights.bin | sort -k2 | sha256sum}.
   */
  static String manifest(String onnxName, String onnxSha256, java.util.Map<String, String> dataSha256) {
    java.util.Map<String, String> all = new java.util.TreeMap<>(dataSha256);
    all.put(onnxName, onnxSha256);
    StringBuilder lines = new StringBuilder();
    all.forEach((name, sha) -> lines.append(sha).append("  ").append(name).append('\n'));
    try {
      return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
          .digest(lines.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Checks a copy against the source's expected SHA-256, if it has one: the .onnx file's, or for
   * a model with external data the manifest's ({@link #manifest}), so the data is covered too.
   */
  void verify(ModelSource source, LocalCopy copy) {
    if (source.sha256().isEmpty()) {
      return;
    }
    String actual = copy.hasData() ? copy.digest() : copy.onnxSha256();
    if (!actual.equals(source.sha256().get())) {
      throw ModelLoadException.of(source, (copy.hasData() ? "the SHA-256 of its files' manifest (sha256sum"
          + " <.onnx and data files> | sort -k2 | sha256sum) is " : "its SHA-256 is ") + actual + ", but "
          + source.sha256Key() + " expects " + source.sha256().get(), "The file is not the one that was registered:"
          + " check where it came from, or set " + source.sha256Key() + " to the new file's hash", null);
    }
  }

  private LocalCopy verified(ModelSource source, LocalCopy copy) {
    try {
      verify(source, copy);
      return copy;
    } catch (RuntimeException e) {
      FolderLocks.release(copy.folder());
      throw e;
    }
  }

  private static String hashRemote(FileSystem fileSystem, org.apache.hadoop.fs.Path remote) throws IOException {
    try (InputStream input = fileSystem.open(remote)) {
      return hashOf(input, OutputStream.nullOutputStream());
    }
  }

  static String sha256Of(Path file) {
    try (InputStream input = Files.newInputStream(file)) {
      return hashOf(input, OutputStream.nullOutputStream());
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("Cannot read " + file + " to check its SHA-256", e);
    }
  }

  private static String hashOf(InputStream input, OutputStream output) throws IOException {
    java.security.MessageDigest digest;
    try {
      digest = java.security.MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    byte[] chunk = new byte[1 << 16];
    for (int read = input.read(chunk); read >= 0; read = input.read(chunk)) {
      digest.update(chunk, 0, read);
      output.write(chunk, 0, read);
    }
    return java.util.HexFormat.of().formatHex(digest.digest());
  }

  /** Copies a remote file to a new private local file, checking that it is whole; returns its SHA-256. */
  private static String copyInto(FileSystem fileSystem, org.apache.hadoop.fs.Path remote, Path local, long length)
      throws IOException {
    String sha256;
    try (InputStream input = fileSystem.open(remote); OutputStream output = PrivateFiles.newFile(local)) {
      sha256 = hashOf(input, output);
    }
    long copied = Files.size(local);
    if (copied != length) {
      throw new IOException("read " + copied + " bytes of " + length + " from " + remote
          + "; the file changed while being copied");
    }
    return sha256;
  }

  /** Deletes a local copy that ONNX Runtime could not read, so that the next attempt copies again. */
  static void deleteQuietly(Path file) {
    try {
      Files.deleteIfExists(file);
    } catch (IOException e) {
      LOG.warn("Cannot delete {}", file, e);
    }
  }

  /**
   * The local copy of one version: its .onnx file, whether this call made it, and its content: the
   * .onnx file's SHA-256 and the manifest's over all its files ({@link #manifest}), which is what a
   * session is loaded for.
   */
  static final class LocalCopy {
    private final Path file;
    private final boolean copied;
    private final String onnxSha256;
    private final String digest;
    private final boolean hasData;

    LocalCopy(Path file, boolean copied, String onnxSha256, String digest, boolean hasData) {
      this.file = file;
      this.copied = copied;
      this.onnxSha256 = onnxSha256;
      this.digest = digest;
      this.hasData = hasData;
    }

    Path file() {
      return file;
    }

    Path folder() {
      return file.getParent();
    }

    boolean copied() {
      return copied;
    }

    String onnxSha256() {
      return onnxSha256;
    }

    /** The SHA-256 of the manifest of every file of the copy: its content. */
    String digest() {
      return digest;
    }

    boolean hasData() {
      return hasData;
    }
  }
}

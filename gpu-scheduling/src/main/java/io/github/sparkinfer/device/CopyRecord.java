package io.github.sparkinfer.device;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.UUID;

/**
 * What the cache knows of one local copy: its folder, when its remote files were read, the SHA-256
 * of its .onnx file and of its files' manifest, and the version of each external-data file. Kept in
 * the folder ({@code .complete}, written last) and in an index file named by the .onnx version, so
 * the executor JVMs of a machine share copies. Our own private files, but read with bounds.
 */
final class CopyRecord {
  private static final long MAX_BYTES = 1 << 20;
  private static final int MAX_DATA_FILES = 100_000;

  final String folder;
  final long readStartMillis;
  final String onnxSha256;
  final String manifestSha256;
  final List<Data> data;

  /** One external-data file: where the .onnx says it is, its version's index name, its SHA-256. */
  static final class Data {
    final String location;
    final String versionName;
    final String sha256;

    Data(String location, String versionName, String sha256) {
      this.location = location;
      this.versionName = versionName;
      this.sha256 = sha256;
    }
  }

  CopyRecord(String folder, long readStartMillis, String onnxSha256, String manifestSha256, List<Data> data) {
    this.folder = folder;
    this.readStartMillis = readStartMillis;
    this.onnxSha256 = onnxSha256;
    this.manifestSha256 = manifestSha256;
    this.data = List.copyOf(data);
  }

  /** The same copy, its remote files read (hashed) again from {@code millis}. */
  CopyRecord readAt(long millis) {
    return new CopyRecord(folder, Math.max(millis, readStartMillis), onnxSha256, manifestSha256, data);
  }

  /** Writes the record to {@code folder/name} atomically (a temporary file renamed into place). */
  void write(Path folder, String name) throws IOException {
    Properties properties = new Properties();
    properties.setProperty("folder", this.folder);
    properties.setProperty("read", Long.toString(readStartMillis));
    properties.setProperty("onnx", onnxSha256);
    properties.setProperty("manifest", manifestSha256);
    properties.setProperty("data", Integer.toString(data.size()));
    for (int i = 0; i < data.size(); i++) {
      properties.setProperty("data." + i + ".location", data.get(i).location);
      properties.setProperty("data." + i + ".version", data.get(i).versionName);
      properties.setProperty("data." + i + ".sha256", data.get(i).sha256);
    }
    Path temporary = folder.resolve("." + name + "." + UUID.randomUUID() + ".tmp");
    try {
      try (OutputStream output = PrivateFiles.newFile(temporary)) {
        properties.store(output, null);
      }
      Files.move(temporary, folder.resolve(name), StandardCopyOption.ATOMIC_MOVE,
          StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(temporary);
    }
  }

  /** The record at {@code file}, or null when there is none or it is not one (then it is ignored). */
  static CopyRecord read(Path file) {
    try {
      if (!Files.isRegularFile(file) || Files.size(file) > MAX_BYTES) {
        return null;
      }
      Properties properties = new Properties();
      properties.load(new java.io.StringReader(new String(Files.readAllBytes(file), StandardCharsets.ISO_8859_1)));
      int count = Integer.parseInt(properties.getProperty("data", "0"));
      if (count < 0 || count > MAX_DATA_FILES) {
        return null;
      }
      List<Data> data = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        data.add(new Data(require(properties, "data." + i + ".location"), require(properties, "data." + i + ".version"),
            require(properties, "data." + i + ".sha256")));
      }
      String folder = require(properties, "folder");
      if (!folder.matches("[0-9a-f]{32}")) {
        return null;
      }
      return new CopyRecord(folder, Long.parseLong(require(properties, "read")), require(properties, "onnx"),
          require(properties, "manifest"), data);
    } catch (IOException | RuntimeException e) {
      return null;
    }
  }

  private static String require(Properties properties, String key) {
    String value = properties.getProperty(key);
    if (value == null) {
      throw new IllegalArgumentException("no " + key);
    }
    return value;
  }
}

package io.github.sparkinfer.spark.ml;

import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.ml.util.DefaultParamsReader;

/**
 * Reads an {@link InferenceTransformer} that {@link InferenceTransformerWriter} saved: its params,
 * then its model and tokenizer URIs pointed at the copies inside the saved folder.
 */
final class InferenceTransformerReader extends DefaultParamsReader<InferenceTransformer> {

  @Override
  public InferenceTransformer load(String path) {
    InferenceTransformer stage = super.load(path);
    String model = savedFile(path, InferenceTransformerWriter.MODEL_FOLDER);
    if (model != null) {
      stage.setModelUri(model);
    }
    String tokenizer = savedFile(path, InferenceTransformerWriter.TOKENIZER_FOLDER);
    if (tokenizer != null) {
      stage.setTokenizerUri(tokenizer);
    }
    return stage;
  }

  /** The one file in the stage's {@code folder}, as a full URI; null when the stage saved none. */
  private String savedFile(String path, String folder) {
    Path directory = new Path(path, folder);
    try {
      FileSystem fileSystem = directory.getFileSystem(sc().hadoopConfiguration());
      if (!fileSystem.exists(directory)) {
        return null;
      }
      FileStatus[] files = fileSystem.listStatus(directory, file -> !file.getName().startsWith("."));
      if (files.length != 1) {
        throw new IOException("expected one file in " + directory + ", found " + files.length);
      }
      return fileSystem.makeQualified(files[0].getPath()).toString();
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot read the saved InferenceTransformer at " + path + ": " + e.getMessage(), e);
    }
  }
}

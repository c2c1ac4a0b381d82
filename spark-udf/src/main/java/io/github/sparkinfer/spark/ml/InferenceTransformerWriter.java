package io.github.sparkinfer.spark.ml;

import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.FileUtil;
import org.apache.hadoop.fs.Path;
import org.apache.spark.ml.util.DefaultParamsWriter;

/**
 * Saves an {@link InferenceTransformer}: its params as Spark ML's default writer does (so a
 * PipelineModel reads it back like any stage), then a copy of the model file under {@code model/}
 * and of the tokenizer under {@code tokenizer/}, which the reader points the stage at.
 */
final class InferenceTransformerWriter extends DefaultParamsWriter {
  static final String MODEL_FOLDER = "model";
  static final String TOKENIZER_FOLDER = "tokenizer";

  private final InferenceTransformer stage;

  InferenceTransformerWriter(InferenceTransformer stage) {
    super(stage);
    this.stage = stage;
  }

  @Override
  public void saveImpl(String path) {
    super.saveImpl(path);
    Configuration configuration = sc().hadoopConfiguration();
    if (stage.isDefined(stage.modelUri())) {
      copy(stage.getOrDefault(stage.modelUri()), new Path(path, MODEL_FOLDER), configuration);
    }
    if (stage.isDefined(stage.tokenizerUri())) {
      copy(stage.getOrDefault(stage.tokenizerUri()), new Path(path, TOKENIZER_FOLDER), configuration);
    }
  }

  private void copy(String uri, Path folder, Configuration configuration) {
    Path source = new Path(uri);
    try {
      FileSystem sourceSystem = source.getFileSystem(configuration);
      FileSystem targetSystem = folder.getFileSystem(configuration);
      if (!FileUtil.copy(sourceSystem, source, targetSystem, new Path(folder, source.getName()), false, true,
          configuration)) {
        throw new IOException("the copy was refused");
      }
    } catch (IOException e) {
      throw new UncheckedIOException("Cannot save InferenceTransformer " + stage.uid() + " (model '"
          + stage.getOrDefault(stage.modelName()) + "'): copying " + uri + " into " + folder + " failed: " + e.getMessage()
          + ". Check that the file exists and that the pipeline's folder is writable", e);
    }
  }
}

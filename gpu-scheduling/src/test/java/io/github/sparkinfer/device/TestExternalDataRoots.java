package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each external-data file is checked against the allowed roots as the model's own URI is: a data
 * file inside the model's folder that is a symlink out of the roots is refused, never copied.
 */
class TestExternalDataRoots {
  private static final SessionSettings ONE_THREAD = SessionSettings.builder().build();

  @TempDir Path temp;

  @Test
  void aDataFileThatLeadsOutOfTheAllowedRootsIsRefused() throws Exception {
    Path models = Files.createDirectories(temp.resolve("models"));
    Path secret = Files.createDirectories(temp.resolve("secret")).resolve("w.bin");
    Files.write(secret, new byte[4 * 8 * 3]);
    Files.createSymbolicLink(models.resolve("weights.bin"), secret);
    Files.write(models.resolve("model.onnx"), OnnxModels.externalMatMul("weights.bin", 8, 3));
    String uri = models.resolve("model.onnx").toUri().toString();
    try (ModelCache cache = new ModelCache(temp.resolve("cache"), AllowedRoots.parse(models.toUri().toString()))) {
      assertThatThrownBy(() -> cache.acquire(ModelSource.of("linked", uri), ONE_THREAD, new Configuration()))
          .isInstanceOf(ModelLoadException.class)
          .hasMessageContaining("Cannot load model 'linked' from " + uri + ": it is outside the allowed roots")
          .hasMessageContaining(SchedulingProperties.MODEL_ALLOWED_ROOTS);
      assertThat(cache.copyCount()).isZero();
    }
  }

  @Test
  void aDataFileInsideTheRootsLoads() throws Exception {
    Path models = Files.createDirectories(temp.resolve("models"));
    Files.write(models.resolve("weights.bin"), new byte[4 * 8 * 3]);
    Files.write(models.resolve("model.onnx"), OnnxModels.externalMatMul("weights.bin", 8, 3));
    try (ModelCache cache = new ModelCache(temp.resolve("cache"), AllowedRoots.parse(models.toUri().toString()))) {
      LoadedModel model = cache.acquire(ModelSource.of("inside", models.resolve("model.onnx").toUri().toString()),
          ONE_THREAD, new Configuration());
      assertThat(model.signature().inputs()).hasSize(1);
    }
  }
}

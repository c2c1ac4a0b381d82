package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtSession;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The model cache is private (folders 0700, files 0600, one folder per model version) and copies a
 * model's external-data files with it, refusing references that leave the model's folder before
 * any data file is copied.
 */
class TestPrivateCacheAndExternalData {
  private static final SessionSettings ONE_THREAD = SessionSettings.builder().build();
  private static final int ROWS = 8;
  private static final int COLUMNS = 3;

  @TempDir Path temp;
  private Path remote;
  private ModelCache cache;
  private final Configuration hadoop = new Configuration();

  @BeforeEach
  void setUp() throws Exception {
    remote = Files.createDirectories(temp.resolve("remote"));
    cache = new ModelCache(temp.resolve("cache"));
  }

  @AfterEach
  void tearDown() {
    cache.close();
  }

  @Test
  void externalWeightsAreCopiedNextToTheModelAndGiveTheRightProduct() throws Exception {
    float[] weights = writeExternalModel("model.onnx", "weights.bin", "weights.bin");
    LoadedModel model = cache.acquire(ModelSource.of("ext", remote.resolve("model.onnx").toUri().toString()),
        ONE_THREAD, hadoop);
    assertThat(run(model)).containsExactly(expected(weights));
    List<Path> copied = filesIn(cache.cacheDirectory());
    assertThat(copied).extracting(file -> file.getFileName().toString()).containsExactlyInAnyOrder("model.onnx", "weights.bin");
    assertThat(copied.get(0).getParent()).isEqualTo(copied.get(1).getParent());
    assertThat(copied.get(0).getParent().getFileName().toString()).matches("[0-9a-f]{32}");
  }

  @Test
  void dataInASubfolderIsCopiedToTheSameSubfolder() throws Exception {
    Files.createDirectories(remote.resolve("data"));
    float[] weights = writeExternalModel("model.onnx", "data/w.bin", "data/w.bin");
    LoadedModel model = cache.acquire(ModelSource.of("ext", remote.resolve("model.onnx").toString()), ONE_THREAD, hadoop);
    assertThat(run(model)).containsExactly(expected(weights));
    assertThat(filesIn(cache.cacheDirectory())).anyMatch(file -> file.endsWith("data/w.bin"));
  }

  @Test
  void referencesOutsideTheModelsFolderAreRefusedBeforeAnyDataIsCopied() throws Exception {
    Files.createDirectories(temp.resolve("secret"));
    writeExternalModel("escape.onnx", "../secret/w.bin", "../secret/w.bin");
    String uri = remote.resolve("escape.onnx").toUri().toString();
    assertThatThrownBy(() -> cache.acquire(ModelSource.of("escape", uri), ONE_THREAD, hadoop))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("Cannot load model 'escape' from " + uri + ": its tensor 'w' references external data"
            + " at '../secret/w.bin', which leaves the model's folder: only a file inside the model's own folder");
    writeExternalModel("absolute.onnx", temp.resolve("secret/w.bin").toString(), "absolute.bin");
    assertThatThrownBy(() -> cache.acquire(ModelSource.of("absolute", remote.resolve("absolute.onnx").toString()),
        ONE_THREAD, hadoop)).hasMessageContaining("its tensor 'w' references external data at '" + temp.resolve("secret/w.bin") + "', which is absolute");
    assertThat(filesIn(cache.cacheDirectory())).isEmpty();
    assertThat(cache.copyCount()).isZero();
  }

  @Test
  void aMissingDataFileNamesItsLocation() throws Exception {
    writeExternalModel("model.onnx", "weights.bin", "elsewhere.bin");
    assertThatThrownBy(() -> cache.acquire(ModelSource.of("ext", remote.resolve("model.onnx").toString()), ONE_THREAD, hadoop))
        .hasMessageContaining("its external data 'weights.bin' is not at");
  }

  @Test
  void cacheFoldersAndFilesAreTheUsersAlone() throws Exception {
    Files.createDirectories(temp.resolve("loose"), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
    try (ModelCache loose = new ModelCache(temp.resolve("loose"))) {
      writeExternalModel("model.onnx", "weights.bin", "weights.bin");
      loose.acquire(ModelSource.of("ext", remote.resolve("model.onnx").toString()), ONE_THREAD, hadoop);
      assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(temp.resolve("loose")))).isEqualTo("rwx------");
      for (Path file : filesIn(temp.resolve("loose"))) {
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file))).as("%s", file).isEqualTo("rw-------");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file.getParent()))).isEqualTo("rwx------");
      }
    }
    assertThat(SchedulingProperties.CACHE_DIRECTORY_DEFAULT).endsWith("/sparkinfer-model-cache-" + System.getProperty("user.name"));
  }

  /** Writes a model whose weights are at {@code location}, and the weights to {@code dataFile} (in remote). */
  private float[] writeExternalModel(String modelFile, String location, String dataFile) throws Exception {
    float[] weights = new float[ROWS * COLUMNS];
    for (int i = 0; i < weights.length; i++) {
      weights[i] = (i % 7) - 3 + 0.25f * i;
    }
    ByteBuffer bytes = ByteBuffer.allocate(4 * weights.length).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(weights);
    Files.write(remote.resolve(dataFile), bytes.array());
    Files.write(remote.resolve(modelFile), OnnxModels.externalMatMul(location, ROWS, COLUMNS));
    return weights;
  }

  /** x = (1, 2, ..., 8): y_j = sum_i x_i w_ij, worked in double from the weights written. */
  private static float[] expected(float[] weights) {
    float[] y = new float[COLUMNS];
    for (int j = 0; j < COLUMNS; j++) {
      double sum = 0;
      for (int i = 0; i < ROWS; i++) {
        sum += (i + 1) * (double) weights[i * COLUMNS + j];
      }
      y[j] = (float) sum;
    }
    return y;
  }

  private static float[] run(LoadedModel model) throws Exception {
    float[] x = new float[ROWS];
    for (int i = 0; i < ROWS; i++) {
      x[i] = i + 1;
    }
    try (OnnxTensor input = OnnxTensor.createTensor(OrtEnvironments.get(), FloatBuffer.wrap(x), new long[] {1, ROWS});
        OrtSession.Result result = model.session().run(Map.of("x", input))) {
      return ((float[][]) result.get(0).getValue())[0];
    }
  }

  private static List<Path> filesIn(Path folder) throws Exception {
    if (!Files.exists(folder)) {
      return List.of();
    }
    try (Stream<Path> files = Files.walk(folder)) {
      return files.filter(Files::isRegularFile).filter(file -> !file.getFileName().toString().startsWith(".")).sorted().collect(Collectors.toList());
    }
  }
}

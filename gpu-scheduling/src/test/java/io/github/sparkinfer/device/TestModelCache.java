package io.github.sparkinfer.device;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.assertj.core.api.Assertions.within;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestModelCache {
  private static final SessionSettings ONE_THREAD = SessionSettings.builder().build();
  private static final SessionSettings TWO_THREADS =
      SessionSettings.builder().intraOpThreads(2).build();
  private static final int THREADS = 16;

  @TempDir static Path modelFolder;
  private static Path miniLm;

  @TempDir Path temp;
  private final Configuration hadoopConfiguration = new Configuration();
  private ModelCache cache;

  @BeforeAll
  static void copyMiniLm() {
    miniLm = OnnxModels.copyMiniLm(modelFolder.resolve("minilm.onnx"));
  }

  @BeforeEach
  void createCache() {
    cache = new ModelCache(temp.resolve("cache"));
  }

  @AfterEach
  void closeCache() {
    cache.close();
  }

  @Test
  void miniLmSignature() {
    ModelSource source = ModelSource.of("minilm", miniLm.toUri().toString());
    LoadedModel model = cache.acquire(source, ONE_THREAD, hadoopConfiguration);

    assertThat(model.source()).isEqualTo(source);
    assertThat(model.settings()).isEqualTo(ONE_THREAD);
    List<TensorSpec> inputs = model.signature().inputs();
    assertThat(inputs)
        .extracting(TensorSpec::name)
        .containsExactly("input_ids", "attention_mask", "token_type_ids");
    for (TensorSpec input : inputs) {
      assertThat(input.elementType()).isEqualTo(TensorElementType.INT64);
      assertThat(input.onnxTypeName()).isEqualTo("INT64");
      assertThat(input.shape()).containsExactly(-1, -1);
      assertThat(input.shapeString()).isEqualTo("[batch_size, sequence_length]");
    }

    assertThat(model.signature().outputs()).hasSize(1);
    TensorSpec output = model.signature().outputs().get(0);
    assertThat(output.name()).isEqualTo("last_hidden_state");
    assertThat(output.elementType()).isEqualTo(TensorElementType.FLOAT);
    assertThat(output.onnxTypeName()).isEqualTo("FLOAT");
    assertThat(output.shape()).containsExactly(-1, -1, 384);
    assertThat(output.dimensionName(2)).isEmpty();
    assertThat(output.shapeString()).isEqualTo("[batch_size, sequence_length, 384]");
  }

  @Test
  void concurrentAcquiresLoadOnce() throws Exception {
    ModelSource source = ModelSource.of("minilm", miniLm.toUri().toString());

    List<LoadedModel> models =
        runTogether(() -> cache.acquire(source, ONE_THREAD, hadoopConfiguration));

    Set<OrtSession> sessions = Collections.newSetFromMap(new IdentityHashMap<>());
    models.forEach(model -> sessions.add(model.session()));
    assertThat(sessions).hasSize(1);
    assertThat(cache.loadCount()).isEqualTo(1);
    assertThat(cache.loadCount(source)).isEqualTo(1);
    assertThat(cache.copyCount()).isEqualTo(1);
  }

  @Test
  void concurrentAcquiresOfACorruptFileAllFail() throws Exception {
    Path file = temp.resolve("broken.onnx");
    Files.write(file, garbage(4096));
    ModelSource source = ModelSource.of("broken", file.toUri().toString());

    List<Object> outcomes =
        runTogether(
            () -> {
              try {
                return cache.acquire(source, ONE_THREAD, hadoopConfiguration);
              } catch (ModelLoadException e) {
                return e;
              }
            });

    assertThat(outcomes)
        .allSatisfy(
            outcome ->
                assertThat(outcome)
                    .isInstanceOfSatisfying(
                        ModelLoadException.class,
                        e ->
                            assertThat(e)
                                .hasMessageContaining("could not read it as an ONNX model")));
    assertThat(cache.loadCount()).isZero();
  }

  @Test
  void differentSettingsLoadSeparateSessions() throws IOException {
    ModelSource source = tinyModel();

    LoadedModel oneThread = cache.acquire(source, ONE_THREAD, hadoopConfiguration);
    LoadedModel twoThreads = cache.acquire(source, TWO_THREADS, hadoopConfiguration);

    assertThat(twoThreads.session()).isNotSameAs(oneThread.session());
    assertThat(oneThread.settings()).isEqualTo(ONE_THREAD);
    assertThat(twoThreads.settings()).isEqualTo(TWO_THREADS);
    assertThat(cache.acquire(source, ONE_THREAD, hadoopConfiguration).session())
        .isSameAs(oneThread.session());
    assertThat(cache.loadCount()).isEqualTo(2);
    assertThat(cache.loadCount(source)).isEqualTo(2);
    // Both sessions read the one local copy.
    assertThat(cache.copyCount()).isEqualTo(1);
  }

  @Test
  void copiesTheFileOnceAndReusesTheLocalCopy() throws IOException {
    byte[] bytes = OnnxModels.identity(OnnxModels.FLOAT, "batch", 4);
    ModelSource source = source("tiny", "tiny.onnx", bytes);

    LoadedModel first = cache.acquire(source, ONE_THREAD, hadoopConfiguration);
    LoadedModel second = cache.acquire(source, ONE_THREAD, hadoopConfiguration);

    assertThat(second).isSameAs(first);
    assertThat(cache.copyCount()).isEqualTo(1);
    assertThat(cache.loadCount()).isEqualTo(1);
    List<Path> copies = filesIn(cache.cacheDirectory());
    assertThat(copies).hasSize(1);
    assertThat(copies.get(0).getFileName().toString()).isEqualTo("tiny.onnx");
    assertThat(Files.readAllBytes(copies.get(0))).isEqualTo(bytes);

    // Another executor JVM on this machine: it loads its own session from the existing copy.
    try (ModelCache otherExecutor = new ModelCache(cache.cacheDirectory())) {
      LoadedModel other = otherExecutor.acquire(source, ONE_THREAD, hadoopConfiguration);
      assertThat(other.session()).isNotSameAs(first.session());
      assertThat(otherExecutor.loadCount()).isEqualTo(1);
      assertThat(otherExecutor.copyCount()).isZero();
    }
    assertThat(filesIn(cache.cacheDirectory())).isEqualTo(copies);
  }

  @Test
  void replacedFileIsLoadedAsANewVersion() throws IOException {
    ModelSource source = tinyModel();
    LoadedModel before = cache.acquire(source, ONE_THREAD, hadoopConfiguration);

    Path file = temp.resolve("tiny.onnx");
    Files.write(file, OnnxModels.identity(OnnxModels.DOUBLE, "rows", 8));
    Files.setLastModifiedTime(
        file, FileTime.fromMillis(Files.getLastModifiedTime(file).toMillis() + 10_000));
    LoadedModel after = cache.acquire(source, ONE_THREAD, hadoopConfiguration);

    assertThat(after.session()).isNotSameAs(before.session());
    assertThat(before.signature().inputs().get(0).toString()).isEqualTo("x: FLOAT[batch, 4]");
    assertThat(after.signature().inputs().get(0).toString()).isEqualTo("x: DOUBLE[rows, 8]");
    assertThat(cache.acquire(source, ONE_THREAD, hadoopConfiguration)).isSameAs(after);
    assertThat(cache.loadCount(source)).isEqualTo(2);
    assertThat(cache.copyCount()).isEqualTo(2);
    // Nothing holds the replaced version: its session is closed and its copy deleted.
    assertThat(filesIn(cache.cacheDirectory())).hasSize(1);
    assertThat(cache.evictionCount()).isEqualTo(1);
  }

  @Test
  void pathWithoutSchemeIsALocalFile() throws IOException {
    Path file = temp.resolve("tiny.onnx");
    Files.write(file, OnnxModels.identity(OnnxModels.FLOAT, "batch", 4));
    // A cluster's default file system must not be used for a bare path.
    hadoopConfiguration.set("fs.defaultFS", "hdfs://no-such-namenode.invalid:8020");

    LoadedModel bare =
        cache.acquire(ModelSource.of("tiny", file.toString()), ONE_THREAD, hadoopConfiguration);
    LoadedModel withScheme =
        cache.acquire(
            ModelSource.of("tiny", file.toUri().toString()), ONE_THREAD, hadoopConfiguration);

    assertThat(withScheme.session()).isSameAs(bare.session());
    assertThat(cache.loadCount()).isEqualTo(1);
  }

  @Test
  void twoNamesForOneFileShareTheSession() throws IOException {
    Path file = temp.resolve("tiny.onnx");
    Files.write(file, OnnxModels.identity(OnnxModels.FLOAT, "batch", 4));
    ModelSource first = ModelSource.of("first", file.toUri().toString());
    ModelSource second = ModelSource.of("second", file.toUri().toString());

    LoadedModel firstModel = cache.acquire(first, ONE_THREAD, hadoopConfiguration);
    LoadedModel secondModel = cache.acquire(second, ONE_THREAD, hadoopConfiguration);

    assertThat(secondModel.session()).isSameAs(firstModel.session());
    assertThat(firstModel.source()).isEqualTo(first);
    assertThat(secondModel.source()).isEqualTo(second);
    assertThat(cache.loadCount()).isEqualTo(1);
    assertThat(cache.loadCount(first)).isEqualTo(1);
    assertThat(cache.loadCount(second)).isZero();
  }

  @Test
  void missingFile() {
    String uri = temp.resolve("models/missing.onnx").toUri().toString();

    // The setting that registered the file is the caller's (spark-udf's registry); this module
    // only words the message with it.
    ModelSource registered = ModelSource.registered("minilm", uri, "spark.sparkinfer.model.minilm.path");
    assertThatThrownBy(() -> cache.acquire(registered, ONE_THREAD, hadoopConfiguration))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("Cannot load model 'minilm' from " + uri + ": file not found.")
        .hasMessageContaining(
            "Register it with SET spark.sparkinfer.model.minilm.path=<URI of an .onnx file>");
    // A URI passed by a program, not a setting: no SET to suggest.
    assertThatThrownBy(
            () -> cache.acquire(ModelSource.of("minilm", uri), ONE_THREAD, hadoopConfiguration))
        .hasMessageEndingWith("file not found. Pass the URI of an existing .onnx file for model 'minilm'");
    assertThat(cache.loadCount()).isZero();
  }

  @Test
  void fileThatAppearsAfterAFailedLoadIsLoaded() throws IOException {
    Path file = temp.resolve("late.onnx");
    ModelSource source = ModelSource.of("late", file.toUri().toString());
    assertThatThrownBy(() -> cache.acquire(source, ONE_THREAD, hadoopConfiguration))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("file not found");

    Files.write(file, OnnxModels.identity(OnnxModels.FLOAT, "batch", 4));
    LoadedModel model = cache.acquire(source, ONE_THREAD, hadoopConfiguration);

    assertThat(model.signature().inputs()).extracting(TensorSpec::name).containsExactly("x");
    assertThat(cache.loadCount()).isEqualTo(1);
  }

  @Test
  void corruptFileFailsEveryTimeWithTheSameError() throws IOException {
    Path file = temp.resolve("bad.onnx");
    Files.write(file, garbage(4096));
    String uri = file.toUri().toString();
    ModelSource source = ModelSource.of("m", uri);

    Throwable first = catchThrowable(() -> cache.acquire(source, ONE_THREAD, hadoopConfiguration));
    Throwable second = catchThrowable(() -> cache.acquire(source, ONE_THREAD, hadoopConfiguration));

    assertThat(first)
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("Cannot load model 'm' from " + uri)
        .hasMessageContaining("ONNX Runtime could not read it as an ONNX model (")
        .hasMessageContaining("Protobuf parsing failed")
        .hasMessageContaining("Check that the file is a complete .onnx file")
        .hasCauseInstanceOf(OrtException.class);
    // Each attempt copies into a new folder (a failed one leaves none behind): the same error otherwise.
    assertThat(second).isInstanceOf(ModelLoadException.class);
    assertThat(second.getMessage().replaceAll("/cache/[0-9a-f]{32}/", "/cache/F/"))
        .isEqualTo(first.getMessage().replaceAll("/cache/[0-9a-f]{32}/", "/cache/F/"));
    assertThat(cache.loadCount()).isZero();
  }

  @Test
  void brokenLocalCopyIsCopiedAgain() throws IOException {
    byte[] bytes = OnnxModels.identity(OnnxModels.FLOAT, "batch", 4);
    ModelSource source = source("tiny", "tiny.onnx", bytes);
    try (ModelCache earlierExecutor = new ModelCache(cache.cacheDirectory())) {
      earlierExecutor.acquire(source, ONE_THREAD, hadoopConfiguration);
    }
    Path localCopy = filesIn(cache.cacheDirectory()).get(0);
    Files.write(localCopy, garbage(bytes.length));

    assertThatThrownBy(() -> cache.acquire(source, ONE_THREAD, hadoopConfiguration))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("could not read it as an ONNX model");
    LoadedModel model = cache.acquire(source, ONE_THREAD, hadoopConfiguration);

    assertThat(model.signature().inputs()).extracting(TensorSpec::name).containsExactly("x");
    assertThat(cache.copyCount()).isEqualTo(1);
    // The broken copy's folder is gone, the new copy is whole.
    assertThat(localCopy).doesNotExist();
    assertThat(Files.readAllBytes(((CachedModel) model).localFile())).isEqualTo(bytes);
  }

  @Test
  void directoryInsteadOfAFile() {
    String uri = temp.toUri().toString();

    assertThatThrownBy(() -> cache.acquire(
            ModelSource.registered("minilm", uri, "spark.sparkinfer.model.minilm.path"), ONE_THREAD,
            hadoopConfiguration))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("Cannot load model 'minilm' from " + uri)
        .hasMessageContaining("it is a directory, not a file")
        .hasMessageContaining(
            "Register the .onnx file itself with SET spark.sparkinfer.model.minilm.path=");
  }

  @Test
  void unknownScheme() {
    String uri = "nosuchfs://host/models/m.onnx";

    assertThatThrownBy(
            () -> cache.acquire(ModelSource.of("minilm", uri), ONE_THREAD, hadoopConfiguration))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("Cannot load model 'minilm' from " + uri)
        .hasMessageContaining("no Hadoop FileSystem is available for the scheme 'nosuchfs'")
        .hasMessageContaining("Use a file:, hdfs: or s3a: URI");
  }

  @Test
  void invalidUri() {
    assertThatThrownBy(
            () -> cache.acquire(ModelSource.of("minilm", ""), ONE_THREAD, hadoopConfiguration))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("Cannot load model 'minilm' from : it is not a valid URI");
  }

  @Test
  void cachedSessionComputesWhatADirectSessionComputes() throws OrtException {
    ModelSource source = ModelSource.of("minilm", miniLm.toUri().toString());
    OrtSession cached = cache.acquire(source, ONE_THREAD, hadoopConfiguration).session();

    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    // [CLS] hello world [SEP], and [CLS] this [SEP] padded to the same length.
    long[][] inputIds = {{101, 7592, 2088, 102}, {101, 2023, 102, 0}};
    long[][] attentionMask = {{1, 1, 1, 1}, {1, 1, 1, 0}};
    long[][] tokenTypeIds = new long[2][4];
    float[][][] expected;
    float[][][] actual;
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions();
        OnnxTensor ids = OnnxTensor.createTensor(environment, inputIds);
        OnnxTensor mask = OnnxTensor.createTensor(environment, attentionMask);
        OnnxTensor types = OnnxTensor.createTensor(environment, tokenTypeIds)) {
      options.setIntraOpNumThreads(1);
      Map<String, OnnxTensor> inputs =
          Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids", types);
      try (OrtSession direct = environment.createSession(miniLm.toString(), options);
          OrtSession.Result directResult = direct.run(inputs);
          OrtSession.Result cachedResult = cached.run(inputs)) {
        expected = (float[][][]) directResult.get(0).getValue();
        actual = (float[][][]) cachedResult.get(0).getValue();
      }
    }

    assertThat(actual.length).isEqualTo(2);
    for (int row = 0; row < 2; row++) {
      assertThat(actual[row].length).isEqualTo(4);
      for (int token = 0; token < 4; token++) {
        assertThat(actual[row][token])
            .hasSize(384)
            .containsExactly(expected[row][token], within(1e-6f));
      }
    }
  }

  @Test
  void signatureKeepsTypesSparkinferCannotFeed() throws IOException {
    ModelSource source =
        source(
            "types",
            "types.onnx",
            OnnxModels.identities(
                OnnxModels.FLOAT,
                OnnxModels.DOUBLE,
                OnnxModels.INT32,
                OnnxModels.INT64,
                OnnxModels.STRING,
                OnnxModels.BOOL,
                OnnxModels.FLOAT16,
                OnnxModels.UINT8,
                OnnxModels.UINT16));

    ModelSignature signature = cache.acquire(source, ONE_THREAD, hadoopConfiguration).signature();

    assertThat(signature.inputs())
        .extracting(TensorSpec::name)
        .containsExactly("in_0", "in_1", "in_2", "in_3", "in_4", "in_5", "in_6", "in_7", "in_8");
    assertThat(signature.inputs())
        .extracting(TensorSpec::onnxTypeName)
        .containsExactly(
            "FLOAT", "DOUBLE", "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "UINT8", "UINT16");
    assertThat(signature.inputs())
        .extracting(TensorSpec::elementType)
        .containsExactly(
            TensorElementType.FLOAT,
            TensorElementType.DOUBLE,
            TensorElementType.INT32,
            TensorElementType.INT64,
            TensorElementType.UNSUPPORTED,
            TensorElementType.UNSUPPORTED,
            TensorElementType.UNSUPPORTED,
            TensorElementType.UNSUPPORTED,
            TensorElementType.UNSUPPORTED);
    assertThat(signature.inputs()).extracting(TensorSpec::shapeString).containsOnly("[batch]");

    assertThat(signature.outputs()).hasSize(10);
    TensorSpec sequence = signature.outputs().get(9);
    assertThat(sequence.name()).isEqualTo("sequence");
    assertThat(sequence.elementType()).isEqualTo(TensorElementType.UNSUPPORTED);
    assertThat(sequence.onnxTypeName()).isEqualTo("SEQUENCE");
    assertThat(sequence.rank()).isZero();
  }

  @Test
  void closeAllClosesSessionsAndRefusesAcquires() throws IOException {
    ModelSource source = tinyModel();
    LoadedModel model = cache.acquire(source, ONE_THREAD, hadoopConfiguration);

    cache.close();
    cache.close();

    assertThatThrownBy(() -> model.session().getInputInfo())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed OrtSession");
    assertThatThrownBy(() -> cache.acquire(source, ONE_THREAD, hadoopConfiguration))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("The model cache is closed");
  }

  @Test
  void sharedCacheIsOnePerJvm() {
    assertThat(ModelCache.shared()).isSameAs(ModelCache.shared());
    // No SparkEnv in this JVM, so the default folder.
    assertThat(ModelCache.shared().cacheDirectory())
        .isEqualTo(Paths.get(SchedulingProperties.CACHE_DIRECTORY_DEFAULT));
  }

  private ModelSource tinyModel() throws IOException {
    return source("tiny", "tiny.onnx", OnnxModels.identity(OnnxModels.FLOAT, "batch", 4));
  }

  private ModelSource source(String name, String fileName, byte[] model) throws IOException {
    Path file = temp.resolve(fileName);
    Files.write(file, model);
    return ModelSource.of(name, file.toUri().toString());
  }

  /** Runs {@code action} on {@link #THREADS} threads released together; returns their results. */
  private static <T> List<T> runTogether(Callable<T> action) throws Exception {
    CyclicBarrier start = new CyclicBarrier(THREADS);
    ExecutorService pool = Executors.newFixedThreadPool(THREADS);
    try {
      List<Future<T>> futures = new ArrayList<>();
      for (int i = 0; i < THREADS; i++) {
        futures.add(
            pool.submit(
                () -> {
                  start.await(30, SECONDS);
                  return action.call();
                }));
      }
      List<T> results = new ArrayList<>();
      for (Future<T> future : futures) {
        results.add(future.get(60, SECONDS));
      }
      return results;
    } finally {
      pool.shutdownNow();
    }
  }

  private static List<Path> filesIn(Path folder) throws IOException {
    // Each version's copy lives in a folder of its own.
    try (Stream<Path> files = Files.walk(folder)) {
      return files.filter(Files::isRegularFile).filter(file -> !file.getFileName().toString().startsWith(".")).sorted().collect(Collectors.toList());
    }
  }

  private static byte[] garbage(int length) {
    byte[] bytes = new byte[length];
    for (int i = 0; i < length; i++) {
      bytes[i] = (byte) (i * 31 + 7);
    }
    return bytes;
  }
}

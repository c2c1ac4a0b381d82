package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions.ExecutionMode;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.server.datanode.DataNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The model cache reading real hdfs:// URIs: an in-process HDFS (Hadoop's MiniDFSCluster, one
 * namenode and one datanode on 127.0.0.1) shared by the tests of this class.
 */
class TestModelCacheHdfs {
  private static final SessionSettings ONE_THREAD = SessionSettings.builder().build();

  @TempDir static Path clusterFolder;
  private static MiniDFSCluster cluster;
  /** Writes the test files; a private instance, not the one from Hadoop's FileSystem cache. */
  private static FileSystem hdfs;

  private static String hdfsRoot;
  private static byte[] miniLmBytes;

  @TempDir Path temp;
  /** What an executor has: no fs.defaultFS, so the hdfs:// URI alone must find the namenode. */
  private final Configuration executorConfiguration = new Configuration();

  private ModelCache cache;

  @BeforeAll
  static void startCluster() throws IOException {
    Configuration configuration = new Configuration();
    configuration.set("hadoop.tmp.dir", clusterFolder.resolve("tmp").toString());
    // MiniDFSCluster puts every server on a free port of localhost or 127.0.0.1; the bind hosts
    // make the namenode listen on 127.0.0.1 whatever "localhost" resolves to. The namenode and
    // datanode HTTP servers cannot be turned off (the cluster waits for them), but WebHDFS, the
    // REST API on them, and HTTPS can.
    configuration.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
    configuration.set("dfs.namenode.http-bind-host", "127.0.0.1");
    configuration.set("dfs.datanode.hostname", "127.0.0.1");
    configuration.set("dfs.http.policy", "HTTP_ONLY");
    configuration.setBoolean("dfs.webhdfs.enabled", false);
    // Start faster: the datanode registers sooner, and nothing here needs it to scan its disks.
    configuration.setInt("dfs.heartbeat.interval", 1);
    configuration.setInt("dfs.datanode.scan.period.hours", -1);
    configuration.setInt("dfs.datanode.directoryscan.interval", -1);

    cluster =
        new MiniDFSCluster.Builder(configuration, clusterFolder.resolve("dfs").toFile())
            .numDataNodes(1)
            .storagesPerDatanode(1)
            .enableManagedDfsDirsRedundancy(false)
            .build();
    cluster.waitActive();
    hdfsRoot = "hdfs://127.0.0.1:" + cluster.getNameNodePort();
    hdfs = FileSystem.newInstance(URI.create(hdfsRoot), configuration);

    Path miniLm = OnnxModels.copyMiniLm(clusterFolder.resolve("minilm.onnx"));
    miniLmBytes = Files.readAllBytes(miniLm);
  }

  @AfterAll
  static void stopCluster() throws IOException {
    try {
      if (hdfsRoot != null) {
        // The model cache got its FileSystem from Hadoop's per-JVM cache; closing that instance
        // also drops it from the cache, so no client of a stopped namenode is left behind.
        FileSystem.get(URI.create(hdfsRoot), new Configuration()).close();
      }
      if (hdfs != null) {
        hdfs.close();
      }
    } finally {
      if (cluster != null) {
        cluster.shutdown();
      }
    }
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
  void clusterListensOnLoopbackOnly() {
    assertLoopback(cluster.getNameNode().getNameNodeAddress());
    assertLoopback(cluster.getNameNode().getHttpAddress());
    assertThat(cluster.getNameNode().getHttpsAddress()).isNull();
    List<DataNode> dataNodes = cluster.getDataNodes();
    assertThat(dataNodes).hasSize(1);
    assertLoopback(dataNodes.get(0).getXferAddress());
    assertThat(dataNodes.get(0).getDatanodeId().getIpAddr()).isEqualTo("127.0.0.1");
  }

  @Test
  void loadsMiniLmFromHdfsLikeADirectSessionFromTheSameBytes() throws Exception {
    String uri = write("/models/m.onnx", miniLmBytes);
    ModelSource source = ModelSource.of("minilm", uri);

    LoadedModel model = cache.acquire(source, ONE_THREAD, executorConfiguration);

    assertThat(model.source()).isEqualTo(source);
    assertThat(cache.loadCount()).isEqualTo(1);
    assertThat(cache.copyCount()).isEqualTo(1);
    // The local copy is the file's bytes, and nothing else is left in the cache folder.
    List<Path> copies = filesIn(cache.cacheDirectory());
    assertThat(copies).containsExactly(((CachedModel) model).localFile());
    assertThat(copies.get(0).getFileName().toString()).isEqualTo("m.onnx");
    assertThat(Files.readAllBytes(copies.get(0))).isEqualTo(miniLmBytes);

    OrtEnvironment environment = OrtEnvironments.get();
    try (OrtSession.SessionOptions options = sameOptionsAsTheCache();
        OrtSession direct = environment.createSession(miniLmBytes, options)) {
      assertThat(model.signature()).isEqualTo(Signatures.of(direct));
      assertThat(model.session().getInputInfo().toString())
          .isEqualTo(direct.getInputInfo().toString());
      assertThat(model.session().getOutputInfo().toString())
          .isEqualTo(direct.getOutputInfo().toString());

      // [CLS] hello world [SEP], and [CLS] this [SEP] padded to the same length.
      long[][] inputIds = {{101, 7592, 2088, 102}, {101, 2023, 102, 0}};
      long[][] attentionMask = {{1, 1, 1, 1}, {1, 1, 1, 0}};
      long[][] tokenTypeIds = new long[2][4];
      try (OnnxTensor ids = OnnxTensor.createTensor(environment, inputIds);
          OnnxTensor mask = OnnxTensor.createTensor(environment, attentionMask);
          OnnxTensor types = OnnxTensor.createTensor(environment, tokenTypeIds)) {
        Map<String, OnnxTensor> inputs =
            Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids", types);
        try (OrtSession.Result expected = direct.run(inputs);
            OrtSession.Result actual = model.session().run(inputs)) {
          float[][][] expectedHidden = (float[][][]) expected.get(0).getValue();
          float[][][] actualHidden = (float[][][]) actual.get(0).getValue();
          assertThat(actual.size()).isEqualTo(expected.size()).isEqualTo(1);
          assertThat(expectedHidden.length).isEqualTo(2);
          assertThat(expectedHidden[0]).hasDimensions(4, 384);
          // One model, the same options, one thread: the very same floats.
          assertThat(actualHidden).isDeepEqualTo(expectedHidden);
        }
      }
    }

    LoadedModel again = cache.acquire(source, ONE_THREAD, executorConfiguration);
    assertThat(again).isSameAs(model);
    assertThat(cache.loadCount()).isEqualTo(1);
    assertThat(cache.loadCount(source)).isEqualTo(1);
    assertThat(cache.copyCount()).isEqualTo(1);
    assertThat(filesIn(cache.cacheDirectory())).isEqualTo(copies);
  }

  @Test
  void fileReplacedOnHdfsIsLoadedAgain() throws Exception {
    byte[] before = OnnxModels.identity(OnnxModels.FLOAT, "batch", 4);
    byte[] after = OnnxModels.identity(OnnxModels.DOUBLE, "rows", 8);
    String uri = write("/models/replaced.onnx", before);
    ModelSource source = ModelSource.of("tiny", uri);
    FileStatus oldStatus = hdfs.getFileStatus(new org.apache.hadoop.fs.Path(uri));

    LoadedModel first = cache.acquire(source, ONE_THREAD, executorConfiguration);
    // A task still running the old version holds it.
    AutoCloseable task = cache.lease(first);
    assertThat(cache.acquire(source, ONE_THREAD, executorConfiguration)).isSameAs(first);

    write("/models/replaced.onnx", after);
    FileStatus newStatus = hdfs.getFileStatus(new org.apache.hadoop.fs.Path(uri));
    assertThat(newStatus.getLen()).isEqualTo(after.length).isNotEqualTo(oldStatus.getLen());
    assertThat(newStatus.getModificationTime()).isGreaterThan(oldStatus.getModificationTime());

    LoadedModel second = cache.acquire(source, ONE_THREAD, executorConfiguration);

    assertThat(second.session()).isNotSameAs(first.session());
    assertThat(first.signature().inputs().get(0).toString()).isEqualTo("x: FLOAT[batch, 4]");
    assertThat(second.signature().inputs().get(0).toString()).isEqualTo("x: DOUBLE[rows, 8]");
    assertThat(cache.acquire(source, ONE_THREAD, executorConfiguration)).isSameAs(second);
    assertThat(cache.loadCount(source)).isEqualTo(2);
    assertThat(cache.copyCount()).isEqualTo(2);
    // Both versions' copies stay while a task runs the old session.
    List<Path> copies = filesIn(cache.cacheDirectory());
    assertThat(copies).hasSize(2);
    assertThat(copies.stream().map(TestModelCacheHdfs::readAll))
        .containsExactlyInAnyOrder(before, after);
    // The old session still runs; once its task ends, it is closed and its copy deleted.
    assertThat(first.session().getInputNames()).containsExactly("x");
    task.close();
    assertThat(filesIn(cache.cacheDirectory())).hasSize(1);
  }

  @Test
  void fileReplacedOnHdfsWithOneOfTheSameLengthIsLoadedAgain() throws Exception {
    byte[] before = OnnxModels.identity(OnnxModels.DOUBLE, "rows", 8);
    byte[] after = OnnxModels.identity(OnnxModels.DOUBLE, "cols", 8);
    assertThat(after).hasSameSizeAs(before).isNotEqualTo(before);
    String uri = write("/models/same-length.onnx", before);
    ModelSource source = ModelSource.of("tiny", uri);
    FileStatus oldStatus = hdfs.getFileStatus(new org.apache.hadoop.fs.Path(uri));
    LoadedModel first = cache.acquire(source, ONE_THREAD, executorConfiguration);

    write("/models/same-length.onnx", after);
    // Only the modification time tells the versions apart: set it later than the first one
    // rather than rely on the clock moving between two writes milliseconds apart.
    hdfs.setTimes(new org.apache.hadoop.fs.Path(uri), oldStatus.getModificationTime() + 10_000, -1);
    FileStatus newStatus = hdfs.getFileStatus(new org.apache.hadoop.fs.Path(uri));
    assertThat(newStatus.getLen()).isEqualTo(oldStatus.getLen());
    assertThat(newStatus.getModificationTime()).isGreaterThan(oldStatus.getModificationTime());
    LoadedModel second = cache.acquire(source, ONE_THREAD, executorConfiguration);

    assertThat(second.session()).isNotSameAs(first.session());
    assertThat(first.signature().inputs().get(0).toString()).isEqualTo("x: DOUBLE[rows, 8]");
    assertThat(second.signature().inputs().get(0).toString()).isEqualTo("x: DOUBLE[cols, 8]");
    assertThat(cache.loadCount(source)).isEqualTo(2);
    assertThat(cache.copyCount()).isEqualTo(2);
  }

  @Test
  void missingHdfsFile() {
    String uri = hdfsRoot + "/models/missing.onnx";

    Throwable thrown =
        catchThrowable(
            () -> cache.acquire(ModelSource.registered("minilm", uri, "spark.sparkinfer.model.minilm.path"),
                ONE_THREAD, executorConfiguration));

    assertThat(thrown)
        .isInstanceOf(ModelLoadException.class)
        .hasMessageContaining("Cannot load model 'minilm' from " + uri + ": file not found.")
        .hasMessageContaining(
            "Register it with SET spark.sparkinfer.model.minilm.path=<URI of an .onnx file>")
        .hasCauseInstanceOf(FileNotFoundException.class);
    assertThat(cache.loadCount()).isZero();
    assertThat(cache.copyCount()).isZero();
  }

  /** Writes {@code bytes} to {@code path} on the cluster, replacing any file; returns its URI. */
  @Test
  void modelWithExternalWeightsLoadsFromHdfsWithItsDataFile() throws Exception {
    float[] weights = new float[8 * 3];
    java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(4 * weights.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < weights.length; i++) {
      weights[i] = 0.5f * i - 4;
      bytes.putFloat(weights[i]);
    }
    write("/external/data/w.bin", bytes.array());
    String uri = write("/external/m.onnx", OnnxModels.externalMatMul("data/w.bin", 8, 3));
    LoadedModel model = cache.acquire(ModelSource.of("ext", uri), ONE_THREAD, executorConfiguration);
    float[] x = {1, 0, 0, 0, 0, 0, 0, 2};
    try (OnnxTensor input = OnnxTensor.createTensor(OrtEnvironments.get(), java.nio.FloatBuffer.wrap(x), new long[] {1, 8});
        OrtSession.Result result = model.session().run(Map.of("x", input))) {
      // Row 0 plus twice row 7 of the weights, as written.
      float[] y = ((float[][]) result.get(0).getValue())[0];
      for (int j = 0; j < 3; j++) {
        assertThat(y[j]).isEqualTo(weights[j] + 2 * weights[7 * 3 + j]);
      }
    }
    assertThat(filesIn(temp.resolve("cache"))).extracting(file -> file.getFileName().toString())
        .containsExactlyInAnyOrder("m.onnx", "w.bin");
  }

  @Test
  void unknownHostNamesTheModelTheUriAndTheHost() {
    String uri = "hdfs://nonexistent-host.invalid:8020/models/m.onnx";
    Throwable failure = catchThrowable(
        () -> cache.acquire(ModelSource.registered("mlp", uri, "spark.sparkinfer.model.mlp.path"), ONE_THREAD,
            executorConfiguration));
    assertThat(failure).isInstanceOf(ModelLoadException.class)
        .hasMessageStartingWith("Cannot load model 'mlp' from " + uri + ": the host 'nonexistent-host.invalid' is unknown")
        .hasMessageContaining("Fix the host name in the URI");
  }

  @Test
  void permissionDeniedNamesTheModelAndTheUri() throws Exception {
    String uri = write("/private/m.onnx", miniLmBytes);
    hdfs.setPermission(new org.apache.hadoop.fs.Path("/private/m.onnx"),
        new org.apache.hadoop.fs.permission.FsPermission((short) 0600));
    hdfs.setPermission(new org.apache.hadoop.fs.Path("/private"),
        new org.apache.hadoop.fs.permission.FsPermission((short) 0700));
    // Another user than the namenode's (its superuser): HDFS checks the permissions for it.
    org.apache.hadoop.security.UserGroupInformation someoneElse =
        org.apache.hadoop.security.UserGroupInformation.createRemoteUser("someone-else");
    Throwable failure = someoneElse.doAs((java.security.PrivilegedAction<Throwable>) () -> catchThrowable(
        () -> cache.acquire(ModelSource.of("mlp", uri), ONE_THREAD, executorConfiguration)));
    assertThat(failure).isInstanceOf(ModelLoadException.class)
        .hasMessageStartingWith("Cannot load model 'mlp' from " + uri + ": permission denied")
        .hasMessageContaining("someone-else")
        .hasMessageContaining("Give the user that runs Spark");
  }

  @Test
  void serverThatNeverAnswersTimesOutNamingTheModelAndTheUri() throws Exception {
    try (java.net.ServerSocket silent = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
      String uri = "hdfs://127.0.0.1:" + silent.getLocalPort() + "/models/m.onnx";
      Configuration impatient = new Configuration();
      impatient.setInt("ipc.client.rpc-timeout.ms", 500);
      impatient.setInt("ipc.client.connect.max.retries.on.timeouts", 0);
      impatient.setInt("ipc.client.connect.max.retries", 0);
      impatient.setBoolean("fs.hdfs.impl.disable.cache", true);
      Throwable failure = catchThrowable(() -> cache.acquire(ModelSource.of("mlp", uri), ONE_THREAD, impatient));
      assertThat(failure).isInstanceOf(ModelLoadException.class)
          .hasMessageStartingWith("Cannot load model 'mlp' from " + uri + ": its file system timed out")
          .hasMessageContaining("raise the file system's timeout");
    }
  }

  private static String write(String path, byte[] bytes) throws IOException {
    org.apache.hadoop.fs.Path file = new org.apache.hadoop.fs.Path(path);
    try (OutputStream output = hdfs.create(file, true)) {
      output.write(bytes);
    }
    return hdfsRoot + path;
  }

  private static OrtSession.SessionOptions sameOptionsAsTheCache() throws OrtException {
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    try {
      options.setIntraOpNumThreads(ONE_THREAD.intraOpThreads());
      options.setInterOpNumThreads(ONE_THREAD.interOpThreads());
      options.setOptimizationLevel(OptLevel.ALL_OPT);
      options.setExecutionMode(ExecutionMode.SEQUENTIAL);
      return options;
    } catch (OrtException | RuntimeException e) {
      options.close();
      throw e;
    }
  }

  private static void assertLoopback(InetSocketAddress address) {
    assertThat(address).isNotNull();
    assertThat(address.getAddress().isLoopbackAddress())
        .as("%s is a loopback address", address)
        .isTrue();
  }

  private static List<Path> filesIn(Path folder) throws IOException {
    // Each version's copy lives in a folder of its own.
    try (Stream<Path> files = Files.walk(folder)) {
      return files.filter(Files::isRegularFile).filter(file -> !file.getFileName().toString().startsWith(".")).sorted().collect(Collectors.toList());
    }
  }

  private static byte[] readAll(Path file) {
    try {
      return Files.readAllBytes(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}

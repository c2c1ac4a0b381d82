package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** spark.sparkinfer.model.allowedRoots: what the model cache may read, checked before anything is read. */
class TestAllowedRoots {
  private static final SessionSettings ONE_THREAD = SessionSettings.builder().build();

  @TempDir Path temp;
  private Path models;
  private Path outside;
  private ModelCache cache;
  private final Configuration hadoop = new Configuration();

  @BeforeEach
  void setUp() throws Exception {
    models = Files.createDirectories(temp.resolve("models"));
    outside = Files.createDirectories(temp.resolve("outside"));
    Files.write(models.resolve("tiny.onnx"), OnnxModels.identity(OnnxModels.FLOAT, "batch", 4));
    Files.write(outside.resolve("secret.onnx"), OnnxModels.identity(OnnxModels.FLOAT, "batch", 4));
    cache = new ModelCache(temp.resolve("cache"), AllowedRoots.parse(models.toUri().toString()));
  }

  @AfterEach
  void tearDown() {
    cache.close();
  }

  @Test
  void aModelUnderARootLoadsByUriOrBarePath() {
    assertThat(cache.acquire(ModelSource.of("tiny", models.resolve("tiny.onnx").toUri().toString()), ONE_THREAD, hadoop)
        .signature().inputs()).isNotEmpty();
    assertThat(cache.acquire(ModelSource.of("tiny", models.resolve("tiny.onnx").toString()), ONE_THREAD, hadoop))
        .isNotNull();
  }

  @Test
  void escapesBySymlinkOrDotDotAreRefusedBeforeAnythingIsCopied() throws Exception {
    String dotDot = "file:" + models + "/../outside/secret.onnx";
    assertThatThrownBy(() -> cache.acquire(ModelSource.registered("x", dotDot, "spark.sparkinfer.model.x.path"),
            ONE_THREAD, hadoop))
        .isInstanceOf(ModelLoadException.class)
        .hasMessageStartingWith("Cannot load model 'x' from " + dotDot + ": it is outside the allowed roots")
        .hasMessageContaining("normalized: file:" + outside.resolve("secret.onnx"))
        .hasMessageContaining("spark.sparkinfer.model.allowedRoots (a static setting");
    Path link = Files.createSymbolicLink(models.resolve("link.onnx"), outside.resolve("secret.onnx"));
    assertThatThrownBy(() -> cache.acquire(ModelSource.of("x", link.toUri().toString()), ONE_THREAD, hadoop))
        .hasMessageContaining("it is outside the allowed roots");
    assertThatThrownBy(() -> cache.acquire(ModelSource.of("x", "/etc/passwd"), ONE_THREAD, hadoop))
        .hasMessageContaining("Cannot load model 'x' from /etc/passwd: it is outside the allowed roots");
    // A sibling folder whose name starts like the root's is not inside it.
    Files.createDirectories(temp.resolve("models-evil"));
    Files.write(temp.resolve("models-evil/tiny.onnx"), OnnxModels.identity(OnnxModels.FLOAT, "batch", 4));
    assertThatThrownBy(() -> cache.acquire(ModelSource.of("x", temp.resolve("models-evil/tiny.onnx").toString()),
        ONE_THREAD, hadoop)).hasMessageContaining("outside the allowed roots");
    // Tokenizers and other files too.
    assertThatThrownBy(() -> cache.localFile(ModelSource.ofFile("x", "/etc/hostname", "spark.sparkinfer.model.x.tokenizer"),
        hadoop)).hasMessageContaining("outside the allowed roots");
    assertThat(cache.copyCount()).isZero();
    assertThat(cache.loadCount()).isZero();
  }

  @Test
  void urlSchemesAreRefusedWithoutRootsAndNoRequestIsSent() throws Exception {
    AtomicInteger requests = new AtomicInteger();
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/", exchange -> {
      requests.incrementAndGet();
      exchange.sendResponseHeaders(404, -1);
      exchange.close();
    });
    server.start();
    try (ModelCache open = new ModelCache(temp.resolve("open-cache"), AllowedRoots.unrestricted())) {
      String uri = "http://127.0.0.1:" + server.getAddress().getPort() + "/tiny.onnx";
      assertThatThrownBy(() -> open.acquire(ModelSource.of("web", uri), ONE_THREAD, hadoop))
          .isInstanceOf(ModelLoadException.class)
          .hasMessageContaining("Cannot load model 'web' from " + uri + ": the scheme http: is refused unless"
              + " spark.sparkinfer.model.allowedRoots allows it");
      assertThatThrownBy(() -> open.acquire(ModelSource.of("env", "file:///proc/self/environ"), ONE_THREAD, hadoop))
          .hasMessageContaining("Cannot load model 'env' from file:///proc/self/environ: it is a file of the operating system (/proc/");
      // Unrestricted still reads any storage file.
      assertThat(open.acquire(ModelSource.of("tiny", outside.resolve("secret.onnx").toString()), ONE_THREAD, hadoop))
          .isNotNull();
      // A root can allow a web folder.
      AllowedRoots web = AllowedRoots.parse("http://127.0.0.1:" + server.getAddress().getPort() + "/models/");
      web.check(ModelSource.of("web", "x"), "http://127.0.0.1:" + server.getAddress().getPort() + "/models/m.onnx");
      assertThatThrownBy(() -> web.check(ModelSource.of("web", "x"), uri)).hasMessageContaining("outside the allowed roots");
    } finally {
      server.stop(0);
    }
    assertThat(requests).hasValue(0);
  }

  @Test
  void anUnreadableSettingRefusesEveryFileWithTheReason() {
    AllowedRoots broken = AllowedRoots.parseOrRefuseAll("models/ without a scheme");
    assertThat(broken.isRestricted()).isTrue();
    assertThatThrownBy(() -> broken.check(ModelSource.of("m", "x"), models.resolve("tiny.onnx").toUri().toString()))
        .hasMessageContaining("no file may be loaded while spark.sparkinfer.model.allowedRoots cannot be read")
        .hasMessageContaining("Invalid root 'models/ without a scheme'");
  }

  @Test
  void aFileMadeFromAnAllowedModelLoadsOnlyFromTheCacheFolder() {
    ModelSource original = ModelSource.of("tiny", models.resolve("tiny.onnx").toUri().toString());
    assertThatThrownBy(() -> cache.acquire(original.withUri(outside.resolve("secret.onnx").toUri().toString()),
        ONE_THREAD, hadoop)).hasMessageContaining("must lie in the model cache folder");
  }
}

package io.github.sparkinfer.spark;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.sparkinfer.spark.config.ApplicationSettings;
import io.github.sparkinfer.spark.config.SparkinferSettings;
import java.util.List;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Issue 28, the trust boundary of settings: a SQL user of a shared session may set session and model
 * keys and nothing else. Every key that names a path, a library, a host or a pointer, or sizes what an
 * executor shares, is refused when a session sets it, and never travels inside a plan.
 */
class TestApplicationSettings {
  // Each was settable by SET at 60a06ee, and reached the driver's checks or the executors.
  private static final List<String> APPLICATION_KEYS = List.of(
      "spark.sparkinfer.model.allowedRoots",
      "spark.sparkinfer.maxBatchBytes",
      "spark.sparkinfer.device.concurrentRuns",
      "spark.sparkinfer.device.gpuResource",
      "spark.sparkinfer.device.npuResource",
      "spark.sparkinfer.cuda.gpuMemLimit",
      "spark.sparkinfer.tensorrt.engineCachePath",
      "spark.sparkinfer.cache.dir",
      "spark.sparkinfer.cache.maxSessionsPerDevice",
      "spark.sparkinfer.shutdown.gracePeriod",
      "spark.sparkinfer.stage.executor.memory",
      "spark.sparkinfer.stage.executor.resource.gpu.discoveryScript",
      "spark.sparkinfer.model.m.stage.executor.cores",
      "spark.sparkinfer.tensorrt.option.trt_extra_plugin_lib_paths",
      "spark.sparkinfer.tensorrt.option.trt_engine_decryption_lib_path",
      "spark.sparkinfer.tensorrt.option.trt_engine_cache_path",
      "spark.sparkinfer.cuda.option.gpu_mem_limit",
      "spark.sparkinfer.cuda.option.gpu_external_alloc",
      "spark.sparkinfer.cuda.option.user_compute_stream");

  private static SparkSession spark;

  @BeforeAll
  static void setUp() {
    spark = SparkTestSessions.shared();
  }

  @AfterAll
  static void tearDown() {
    for (String key : APPLICATION_KEYS) {
      SparkTestSessions.reset(key);
    }
    SparkTestSessions.resetApplication("spark.sparkinfer.cache.maxSessionsPerDevice");
  }

  @Test
  void aSqlSetOfAnApplicationKeyIsRefusedNamingTheKeyAndTheFix() {
    for (String key : APPLICATION_KEYS) {
      assertThatThrownBy(() -> spark.sql("SET " + key + "=/tmp/planted/libplugin.so"))
          .as(key)
          .hasMessageContaining("Cannot SET " + key + ": " + key + " is an application setting")
          .hasMessageContaining("RESET " + key);
      assertThat(spark.conf().getOption(key)).as("%s: the session keeps the application's value", key)
          .isEqualTo(spark.sparkContext().getConf().getOption(key));
    }
  }

  @Test
  void sessionAndModelKeysStaySettable() {
    for (String key : List.of("spark.sparkinfer.device", "spark.sparkinfer.batchSize",
        "spark.sparkinfer.cuda.option.enable_cuda_graph", "spark.sparkinfer.tensorrt.option.trt_fp16_enable",
        "spark.sparkinfer.model.m.path", "spark.sparkinfer.model.m.stage.task.cpus",
        "spark.sparkinfer.stage.task.resource.gpu.amount")) {
      spark.sql("SET " + key + "=1");
      assertThat(spark.conf().get(key)).isEqualTo("1");
      SparkTestSessions.reset(key);
    }
  }

  @Test
  void theApplicationsOwnValueMayBeRepeated() {
    // The session starts with the application's values: a SET of the same value changes nothing.
    SparkTestSessions.setApplication("spark.sparkinfer.cache.maxSessionsPerDevice", "8");
    spark.sql("SET spark.sparkinfer.cache.maxSessionsPerDevice=8");
    SparkTestSessions.reset("spark.sparkinfer.cache.maxSessionsPerDevice");
    assertThatThrownBy(() -> spark.sql("SET spark.sparkinfer.cache.maxSessionsPerDevice=1000000"))
        .hasMessageContaining("its value '1000000' differs from the application's ('8')");
  }

  @Test
  void everyApplicationKeyIsDeclaredAsOne() {
    for (String key : APPLICATION_KEYS) {
      assertThat(SparkinferSettings.isApplicationOnly(key)).as(key).isTrue();
    }
    assertThat(SparkinferSettings.isApplicationOnly("spark.sparkinfer.model.m.stage.task.cpus")).isFalse();
    assertThat(SparkinferSettings.isApplicationOnly("spark.sparkinfer.model.m.batchSize")).isFalse();
  }

  @Test
  void applicationKeysNeverTravelInAPlan() {
    Map<String, String> shipped = ApplicationSettings.withoutApplicationKeys(Map.of(
        "spark.sparkinfer.device", "cuda:3",
        "spark.sparkinfer.device.gpuResource", "no-such-resource",
        "spark.sparkinfer.device.concurrentRuns", "64",
        "spark.sparkinfer.tensorrt.option.trt_extra_plugin_lib_paths", "/tmp/planted/libplugin.so",
        "spark.sparkinfer.cuda.option.enable_cuda_graph", "1"));
    assertThat(shipped).containsOnlyKeys("spark.sparkinfer.device", "spark.sparkinfer.cuda.option.enable_cuda_graph");
  }

  @Test
  void aCallsOwnSettingsAreCheckedLikeTheSessions() {
    SparkConf application = new SparkConf(false).set("spark.sparkinfer.maxBatchBytes", "64m");
    ApplicationSettings.checkSession(Map.of("spark.sparkinfer.maxBatchBytes", "64m"), application);
    assertThatThrownBy(() -> ApplicationSettings.checkSession(
            Map.of("spark.sparkinfer.tensorrt.option.trt_engine_decryption_lib_path", "/tmp/x.so"), application))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("its value '/tmp/x.so' differs from the application's (unset)");
  }
}

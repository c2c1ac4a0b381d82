package io.github.sparkinfer.partitioning;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.SparkConf;
import org.apache.spark.resource.ResourceProfile;
import org.junit.jupiter.api.Test;

class TestStageResources {

  @Test
  void perModelKeysOverrideSessionKeysOptionByOption() {
    Map<String, String> conf = new TreeMap<>();
    conf.put("spark.sparkinfer.stage.task.resource.gpu.amount", "1");
    conf.put("spark.sparkinfer.stage.task.cpus", "2");
    conf.put("spark.sparkinfer.model.big.stage.task.resource.gpu.amount", "0.25");
    conf.put("spark.sparkinfer.model.small.stage.task.resource.gpu.amount", "0");
    conf.put("spark.sparkinfer.model.other.stage.task.cpus", "8");
    conf.put("spark.executor.resource.gpu.amount", "1");

    StageResources big = StageResources.fromConfiguration(conf, "big");
    assertThat(big.taskResources()).containsExactly(Map.entry("gpu", 0.25));
    assertThat(big.taskCpus()).isEqualTo(2);
    assertThat(big.requestsExecutors()).isFalse();
    assertThat(big).hasToString("task cpus=2, gpu=0.25");

    StageResources small = StageResources.fromConfiguration(conf, "small");
    assertThat(small.taskResources()).as("0 removes the session's request").isEmpty();
    assertThat(small.taskCpus()).isEqualTo(2);

    assertThat(StageResources.fromConfiguration(Map.of("spark.sparkinfer.batchSize", "8"), "big"))
        .isEqualTo(StageResources.NONE)
        .satisfies(none -> assertThat(none.isEmpty()).isTrue());
  }

  @Test
  void taskRequestsMakeATaskResourceProfile() {
    ResourceProfile profile = StageResources.builder().taskCpus(1).taskResource("gpu", 0.5).build().toResourceProfile();

    assertThat(profile.getClass().getSimpleName()).isEqualTo("TaskResourceProfile");
    assertThat(profile.executorResourcesJMap()).isEmpty();
    assertThat(profile.taskResourcesJMap().get("gpu").amount()).isEqualTo(0.5);
    assertThat(profile.taskResourcesJMap().get("cpus").amount()).isEqualTo(1.0);
  }

  @Test
  void executorRequestsMakeAFullProfile() {
    Map<String, String> conf = Map.of(
        "spark.sparkinfer.stage.task.resource.gpu.amount", "1",
        "spark.sparkinfer.stage.executor.cores", "4",
        "spark.sparkinfer.stage.executor.memory", "6g",
        "spark.sparkinfer.stage.executor.resource.gpu.amount", "2",
        "spark.sparkinfer.stage.executor.resource.gpu.discoveryScript", "/opt/spark/getGpus.sh");
    StageResources resources = StageResources.fromConfiguration(conf, "m");
    ResourceProfile profile = resources.toResourceProfile();

    assertThat(resources.requestsExecutors()).isTrue();
    assertThat(resources).hasToString("task gpu=1; executor cores=4, memory=6g, gpu=2");
    assertThat(profile.getClass()).isEqualTo(ResourceProfile.class);
    assertThat(profile.executorResourcesJMap().get("cores").amount()).isEqualTo(4);
    assertThat(profile.executorResourcesJMap().get("memory").amount()).isEqualTo(6144);
    assertThat(profile.executorResourcesJMap().get("gpu").amount()).isEqualTo(2);
    assertThat(profile.executorResourcesJMap().get("gpu").discoveryScript()).isEqualTo("/opt/spark/getGpus.sh");
    assertThat(profile.taskResourcesJMap().get("gpu").amount()).isEqualTo(1.0);
  }

  @Test
  void badSettingsNameTheKeyTheModelAndTheFix() {
    assertThatThrownBy(() -> StageResources.fromConfiguration(
            Map.of("spark.sparkinfer.model.m.stage.task.gpu.amount", "1"), "m"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("spark.sparkinfer.model.m.stage.task.gpu.amount=1")
        .hasMessageContaining("model 'm'")
        .hasMessageContaining("unknown option 'task.gpu.amount'")
        .hasMessageContaining("task.resource.<resource>.amount");
    assertThatThrownBy(() -> StageResources.fromConfiguration(
            Map.of("spark.sparkinfer.stage.task.resource.gpu.amount", "1.5"), "m"))
        .hasMessageContaining("spark.sparkinfer.stage.task.resource.gpu.amount=1.5")
        .hasMessageContaining("a fraction up to 1");
    assertThatThrownBy(() -> StageResources.fromConfiguration(
            Map.of("spark.sparkinfer.stage.task.cpus", "two"), "m"))
        .hasMessageContaining("spark.sparkinfer.stage.task.cpus=two")
        .hasMessageContaining("not a whole number");
    assertThatThrownBy(() -> StageResources.fromConfiguration(
            Map.of("spark.sparkinfer.stage.executor.memory", "lots"), "m"))
        .hasMessageContaining("Invalid executor memory 'lots'")
        .hasMessageContaining("8g");
    assertThatThrownBy(() -> StageResources.fromConfiguration(
            Map.of("spark.sparkinfer.stage.executor.resource.gpu.discoveryScript", "/x.sh"), "m"))
        .hasMessageContaining("no amount");
  }

  @Test
  void checksWhatSparkWouldRejectOrNeverSchedule() {
    StageResources oneGpu = StageResources.builder().taskResource("gpu", 1).build();
    SparkConf cluster = new SparkConf(false).set("spark.master", "spark://127.0.0.1:7077");

    assertThatThrownBy(() -> StageResourceProfiles.check(cluster, oneGpu, "m"))
        .hasMessageContaining("inference stage of model 'm'")
        .hasMessageContaining("spark.executor.resource.gpu.amount is not set")
        .hasMessageContaining("wait forever");

    SparkConf withGpus = cluster.clone().set("spark.executor.resource.gpu.amount", "1");
    assertThatCode(() -> StageResourceProfiles.check(withGpus, oneGpu, "m"))
        .as("one GPU per task on executors of one GPU").doesNotThrowAnyException();
    assertThatThrownBy(() -> StageResourceProfiles.check(
            withGpus, StageResources.builder().taskResource("gpu", 2).build(), "m"))
        .hasMessageContaining("a task asks for 2.0 gpu but an executor has 1");
    assertThatThrownBy(() -> StageResourceProfiles.check(
            withGpus.clone().set("spark.executor.cores", "2"),
            StageResources.builder().taskCpus(4).build(), "m"))
        .hasMessageContaining("asks for 4 CPUs but an executor has 2 cores");

    StageResources ownExecutors = StageResources.builder().executorCores(4).executorResource("gpu", 1)
        .taskResource("gpu", 1).build();
    assertThatThrownBy(() -> StageResourceProfiles.check(withGpus, ownExecutors, "m"))
        .hasMessageContaining("spark.dynamicAllocation.enabled=true");
    assertThatCode(() -> StageResourceProfiles.check(
            cluster.clone().set("spark.dynamicAllocation.enabled", "true"), ownExecutors, "m"))
        .as("executor requests with dynamic allocation").doesNotThrowAnyException();
  }

  @Test
  void localModeKeepsTheDefaultProfileAndSaysWhy() {
    SparkConf local = new SparkConf(false).set("spark.master", "local[4]");
    StageResources oneGpu = StageResources.builder().taskResource("gpu", 1).build();

    assertThat(StageResourceProfiles.notAppliedReason(local)).hasValueSatisfying(reason ->
        assertThat(reason).contains("local mode (local[4])").contains("default profile"));
    // Not checked against executors there: local mode has none with resources, so a request the
    // same conf refuses on a cluster (no spark.executor.resource.gpu.amount) passes.
    assertThatCode(() -> StageResourceProfiles.check(local, oneGpu, "m")).doesNotThrowAnyException();
    assertThatThrownBy(() -> StageResourceProfiles.check(local.clone().set("spark.master", "local-cluster[2,1,1024]"), oneGpu, "m"))
        .hasMessageContaining("spark.executor.resource.gpu.amount is not set");
    assertThat(StageResourceProfiles.notAppliedReason(local.clone().set("spark.master", "local-cluster[2,1,1024]")))
        .isEmpty();
  }
}

package io.github.sparkinfer.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtProvider;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.apache.spark.SparkConf;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;

class TestDeviceResolver {
  private static final Set<String> CPU_BUILD = Set.of("CPUExecutionProvider");
  private static final Set<String> GPU_BUILD =
      Set.of("CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider");
  private static final Map<String, String[]> NO_RESOURCES = Map.of();

  @Test
  void assignedGpuIsTheCudaDevice() {
    assertThat(resolve(Map.of("gpu", new String[] {"3"}), 0, Map.of())).isEqualTo(Device.cuda(3));
    assertThat(resolve(Map.of("gpu", new String[] {" 1 "}), 5, Map.of())).isEqualTo(Device.cuda(1));
  }

  @Test
  void assignedGpuWinsOverTheSetting() {
    Map<String, String[]> resources = Map.of("gpu", new String[] {"2"});

    assertThat(resolve(resources, 0, Map.of(SchedulingProperties.DEVICE, "cpu")))
        .isEqualTo(Device.cuda(2));
    assertThat(resolve(resources, 0, Map.of(SchedulingProperties.DEVICE, "cuda:0")))
        .isEqualTo(Device.cuda(2));
  }

  @Test
  void severalGpusArePickedByPartitionIdAmongSortedAddresses() {
    Map<String, String[]> resources = Map.of("gpu", new String[] {"7", "2", "5"});

    assertThat(resolve(resources, 0, Map.of())).isEqualTo(Device.cuda(2));
    assertThat(resolve(resources, 1, Map.of())).isEqualTo(Device.cuda(5));
    assertThat(resolve(resources, 2, Map.of())).isEqualTo(Device.cuda(7));
    assertThat(resolve(resources, 3, Map.of())).isEqualTo(Device.cuda(2));
    assertThat(resolve(resources, 1_000_001, Map.of())).isEqualTo(Device.cuda(7));
  }

  @Test
  void assignedNpuIsTheNpuDevice() {
    assertThat(resolve(Map.of("npu", new String[] {"1"}), 0, Map.of())).isEqualTo(Device.npu(1));
    assertThat(resolve(Map.of("npu", new String[] {"0", "1"}), 3, Map.of()))
        .isEqualTo(Device.npu(1));
  }

  @Test
  void gpusWinOverNpus() {
    Map<String, String[]> both = Map.of("gpu", new String[] {"1"}, "npu", new String[] {"0"});

    assertThat(resolve(both, 0, Map.of())).isEqualTo(Device.cuda(1));
  }

  @Test
  void otherResourcesAndEmptyAddressesAreIgnored() {
    Map<String, String[]> resources =
        Map.of("fpga", new String[] {"0"}, "gpu", new String[0], "npu", new String[0]);

    assertThat(resolve(resources, 0, Map.of(SchedulingProperties.DEVICE, "cuda:4")))
        .isEqualTo(Device.cuda(4));
  }

  @Test
  void resourceNamesCanBeChanged() {
    Map<String, String> settings =
        Map.of(
            SchedulingProperties.GPU_RESOURCE, "nvidia",
            SchedulingProperties.NPU_RESOURCE, "ascend");

    assertThat(resolve(Map.of("nvidia", new String[] {"1"}), 0, settings))
        .isEqualTo(Device.cuda(1));
    assertThat(resolve(Map.of("ascend", new String[] {"2"}), 0, settings)).isEqualTo(Device.npu(2));
    // "gpu" is now just another resource.
    assertThat(resolve(Map.of("gpu", new String[] {"1"}), 0, settings)).isEqualTo(Device.cpu());
  }

  @Test
  void addressThatIsNotAnIndexIsRejected() {
    Map<String, String[]> resources = Map.of("gpu", new String[] {"GPU-4a2f8c1e"});

    assertThatThrownBy(() -> resolve(resources, 0, Map.of()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("The task's Spark resource 'gpu' has the address 'GPU-4a2f8c1e'")
        .hasMessageContaining("not a device index")
        .hasMessageContaining("sparkinfer-gpu-discovery.sh")
        .hasMessageContaining(SchedulingProperties.GPU_RESOURCE);
  }

  @Test
  void settingNamesTheDeviceWhenSparkAssignsNone() {
    assertThat(resolve(NO_RESOURCES, 0, setting("cpu"))).isEqualTo(Device.cpu());
    assertThat(resolve(NO_RESOURCES, 0, setting("cuda"))).isEqualTo(Device.cuda(0));
    assertThat(resolve(NO_RESOURCES, 0, setting("cuda:2"))).isEqualTo(Device.cuda(2));
    assertThat(resolve(NO_RESOURCES, 0, setting(" CUDA:1 "))).isEqualTo(Device.cuda(1));
    assertThat(resolve(NO_RESOURCES, 0, setting("npu"))).isEqualTo(Device.npu(0));
    assertThat(resolve(NO_RESOURCES, 0, setting("npu:3"))).isEqualTo(Device.npu(3));
  }

  @Test
  void autoIsTheFirstGpuOnlyWithTheCudaProviderAndAVisibleGpu() {
    assertThat(resolve(NO_RESOURCES, setting("auto"), GPU_BUILD, true)).isEqualTo(Device.cuda(0));
    assertThat(resolve(NO_RESOURCES, setting("auto"), GPU_BUILD, false)).isEqualTo(Device.cpu());
    assertThat(resolve(NO_RESOURCES, setting("auto"), CPU_BUILD, true)).isEqualTo(Device.cpu());
    assertThat(resolve(NO_RESOURCES, setting("AUTO"), CPU_BUILD, false)).isEqualTo(Device.cpu());
    // auto is the default.
    assertThat(resolve(NO_RESOURCES, Map.of(), GPU_BUILD, true)).isEqualTo(Device.cuda(0));
    assertThat(resolve(NO_RESOURCES, Map.of(), CPU_BUILD, true)).isEqualTo(Device.cpu());
  }

  @Test
  void onlyAutoLooksAtProvidersAndGpus() {
    Supplier<Set<String>> providersMustNotBeRead =
        () -> {
          throw new AssertionError("available providers read");
        };
    BooleanSupplier gpusMustNotBeLookedFor =
        () -> {
          throw new AssertionError("GPUs looked for");
        };

    assertThat(
            DeviceResolver.resolve(
                Map.of("gpu", new String[] {"1"}),
                0,
                setting("auto"),
                providersMustNotBeRead,
                gpusMustNotBeLookedFor))
        .isEqualTo(Device.cuda(1));
    assertThat(
            DeviceResolver.resolve(
                NO_RESOURCES, 0, setting("cuda:1"), providersMustNotBeRead, gpusMustNotBeLookedFor))
        .isEqualTo(Device.cuda(1));
  }

  @Test
  void invalidSettingIsRejected() {
    for (String value : List.of("gpu", "gpu:0", "cuda:-1", "tpu:0", "")) {
      assertThatThrownBy(() -> resolve(NO_RESOURCES, 0, setting(value)))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessage(
              "Invalid spark.sparkinfer.device '"
                  + value
                  + "': expected auto, cpu, cuda, cuda:<index>, npu or npu:<index>, as in"
                  + " spark.sparkinfer.device=cuda:0");
    }
  }

  @Test
  void autoWithoutATaskAsksThisProcessesOrtBuildAndGpus() {
    // The CPU build (this module's dependency) has no CUDA provider, whatever GPUs there are; the
    // GPU build on a GPU host resolves to the first GPU. Asked of ORT directly, not of sparkinfer.
    assertThat(DeviceResolver.resolveWithoutTask(Map.of())).isEqualTo(autoOnThisMachine());
    assertThat(DeviceResolver.resolveWithoutTask(setting("npu:1"))).isEqualTo(Device.npu(1));
  }

  @Test
  void localModeTasksGetNoResourcesSoTheSettingDecides() {
    SparkConf conf =
        new SparkConf()
            .setMaster("local[2]")
            .setAppName(getClass().getSimpleName())
            .set("spark.ui.enabled", "false")
            .set(SchedulingProperties.DEVICE, "cuda:1");
    try (JavaSparkContext context = new JavaSparkContext(conf)) {
      Map<String, String> explicit = new HashMap<>(Map.of(SchedulingProperties.DEVICE, "cuda:1"));
      Map<String, String> defaults = new HashMap<>();

      List<String> devices =
          context
              .parallelize(Arrays.asList(1, 2, 3, 4), 4)
              .map(
                  ignored -> {
                    TaskContext task = TaskContext.get();
                    return task.resourcesJMap().size()
                        + " "
                        + DeviceResolver.resolve(task, explicit)
                        + " "
                        + DeviceResolver.resolve(task, defaults)
                        + " "
                        + DeviceResolver.resolve(task, org.apache.spark.SparkEnv.get().conf());
                  })
              .collect();

      // No resources in local mode; the setting, or auto (the CPU with ORT's CPU build).
      assertThat(devices).containsOnly("0 cuda:1 " + autoOnThisMachine() + " cuda:1").hasSize(4);
    }
  }

  /** What auto must be here, asked of ORT directly: cuda:0 with the CUDA provider and a GPU, else the CPU. */
  private static Device autoOnThisMachine() {
    boolean cudaProvider = OrtEnvironment.getAvailableProviders().contains(OrtProvider.CUDA);
    return cudaProvider && DeviceResolver.nvidiaGpuVisible() ? Device.cuda(0) : Device.cpu();
  }

  private static Map<String, String> setting(String device) {
    return Map.of(SchedulingProperties.DEVICE, device);
  }

  private static Device resolve(
      Map<String, String[]> resources, int partitionId, Map<String, String> settings) {
    return DeviceResolver.resolve(resources, partitionId, settings, () -> CPU_BUILD, () -> false);
  }

  private static Device resolve(
      Map<String, String[]> resources,
      Map<String, String> settings,
      Set<String> providers,
      boolean gpuVisible) {
    return DeviceResolver.resolve(resources, 0, settings, () -> providers, () -> gpuVisible);
  }
}

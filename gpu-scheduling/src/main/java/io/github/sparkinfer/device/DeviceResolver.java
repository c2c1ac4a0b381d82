package io.github.sparkinfer.device;

import java.io.File;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.apache.spark.SparkConf;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;

/**
 * Decides which device a task's model sessions are bound to.
 *
 * <ol>
 *   <li>The task's Spark-assigned resources ({@code TaskContext.resources()}): an address of the
 *       {@code gpu} resource is a CUDA device ({@code cuda:<address>}), one of the {@code npu}
 *       resource an Ascend NPU ({@code npu:<address>}); the resource names can be changed with
 *       {@link SchedulingProperties#GPU_RESOURCE} and {@link SchedulingProperties#NPU_RESOURCE}. A
 *       task given GPUs is bound to a GPU whatever the settings say; GPUs win over NPUs. A task
 *       given several addresses of a resource (spark.task.resource.gpu.amount above 1) runs its
 *       sessions on one of them: the addresses in ascending order, picked by the task's partition
 *       id modulo their count, so that a partition keeps its device across retries and the
 *       partitions of a stage spread over the devices.
 *   <li>Otherwise the setting {@link SchedulingProperties#DEVICE}, for local mode, where Spark
 *       assigns no resources, and clusters without resource scheduling: {@code auto} (the default)
 *       is cuda:0 when ONNX Runtime has the CUDA execution provider and this machine shows an
 *       NVIDIA GPU, otherwise the CPU; {@code cpu}; {@code cuda} (cuda:0) or {@code cuda:<index>};
 *       {@code npu} (npu:0) or {@code npu:<index>}.
 * </ol>
 *
 * <p>The device is not checked against ORT's providers here, except by auto: a device that cannot
 * be used is the {@link ModelCache}'s to report or fall back from, by the {@link DeviceFallback}
 * policy, when it creates the session.
 */
public final class DeviceResolver {
  private static final String AUTO = "auto";

  private DeviceResolver() {}

  /** The device for {@code task}, with the settings of {@code conf}. */
  public static Device resolve(TaskContext task, SparkConf conf) {
    return resolve(task, SparkSettings.of(conf));
  }

  /** The device for {@code task}, with {@code settings} (Spark settings by key). */
  public static Device resolve(TaskContext task, Map<String, String> settings) {
    Objects.requireNonNull(task, "task");
    Map<String, String[]> resources = new HashMap<>();
    for (Map.Entry<String, ResourceInformation> entry : task.resourcesJMap().entrySet()) {
      resources.put(entry.getKey(), entry.getValue().addresses());
    }
    return resolve(
        resources,
        task.partitionId(),
        settings,
        ExecutionProviders::available,
        DeviceResolver::nvidiaGpuVisible);
  }

  /**
   * The device for work outside a task (on the driver, say): the setting {@link
   * SchedulingProperties#DEVICE} alone.
   */
  public static Device resolveWithoutTask(Map<String, String> settings) {
    return resolve(
        Map.of(), 0, settings, ExecutionProviders::available, DeviceResolver::nvidiaGpuVisible);
  }

  /**
   * The resolution itself, a function of its arguments: the task's resources (name to addresses),
   * its partition id, the settings, ORT's available providers (by ORT name) and whether an NVIDIA
   * GPU is visible. The last two are only asked for by auto.
   */
  static Device resolve(
      Map<String, String[]> resources,
      int partitionId,
      Map<String, String> settings,
      Supplier<Set<String>> availableProviders,
      BooleanSupplier gpuVisible) {
    Objects.requireNonNull(resources, "resources");
    Objects.requireNonNull(settings, "settings");
    String gpuResource =
        settings.getOrDefault(
            SchedulingProperties.GPU_RESOURCE, SchedulingProperties.GPU_RESOURCE_DEFAULT);
    String npuResource =
        settings.getOrDefault(
            SchedulingProperties.NPU_RESOURCE, SchedulingProperties.NPU_RESOURCE_DEFAULT);

    String[] gpus = resources.get(gpuResource);
    if (gpus != null && gpus.length > 0) {
      return Device.cuda(pick(gpuResource, gpus, partitionId, SchedulingProperties.GPU_RESOURCE));
    }
    String[] npus = resources.get(npuResource);
    if (npus != null && npus.length > 0) {
      return Device.npu(pick(npuResource, npus, partitionId, SchedulingProperties.NPU_RESOURCE));
    }
    return fromSetting(settings, availableProviders, gpuVisible);
  }

  private static Device fromSetting(
      Map<String, String> settings,
      Supplier<Set<String>> availableProviders,
      BooleanSupplier gpuVisible) {
    String value =
        settings.getOrDefault(SchedulingProperties.DEVICE, SchedulingProperties.DEVICE_DEFAULT);
    String normalized = value.trim().toLowerCase(Locale.ROOT);
    switch (normalized) {
      case AUTO:
        boolean cuda = availableProviders.get().contains(ExecutionProviders.CUDA);
        return cuda && gpuVisible.getAsBoolean() ? Device.cuda(0) : Device.cpu();
      case "cuda":
        return Device.cuda(0);
      case "npu":
        return Device.npu(0);
      default:
        try {
          return Device.parse(normalized);
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException(
              "Invalid "
                  + SchedulingProperties.DEVICE
                  + " '"
                  + value
                  + "': expected auto, cpu, cuda, cuda:<index>, npu or npu:<index>, as in "
                  + SchedulingProperties.DEVICE
                  + "=cuda:0",
              e);
        }
    }
  }

  private static int pick(String resource, String[] addresses, int partitionId, String nameKey) {
    int[] indices = new int[addresses.length];
    for (int i = 0; i < addresses.length; i++) {
      indices[i] = index(resource, addresses[i], nameKey);
    }
    // Sorted, since Spark hands out a task's addresses in whatever order it holds them.
    Arrays.sort(indices);
    return indices[Math.floorMod(partitionId, indices.length)];
  }

  private static int index(String resource, String address, String nameKey) {
    String trimmed = address.trim();
    boolean digits = !trimmed.isEmpty() && trimmed.length() <= 9;
    for (int i = 0; digits && i < trimmed.length(); i++) {
      digits = Character.isDigit(trimmed.charAt(i));
    }
    if (!digits) {
      throw new IllegalArgumentException(
          "The task's Spark resource '"
              + resource
              + "' has the address '"
              + address
              + "', which is not a device index: sparkinfer binds sessions by index. Make the"
              + " resource's discovery script print device indices (as sparkinfer-gpu-discovery.sh"
              + " and sparkinfer-npu-discovery.sh do; see DiscoveryScripts), or, if this resource"
              + " is not meant for sparkinfer, name the one that is with "
              + nameKey);
    }
    return Integer.parseInt(trimmed);
  }

  /**
   * Whether this process can see an NVIDIA GPU: CUDA_VISIBLE_DEVICES does not hide them all, and
   * the driver lists one under /proc/driver/nvidia/gpus (in containers too, where the NVIDIA
   * container toolkit mounts it) or /dev/nvidia0 exists. A look at the files, not a CUDA call,
   * because ORT's CPU build has no CUDA to ask.
   */
  static boolean nvidiaGpuVisible() {
    String visible = System.getenv("CUDA_VISIBLE_DEVICES");
    if (visible != null) {
      String first = visible.split(",", -1)[0].trim();
      // CUDA stops at the first entry that names no device: "", "-1" and "NoDevFiles" hide all.
      if (!first.matches("[0-9]+|GPU-.*|MIG-.*")) {
        return false;
      }
    }
    String[] gpus = new File("/proc/driver/nvidia/gpus").list();
    return (gpus != null && gpus.length > 0) || new File("/dev/nvidia0").exists();
  }
}

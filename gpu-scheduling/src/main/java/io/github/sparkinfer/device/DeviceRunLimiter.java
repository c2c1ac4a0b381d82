package io.github.sparkinfer.device;

import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Bounds how many session runs use one GPU or NPU at once in this JVM: every task of an executor
 * may be bound to the same device, and unbounded they would all queue kernels and allocate
 * activations on it at once. Runs on the CPU are not limited (Spark's task slots already bound
 * them). Callers wrap each run:
 *
 * <pre>{@code
 * try (DeviceRunLimiter.Permit permit = limiter.acquire(model.device())) {
 *   result = model.session().run(inputs);
 * }
 * }</pre>
 *
 * <p>Pass the device the session really runs on ({@link LoadedModel#device()}), so that a session
 * that fell back to the CPU does not take a GPU's permits. Waiting tasks get permits in the order
 * they asked. javac's -Xlint:try warns that the permit is not used in the block;
 * {@code @SuppressWarnings("try")} on the method says it is held on purpose. Thread-safe.
 */
public final class DeviceRunLimiter {
  private static final Permit UNLIMITED = () -> {};

  private final int concurrentRuns;
  private final ConcurrentMap<Device, Semaphore> semaphores = new ConcurrentHashMap<>();

  private DeviceRunLimiter(int concurrentRuns) {
    if (concurrentRuns < 1) {
      throw new IllegalArgumentException(
          "Invalid "
              + SchedulingProperties.DEVICE_CONCURRENT_RUNS
              + " "
              + concurrentRuns
              + ": must be at least 1 (runs at once on one GPU or NPU)");
    }
    this.concurrentRuns = concurrentRuns;
  }

  /** A limiter letting {@code concurrentRuns} runs use each accelerator at once. */
  public static DeviceRunLimiter create(int concurrentRuns) {
    return new DeviceRunLimiter(concurrentRuns);
  }

  /** A limiter as {@link SchedulingProperties#DEVICE_CONCURRENT_RUNS} in {@code settings} says. */
  public static DeviceRunLimiter fromSettings(Map<String, String> settings) {
    String value = settings.get(SchedulingProperties.DEVICE_CONCURRENT_RUNS);
    if (value == null) {
      return create(SchedulingProperties.DEVICE_CONCURRENT_RUNS_DEFAULT);
    }
    try {
      return create(Integer.parseInt(value.trim()));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "Invalid "
              + SchedulingProperties.DEVICE_CONCURRENT_RUNS
              + " '"
              + value
              + "': must be a whole number, at least 1",
          e);
    }
  }

  /**
   * The one limiter of this JVM, so that all tasks of an executor share the permits of a device.
   * Its permit count is read from the executor's SparkConf when it is first used.
   */
  public static DeviceRunLimiter shared() {
    return SharedLimiter.INSTANCE;
  }

  /**
   * Waits until a run may use {@code device}, in the order callers asked. Returns at once for the
   * CPU. Close the permit when the run is over; closing it again does nothing.
   *
   * @throws InterruptedException when the task is interrupted while waiting (Spark kills tasks that
   *     way); no permit is held then
   */
  public Permit acquire(Device device) throws InterruptedException {
    Objects.requireNonNull(device, "device");
    if (!device.isAccelerator()) {
      return UNLIMITED;
    }
    Semaphore semaphore = semaphore(device);
    semaphore.acquire();
    AtomicBoolean released = new AtomicBoolean();
    return () -> {
      if (released.compareAndSet(false, true)) {
        semaphore.release();
      }
    };
  }

  /**
   * Waits until {@code device} has no other run, then holds it alone: every permit of the device.
   * For a run that ran out of device memory while other runs held some of it, so that it is tried
   * again with the whole device before it is split or failed. Waits in the same order as
   * {@link #acquire} (callers that asked before it go first; those after it wait for it). Returns at
   * once for the CPU, whose runs have no permits.
   *
   * @throws InterruptedException when the task is interrupted while waiting; no permit is held then
   */
  public Permit acquireAlone(Device device) throws InterruptedException {
    Objects.requireNonNull(device, "device");
    if (!device.isAccelerator()) {
      return UNLIMITED;
    }
    Semaphore semaphore = semaphore(device);
    // A fair semaphore's acquire(n) queues as one waiter: later single-permit callers cannot overtake it.
    semaphore.acquire(concurrentRuns);
    AtomicBoolean released = new AtomicBoolean();
    return () -> {
      if (released.compareAndSet(false, true)) {
        semaphore.release(concurrentRuns);
      }
    };
  }

  /** Runs allowed at once on each accelerator. */
  public int concurrentRuns() {
    return concurrentRuns;
  }

  /** Runs holding a permit of {@code device} now; 0 for the CPU, which has no permits. */
  public int activeRuns(Device device) {
    Semaphore semaphore = device.isAccelerator() ? semaphores.get(device) : null;
    return semaphore == null ? 0 : concurrentRuns - semaphore.availablePermits();
  }

  /** Runs waiting for a permit of {@code device} now (an estimate, for metrics). */
  public int waitingRuns(Device device) {
    Semaphore semaphore = device.isAccelerator() ? semaphores.get(device) : null;
    return semaphore == null ? 0 : semaphore.getQueueLength();
  }

  @Override
  public String toString() {
    return "DeviceRunLimiter(" + concurrentRuns + " runs per accelerator)";
  }

  private Semaphore semaphore(Device device) {
    // Fair: a task waiting for the device is not overtaken by tasks that asked after it.
    return semaphores.computeIfAbsent(device, ignored -> new Semaphore(concurrentRuns, true));
  }

  /** A device run's permit: closing it lets the next run use the device. */
  @FunctionalInterface
  public interface Permit extends AutoCloseable {
    @Override
    void close();
  }

  /** Created on first use, so that SparkEnv exists when the setting is read. */
  private static final class SharedLimiter {
    static final DeviceRunLimiter INSTANCE = fromSettings(SparkSettings.ofThisJvm());
  }
}

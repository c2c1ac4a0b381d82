package io.github.sparkinfer.device;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class TestDeviceRunLimiter {
  private static final int THREADS = 16;
  private static final Device GPU = Device.cuda(0);

  private final ExecutorService pool = Executors.newFixedThreadPool(THREADS);

  @AfterEach
  void stopThreads() {
    pool.shutdownNow();
  }

  @Test
  @SuppressWarnings("try") // Permits held for their scope, as callers hold them around a run.
  void capHoldsWithManyThreads() throws Exception {
    DeviceRunLimiter limiter = DeviceRunLimiter.create(2);
    AtomicInteger inside = new AtomicInteger();
    AtomicInteger mostInside = new AtomicInteger();
    CountDownLatch firstTwoInside = new CountDownLatch(2);
    CountDownLatch release = new CountDownLatch(1);

    List<Future<?>> runs = new ArrayList<>();
    for (int i = 0; i < THREADS; i++) {
      runs.add(
          pool.submit(
              () -> {
                try (DeviceRunLimiter.Permit permit = limiter.acquire(GPU)) {
                  mostInside.accumulateAndGet(inside.incrementAndGet(), Math::max);
                  firstTwoInside.countDown();
                  // Holds the device until the test has seen the others queue up.
                  assertThat(release.await(60, SECONDS)).isTrue();
                  inside.decrementAndGet();
                }
                return null;
              }));
    }

    assertThat(firstTwoInside.await(60, SECONDS)).isTrue();
    awaitTrue(() -> limiter.waitingRuns(GPU) == THREADS - 2, "the other runs waiting");
    assertThat(inside.get()).isEqualTo(2);
    assertThat(limiter.activeRuns(GPU)).isEqualTo(2);

    release.countDown();
    for (Future<?> run : runs) {
      run.get(60, SECONDS);
    }
    assertThat(mostInside.get()).isEqualTo(2);
    assertThat(limiter.activeRuns(GPU)).isZero();
    assertThat(limiter.waitingRuns(GPU)).isZero();
  }

  @Test
  // A limiter that wrongly shared permits across devices would block here: fail, do not hang.
  @org.junit.jupiter.api.Timeout(value = 60, unit = SECONDS)
  @SuppressWarnings("try")
  void devicesHaveTheirOwnPermits() throws Exception {
    DeviceRunLimiter limiter = DeviceRunLimiter.create(1);
    try (DeviceRunLimiter.Permit first = limiter.acquire(Device.cuda(0))) {
      // cuda:0 is full, but cuda:1 and npu:0 are not: these return without waiting.
      try (DeviceRunLimiter.Permit other = limiter.acquire(Device.cuda(1));
          DeviceRunLimiter.Permit npu = limiter.acquire(Device.npu(0))) {
        assertThat(limiter.activeRuns(Device.cuda(0))).isEqualTo(1);
        assertThat(limiter.activeRuns(Device.cuda(1))).isEqualTo(1);
        assertThat(limiter.activeRuns(Device.npu(0))).isEqualTo(1);
      }
    }
    assertThat(limiter.activeRuns(Device.cuda(0))).isZero();
  }

  @Test
  @SuppressWarnings("try")
  void cpuRunsAreNotLimited() throws Exception {
    DeviceRunLimiter limiter = DeviceRunLimiter.create(1);
    // Every thread must be inside at once for the barrier to open.
    CyclicBarrier allInside = new CyclicBarrier(THREADS);

    List<Future<?>> runs = new ArrayList<>();
    for (int i = 0; i < THREADS; i++) {
      runs.add(
          pool.submit(
              () -> {
                try (DeviceRunLimiter.Permit permit = limiter.acquire(Device.cpu())) {
                  allInside.await(60, SECONDS);
                }
                return null;
              }));
    }
    for (Future<?> run : runs) {
      run.get(60, SECONDS);
    }
    assertThat(limiter.activeRuns(Device.cpu())).isZero();
  }

  /**
   * A run held alone (after it ran out of device memory beside other runs) waits for the runs in
   * flight, and runs that ask after it wait for it: it never shares the device.
   */
  @Test
  @org.junit.jupiter.api.Timeout(value = 60, unit = SECONDS)
  void aRunAloneWaitsForTheRunsInFlightAndHoldsOffLaterOnes() throws Exception {
    DeviceRunLimiter limiter = DeviceRunLimiter.create(3);
    DeviceRunLimiter.Permit inFlight = limiter.acquire(GPU);
    CountDownLatch aloneHeld = new CountDownLatch(1);
    CountDownLatch releaseAlone = new CountDownLatch(1);
    AtomicInteger othersWhileAlone = new AtomicInteger(-1);
    Future<?> alone = pool.submit(() -> {
      try (DeviceRunLimiter.Permit permit = limiter.acquireAlone(GPU)) {
        othersWhileAlone.set(limiter.activeRuns(GPU));
        aloneHeld.countDown();
        assertThat(releaseAlone.await(60, SECONDS)).isTrue();
      }
      return null;
    });
    awaitTrue(() -> limiter.waitingRuns(GPU) == 1, "the run alone waiting for the run in flight");
    // Two permits of three are free, yet a later run waits behind the one that asked to be alone.
    Future<?> later = pool.submit(() -> {
      limiter.acquire(GPU).close();
      return null;
    });
    awaitTrue(() -> limiter.waitingRuns(GPU) == 2, "the later run queued behind it");
    assertThat(aloneHeld.getCount()).as("alone while a run is in flight").isEqualTo(1);

    inFlight.close();
    assertThat(aloneHeld.await(60, SECONDS)).isTrue();
    // All three permits are the lone run's; the later run still waits.
    assertThat(othersWhileAlone.get()).isEqualTo(3);
    assertThat(later.isDone()).isFalse();
    releaseAlone.countDown();
    alone.get(60, SECONDS);
    later.get(60, SECONDS);
    assertThat(limiter.activeRuns(GPU)).isZero();

    // The CPU has no permits: alone there returns at once.
    try (DeviceRunLimiter.Permit cpu = limiter.acquireAlone(Device.cpu())) {
      assertThat(limiter.activeRuns(Device.cpu())).isZero();
    }
  }

  @Test
  void closingAPermitTwiceReleasesOnce() throws Exception {
    DeviceRunLimiter limiter = DeviceRunLimiter.create(2);
    DeviceRunLimiter.Permit held = limiter.acquire(GPU);
    DeviceRunLimiter.Permit closedTwice = limiter.acquire(GPU);

    closedTwice.close();
    closedTwice.close();

    assertThat(limiter.activeRuns(GPU)).isEqualTo(1);
    held.close();
    assertThat(limiter.activeRuns(GPU)).isZero();
  }

  @Test
  void interruptedWaitHoldsNoPermit() throws Exception {
    DeviceRunLimiter limiter = DeviceRunLimiter.create(1);
    DeviceRunLimiter.Permit held = limiter.acquire(GPU);
    CountDownLatch started = new CountDownLatch(1);
    Future<?> waiting =
        pool.submit(
            () -> {
              started.countDown();
              limiter.acquire(GPU).close();
              return null;
            });
    assertThat(started.await(60, SECONDS)).isTrue();
    awaitTrue(() -> limiter.waitingRuns(GPU) == 1, "the run waiting");

    waiting.cancel(true);
    awaitTrue(() -> limiter.waitingRuns(GPU) == 0, "the interrupted run to stop waiting");

    assertThat(limiter.activeRuns(GPU)).isEqualTo(1);
    held.close();
    assertThat(limiter.activeRuns(GPU)).isZero();
  }

  @Test
  void permitsComeFromTheSetting() {
    assertThat(DeviceRunLimiter.fromSettings(Map.of()).concurrentRuns())
        .isEqualTo(SchedulingProperties.DEVICE_CONCURRENT_RUNS_DEFAULT);
    assertThat(
            DeviceRunLimiter.fromSettings(
                    Map.of(SchedulingProperties.DEVICE_CONCURRENT_RUNS, " 4 "))
                .concurrentRuns())
        .isEqualTo(4);
    assertThatThrownBy(
            () ->
                DeviceRunLimiter.fromSettings(
                    Map.of(SchedulingProperties.DEVICE_CONCURRENT_RUNS, "0")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "Invalid spark.sparkinfer.device.concurrentRuns 0: must be at least 1 (runs at once on"
                + " one GPU or NPU)");
    assertThatThrownBy(
            () ->
                DeviceRunLimiter.fromSettings(
                    Map.of(SchedulingProperties.DEVICE_CONCURRENT_RUNS, "two")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "Invalid spark.sparkinfer.device.concurrentRuns 'two': must be a whole number, at"
                + " least 1");
  }

  @Test
  void sharedLimiterIsOnePerJvm() {
    assertThat(DeviceRunLimiter.shared()).isSameAs(DeviceRunLimiter.shared());
    // No SparkEnv in this JVM, so the default.
    assertThat(DeviceRunLimiter.shared().concurrentRuns())
        .isEqualTo(SchedulingProperties.DEVICE_CONCURRENT_RUNS_DEFAULT);
  }

  /** Polls {@code condition} until it holds, failing after a minute. */
  private static void awaitTrue(BooleanSupplier condition, String what) {
    long deadline = System.nanoTime() + SECONDS.toNanos(60);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("Timed out waiting for " + what);
      }
      Thread.onSpinWait();
    }
  }
}

package io.github.sparkinfer.device;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link ModelCache}'s sessions, by model file content and settings ({@link ModelKey}): each
 * loaded once however many tasks ask at once, on its settings' device or, when that cannot be used,
 * as the {@link DeviceFallback} policy says; closed as unused by the {@link SessionEviction}, and
 * all at executor shutdown ({@link #closeAll}), never under a run. Thread-safe.
 */
final class CachedSessions {
  // Logged as the cache's, as before this class was split from it: log settings name ModelCache.
  private static final Logger LOG = LoggerFactory.getLogger(ModelCache.class);

  // The single-flight map: the first task to ask for a key loads it, the others wait for that load.
  private final ConcurrentMap<ModelKey, CompletableFuture<CachedModel>> models =
      new ConcurrentHashMap<>();
  private final AtomicLong loads = new AtomicLong();
  private final ConcurrentMap<ModelSource, LongAdder> loadsBySource = new ConcurrentHashMap<>();
  private final DeviceFallbacks fallbacks = new DeviceFallbacks();
  private final Supplier<Set<String>> availableProviders;
  private final SessionEviction eviction;
  private volatile boolean closed = false;

  /** Sessions created with the providers {@code availableProviders} names, closed by {@code eviction}. */
  CachedSessions(Supplier<Set<String>> availableProviders, SessionEviction eviction) {
    this.availableProviders = Objects.requireNonNull(availableProviders, "availableProviders");
    this.eviction = Objects.requireNonNull(eviction, "eviction");
  }

  /** Closes the sessions no run and no task holds that the cache policy says to close. */
  int evictUnused() {
    return closed ? 0 : eviction.evict(models);
  }

  /** Sessions loaded, for all sources, versions and settings. */
  long loadCount() {
    return loads.get();
  }

  /** Sessions loaded for {@code source}, over all versions and settings. */
  long loadCount(ModelSource source) {
    LongAdder count = loadsBySource.get(source);
    return count == null ? 0 : count.sum();
  }

  /** The sessions that run on the CPU because their accelerator could not be used. */
  DeviceFallbacks fallbacks() {
    return fallbacks;
  }

  int size() {
    return models.size();
  }

  /**
   * The session for {@code key}, leased. A session another thread loaded may be closed by an
   * eviction between its load and this lease: then its key is gone and it is loaded again; a load
   * leases its session before anyone can see it, so this ends.
   */
  CachedModel getLeased(ModelKey key, ModelSource source, ModelFiles.LocalCopy copy) {
    for (int attempt = 0; attempt < 100; attempt++) {
      CompletableFuture<CachedModel> existing = models.get(key);
      if (existing == null) {
        CachedModel loaded = loadOnce(key, source, copy);
        if (loaded != null) {
          return loaded;
        }
      } else {
        CachedModel model = await(existing, source);
        if (model.lifetime().lease()) {
          return model;
        }
      }
    }
    throw ModelLoadException.of(source, "its session was closed as unused 100 times before this task could"
        + " take it", "Raise " + SchedulingProperties.CACHE_MAX_SESSIONS
        + " (more models are in use on this device than it allows)", null);
  }

  /**
   * {@link ModelCache#closeAll}: refuses later loads, and closes every session no run holds by
   * {@code gracePeriod}; the others are left to their last run, never closed under it.
   */
  ShutdownSummary closeAll(Duration gracePeriod) {
    long start = System.nanoTime();
    long deadline = start + gracePeriod.toNanos();
    closed = true;
    int sessions = 0;
    int left = 0;
    int runsInFlight = 0;
    for (Map.Entry<ModelKey, CompletableFuture<CachedModel>> entry : models.entrySet()) {
      models.remove(entry.getKey(), entry.getValue());
      CompletableFuture<CachedModel> loading = entry.getValue();
      // A load still running closes its own session when it sees the cache closed.
      if (loading.isDone() && !loading.isCompletedExceptionally()) {
        CachedModel model = loading.join();
        sessions++;
        runsInFlight += model.runsInFlight();
        boolean closedNow = closeQuietly(model, deadline);
        if (closedNow) {
          // Its folder's use, so that another cache of this JVM (or a later one) may delete it.
          FolderLocks.release(model.localFile().getParent());
        }
        if (!closedNow) {
          left++;
          LOG.warn("Left the session of {} open: {} runs still held it after the grace period of {} ms ({}); the"
              + " last of them closes it when it ends, or the exiting process takes its native memory: it is never"
              + " freed under a running thread",
              model, model.runsInFlight(), gracePeriod.toMillis(), SchedulingProperties.SHUTDOWN_GRACE_PERIOD);
        }
      }
    }
    ShutdownSummary summary = new ShutdownSummary(sessions, left, runsInFlight,
        (System.nanoTime() - start) / 1_000_000, gracePeriod.toMillis());
    if (sessions > 0) {
      LOG.info("{}", summary);
    }
    return summary;
  }

  /** Loads {@code key} leased, or returns null when another thread started loading it first. */
  private CachedModel loadOnce(ModelKey key, ModelSource source, ModelFiles.LocalCopy file) {
    CompletableFuture<CachedModel> loading = new CompletableFuture<>();
    CompletableFuture<CachedModel> existing = models.putIfAbsent(key, loading);
    if (existing != null) {
      return null;
    }

    CachedModel model;
    try {
      // Leased before it is published: no eviction can close it before this caller has it.
      model = load(key, source, file);
    } catch (Throwable failure) {
      // Removed before the waiters hear of it, so that a retry starts a new load instead of
      // finding this failed one: failures are not cached.
      models.remove(key, loading);
      loading.completeExceptionally(failure);
      throw failure;
    }
    loading.complete(model);

    if (closed) {
      // closeAll() ran during the load and could not close a session that did not exist yet; no
      // run holds it.
      models.remove(key, loading);
      closeQuietly(model, System.nanoTime());
      checkOpen();
    }
    return model;
  }

  private CachedModel await(CompletableFuture<CachedModel> loading, ModelSource source) {
    CachedModel model;
    try {
      model = loading.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ModelLoadException(
          "Interrupted while waiting for model '"
              + source.name()
              + "' to load from "
              + source.uri(),
          e);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof ModelLoadException) {
        // A new exception, so that this thread's stack trace shows where it waited.
        throw new ModelLoadException(cause.getMessage(), cause);
      } else if (cause instanceof RuntimeException) {
        throw (RuntimeException) cause;
      } else if (cause instanceof Error) {
        throw (Error) cause;
      }
      throw ModelLoadException.of(source, "loading it failed (" + cause + ")", "See the cause below", cause);
    }
    checkOpen();
    return model;
  }

  private CachedModel load(ModelKey key, ModelSource source, ModelFiles.LocalCopy file) {
    return key.settings.device().isAccelerator()
        ? loadOnAccelerator(key, source, file)
        : loadOnCpu(key, source, file);
  }

  private CachedModel loadOnCpu(ModelKey key, ModelSource source, ModelFiles.LocalCopy file) {
    long start = System.nanoTime();
    ModelFiles.LocalCopy copy = file;
    OrtSession session = DeviceSessions.onCpu(source, copy.file(), key.settings);
    return loaded(key, source, copy, session, List.of(ExecutionProviders.CPU), start);
  }

  /**
   * Creates the session with the device's execution providers, or, when the providers are missing
   * from ORT's build or creating the session with them fails, applies the fallback policy.
   */
  private CachedModel loadOnAccelerator(ModelKey key, ModelSource source, ModelFiles.LocalCopy file) {
    long start = System.nanoTime();
    SessionSettings settings = key.settings;
    Device device = settings.device();
    List<String> providers = ExecutionProviders.forDevice(device, settings.providerOptions());
    Set<String> available = availableProviders.get();
    String unusable = ExecutionProviders.missing(device, providers, available);
    Throwable cause = null;
    if (unusable == null) {
      ModelFiles.LocalCopy copy = file;
      OrtSession session = null;
      try {
        session = DeviceSessions.onAccelerator(source, copy.file(), settings);
      } catch (ModelLoadException e) {
        throw e;
      } catch (OrtException | RuntimeException e) {
        // The local copy stays: the model may be fine and the device at fault. A broken copy
        // shows when the CPU session is created, which deletes it.
        unusable =
            "ONNX Runtime "
                + OrtEnvironments.get().getVersion()
                + " could not create the session with "
                + String.join(", ", providers.subList(0, providers.size() - 1))
                + " ("
                + e.getMessage()
                + "; OrtEnvironment.getAvailableProviders(): "
                + new TreeSet<>(available)
                + ")";
        cause = e;
      }
      if (session != null) {
        return loaded(key, source, copy, session, providers, start);
      }
    }

    if (settings.fallback() == DeviceFallback.FAIL) {
      throw ModelLoadException.of(
          source,
          "device " + device + " cannot be used: " + unusable,
          DeviceFallbacks.fix(device, settings, cause == null),
          cause);
    }
    // Loaded (or found) like any CPU session, so it is shared with tasks that asked for the CPU.
    // Leased like the session of this key would be (the view shares the CPU session's lifetime).
    CachedModel cpu = getLeased(key.withSettings(settings.onCpu()), source, file);
    fallbacks.record(source, device, unusable, cause);
    return cpu.fallbackFor(settings, unusable);
  }

  private CachedModel loaded(
      ModelKey key,
      ModelSource source,
      ModelFiles.LocalCopy copy,
      OrtSession session,
      List<String> providers,
      long start) {
    CachedModel model;
    try {
      model =
          new CachedModel(
              source, key.settings, providers, Signatures.of(session), session, copy.file(), eviction.clock());
    } catch (OrtException | RuntimeException e) {
      closeQuietly(session);
      throw ModelLoadException.of(
          source,
          "ONNX Runtime could not list its inputs and outputs (" + e.getMessage() + ")",
          "Check that the model loads in ONNX Runtime " + OrtEnvironments.get().getVersion(),
          e);
    }

    // The session's use of its folder, given back when it is closed as unused.
    FolderLocks.use(copy.folder());
    model.lifetime().lease();
    loads.incrementAndGet();
    loadsBySource.computeIfAbsent(source, ignored -> new LongAdder()).increment();
    LOG.info(
        "Loaded model '{}' from {} (local file {}, {}) with settings [{}] and providers {}"
            + " in {} ms",
        source.name(),
        source.uri(),
        copy.file(),
        copy.copied() ? "copied" : "already copied",
        key.settings,
        providers,
        TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
    return model;
  }

  void checkOpen() {
    if (closed) {
      throw new IllegalStateException("The model cache is closed: the executor is shutting down");
    }
  }

  /** False when runs held the session until the deadline: it was left open. */
  private static boolean closeQuietly(CachedModel model, long deadlineNanos) {
    try {
      return model.close(deadlineNanos);
    } catch (OrtException | RuntimeException e) {
      LOG.warn("Cannot close the session of {}", model, e);
      return true;
    }
  }

  private static void closeQuietly(OrtSession session) {
    try {
      session.close();
    } catch (OrtException | RuntimeException e) {
      LOG.warn("Cannot close an ONNX Runtime session", e);
    }
  }
}

package io.github.sparkinfer.device;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.file.Path;
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
import org.apache.hadoop.conf.Configuration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The per-JVM (per-executor) model cache: one ONNX Runtime session per model file version and
 * session settings, loaded once and shared by every task of the JVM.
 *
 * <p>Model files are read through the Hadoop FileSystem API (file:, hdfs:, s3a:, ...) and copied
 * once per version, with their external data, into a folder of their own in a local cache ({@link
 * SchedulingProperties#CACHE_DIRECTORY}) that only the executor's user may read, after the {@link
 * AllowedRoots} allow the URI. The file's status is read on every {@link #acquire}, so a file
 * replaced at the same URI is noticed and loaded as a new version. Sessions no run and no task
 * ({@link #lease}) holds are closed as the {@link CachePolicy} says (older versions, idle ones, a
 * device's least recently used beyond its limits; {@link SessionEviction}), and their local copies
 * deleted.
 *
 * <p>Sessions are bound to the device of their {@link SessionSettings}: tasks on one GPU share one
 * session, another GPU gets its own. When a session cannot be created on its accelerator, the
 * settings' {@link DeviceFallback} policy decides: fail, or share the model's CPU session, which is
 * logged once per model and device and counted ({@link #fallbackCount()}).
 *
 * <p>Thread-safe. Tasks never close the sessions they acquire; {@link #closeAll(Duration)} does, at
 * executor shutdown (a JVM shutdown hook, so also on SIGTERM): it refuses new runs, waits up to the
 * grace period ({@link SchedulingProperties#SHUTDOWN_GRACE_PERIOD}) for the runs in flight, and
 * closes only the sessions no run holds any more. ONNX Runtime does not guard a session closed
 * during a run, so one still held at the deadline is closed by its last run when that ends, or left
 * to the exiting process: never closed under a run.
 *
 * <p>Native objects and who owns them: a session belongs to this cache (created by the loading
 * thread, closed by {@link #closeAll}); a run's input and output tensors to the task thread that
 * made them (closed by it after the run, in {@code finally}); a run's outputs and its hold on the
 * session to its {@link ModelRun} (closed by the same thread once read). Tokenizers (spark-udf's
 * TokenizerCache) are bounded, and closed when evicted once no encode runs on them.
 */
public final class ModelCache implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ModelCache.class);

  private final ModelFiles files;
  // The single-flight map: the first task to ask for a key loads it, the others wait for that load.
  private final ConcurrentMap<ModelKey, CompletableFuture<CachedModel>> models =
      new ConcurrentHashMap<>();
  private final AtomicLong loads = new AtomicLong();
  private final ConcurrentMap<ModelSource, LongAdder> loadsBySource = new ConcurrentHashMap<>();
  private final DeviceFallbacks fallbacks = new DeviceFallbacks();
  private final Supplier<Set<String>> availableProviders;
  private final AllowedRoots allowedRoots;
  private final SessionEviction eviction;
  private volatile boolean closed = false;

  /** A cache whose local copies go to {@code cacheDirectory}; tests use their own folder. */
  ModelCache(Path cacheDirectory) {
    this(cacheDirectory, ExecutionProviders::available);
  }

  /**
   * A cache that takes {@code availableProviders} for ORT's: tests claim providers this CPU-only
   * build lacks, to reach the failures of creating sessions with them.
   */
  ModelCache(Path cacheDirectory, Supplier<Set<String>> availableProviders) {
    this(cacheDirectory, availableProviders, AllowedRoots.unrestricted(), CachePolicy.DEFAULT, System::nanoTime);
  }

  /** A cache that loads only files {@code allowedRoots} allows. */
  ModelCache(Path cacheDirectory, AllowedRoots allowedRoots) {
    this(cacheDirectory, ExecutionProviders::available, allowedRoots, CachePolicy.DEFAULT, System::nanoTime);
  }

  /** A cache that closes unused sessions as {@code policy} says, by {@code clock} (nanoseconds). */
  ModelCache(Path cacheDirectory, AllowedRoots allowedRoots, CachePolicy policy, java.util.function.LongSupplier clock) {
    this(cacheDirectory, ExecutionProviders::available, allowedRoots, policy, clock);
  }

  private ModelCache(Path cacheDirectory, Supplier<Set<String>> availableProviders, AllowedRoots allowedRoots,
      CachePolicy policy, java.util.function.LongSupplier clock) {
    this.availableProviders = Objects.requireNonNull(availableProviders, "availableProviders");
    this.allowedRoots = Objects.requireNonNull(allowedRoots, "allowedRoots");
    this.files = new ModelFiles(cacheDirectory, allowedRoots);
    this.eviction = new SessionEviction(policy, clock);
  }

  /**
   * A task's hold on {@code model}'s session between its runs, given back by closing it (at the end
   * of the task): the session is not closed as unused while any task holds it.
   */
  public AutoCloseable lease(LoadedModel model) {
    if (!(model instanceof CachedModel) || !((CachedModel) model).lifetime().lease()) {
      return () -> { };
    }
    SessionLifetime lifetime = ((CachedModel) model).lifetime();
    java.util.concurrent.atomic.AtomicBoolean open = new java.util.concurrent.atomic.AtomicBoolean(true);
    return () -> {
      if (open.getAndSet(false)) {
        lifetime.unlease();
        evictUnused();
      }
    };
  }

  /**
   * Closes the sessions no run and no task holds that the cache policy says to close: replaced
   * versions, idle ones, and the least recently used beyond a device's limits; deletes the local
   * copies no open session uses. Runs after every acquire and lease, and on a timer in executors.
   *
   * @return the sessions closed
   */
  public int evictUnused() {
    return closed ? 0 : eviction.evict(models);
  }

  /** Sessions closed as unused so far. */
  long evictionCount() {
    return eviction.closedCount();
  }

  /** How this cache closes unused sessions. */
  CachePolicy policy() {
    return eviction.policy();
  }

  /** Where this cache may load files from. */
  public AllowedRoots allowedRoots() {
    return allowedRoots;
  }

  /**
   * Refuses a source outside the allowed roots before anything is read; a file sparkinfer made
   * from one (a compressed copy) only from this cache's own folder.
   */
  private void checkAllowed(ModelSource source) {
    if (source.derivedFrom().isPresent()) {
      allowedRoots.check(source, source.derivedFrom().get());
      Path made = java.nio.file.Paths.get(new org.apache.hadoop.fs.Path(source.uri()).toUri().getPath()).normalize();
      if (!made.startsWith(files.directory().toAbsolutePath().normalize())) {
        throw ModelLoadException.of(source, "a file made from " + source.derivedFrom().get() + " must lie in the model"
            + " cache folder " + files.directory(), "This is a bug in sparkinfer: report it", null);
      }
    } else {
      allowedRoots.check(source, source.uri());
    }
  }

  /**
   * The one cache of this JVM. Its folder is read from the executor's SparkConf when the cache is
   * first used, and its sessions are closed when the JVM shuts down.
   */
  public static ModelCache shared() {
    return SharedModelCache.INSTANCE;
  }

  /**
   * Returns the session for the current version of {@code source}'s file and {@code settings},
   * loading it if no task of this JVM has. When many tasks ask at once, one loads and the others
   * wait for it. A failed load is not remembered: the next call tries again.
   *
   * <p>For an accelerator, the returned model's {@link LoadedModel#device()} says where the session
   * really runs: the CPU when the device could not be used and the fallback policy is cpu.
   *
   * @throws ModelLoadException when the file cannot be found, copied or read as an ONNX model, or
   *     the device cannot be used and the fallback policy is fail; the message names the model, the
   *     URI, the reason and the fix
   */
  public LoadedModel acquire(
      ModelSource source, SessionSettings settings, Configuration hadoopConfiguration) {
    Lease lease = acquireLeased(source, settings, hadoopConfiguration);
    // Given back without closing anything: the caller's lease(), if it takes one, comes next.
    lease.model.lifetime().unlease();
    return lease.model();
  }

  /**
   * {@link #acquire}, with the task's lease on the session already taken: a task that runs the
   * session (between its batches too) must use this, so that no eviction (another model's load, a
   * timer) closes the session between its load and the lease. Close the lease when the task ends.
   */
  public Lease acquireLeased(ModelSource source, SessionSettings settings, Configuration hadoopConfiguration) {
    Objects.requireNonNull(source, "source");
    Objects.requireNonNull(settings, "settings");
    Objects.requireNonNull(hadoopConfiguration, "hadoopConfiguration");
    checkOpen();
    checkAllowed(source);

    ModelFiles.Remote file = ModelFiles.find(source, hadoopConfiguration);
    // Checked against this source's hash, even when the session was loaded for another source.
    ModelFiles.LocalCopy copy = files.copy(source, file);
    CachedModel model = null;
    try {
      eviction.found(file.version().uri(), copy.digest());
      model = getLeased(new ModelKey(file.version().uri(), copy.digest(), settings), source, copy);
    } finally {
      // This call's use of the folder: a session keeps its own.
      FolderLocks.release(copy.folder());
      if (model == null) {
        // A failed load leaves no files behind, unless another session or executor uses them.
        FolderLocks.deleteIfUnused(copy.folder());
      }
    }
    Lease lease = new Lease(model.as(source));
    // Now that the session is leased, closing other unused ones cannot close it.
    evictUnused();
    // Two model names may point at one file; each caller sees the name it asked for.
    return lease;
  }

  /** A task's hold on a session from {@link #acquireLeased}: closing it gives the session back. */
  public final class Lease implements AutoCloseable {
    private final CachedModel model;
    private final java.util.concurrent.atomic.AtomicBoolean open = new java.util.concurrent.atomic.AtomicBoolean(true);

    private Lease(CachedModel model) {
      this.model = model;
    }

    public LoadedModel model() {
      return model;
    }

    @Override
    public void close() {
      if (open.getAndSet(false)) {
        model.lifetime().unlease();
        evictUnused();
      }
    }
  }

  /**
   * The session for {@code key}, leased. A session another thread loaded may be closed by an
   * eviction between its load and this lease: then its key is gone and it is loaded again; a load
   * leases its session before anyone can see it, so this ends.
   */
  private CachedModel getLeased(ModelKey key, ModelSource source, ModelFiles.LocalCopy copy) {
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
   * A local copy of any file a model needs besides its .onnx file (a tokenizer, say): copied from
   * its URI into the cache folder once per file version, like model files.
   *
   * @throws ModelLoadException when the file cannot be found or copied
   */
  public Path localFile(ModelSource source, Configuration hadoopConfiguration) {
    Objects.requireNonNull(source, "source");
    Objects.requireNonNull(hadoopConfiguration, "hadoopConfiguration");
    checkOpen();
    checkAllowed(source);
    // Kept for the life of the JVM: the caller keeps the path, and no session says when it is done.
    return files.copy(source, ModelFiles.find(source, hadoopConfiguration)).file();
  }

  /** Sessions this cache has loaded, for all sources, versions and settings. */
  public long loadCount() {
    return loads.get();
  }

  /** Sessions this cache has loaded for {@code source}, over all versions and settings. */
  public long loadCount(ModelSource source) {
    LongAdder count = loadsBySource.get(source);
    return count == null ? 0 : count.sum();
  }

  /**
   * Sessions that run on the CPU because their accelerator could not be used, for all sources: one
   * per model file version, settings and device, however many tasks then use the CPU session (each
   * task can tell by {@link LoadedModel#isFallback()}).
   */
  public long fallbackCount() {
    return fallbacks.count();
  }

  /** {@link #fallbackCount()} for {@code source}. */
  public long fallbackCount(ModelSource source) {
    return fallbacks.count(source);
  }

  /** The fallback WARNs logged: one per model and device. */
  long fallbackWarningCount() {
    return fallbacks.warningCount();
  }

  /** Model files this cache copied to its folder; a copy another JVM made first is not counted. */
  long copyCount() {
    return files.copyCount();
  }

  Path cacheDirectory() {
    return files.directory();
  }

  /**
   * Refuses later acquires and runs, waits up to {@code gracePeriod} for the runs in flight, and
   * closes every session that no run holds then. Sessions still held at the deadline are left open
   * (logged) and closed by their last run when it ends: closing one under a run would crash the JVM.
   *
   * @return what was closed and left
   */
  public ShutdownSummary closeAll(Duration gracePeriod) {
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

  /** {@link #closeAll(Duration)} with the default grace period. */
  @Override
  public void close() {
    closeAll(Duration.ofMillis(SchedulingProperties.SHUTDOWN_GRACE_PERIOD_DEFAULT_MS));
  }

  @Override
  public String toString() {
    return "ModelCache(" + files.directory() + ", " + models.size() + " sessions)";
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

  private void checkOpen() {
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

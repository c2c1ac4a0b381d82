package io.github.sparkinfer.device;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.Set;
import java.util.function.Supplier;
import org.apache.hadoop.conf.Configuration;

/**
 * The per-JVM (per-executor) model cache: one ONNX Runtime session per model file version and
 * session settings, loaded once and shared by every task of the JVM ({@link CachedSessions}).
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
  private final ModelFiles files;
  private final AllowedRoots allowedRoots;
  private final SessionEviction eviction;
  private final CachedSessions sessions;

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
    Objects.requireNonNull(availableProviders, "availableProviders");
    this.allowedRoots = Objects.requireNonNull(allowedRoots, "allowedRoots");
    this.files = new ModelFiles(cacheDirectory, allowedRoots);
    this.eviction = new SessionEviction(policy, clock);
    this.sessions = new CachedSessions(availableProviders, eviction);
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
    return sessions.evictUnused();
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
    sessions.checkOpen();
    checkAllowed(source);

    RemoteFile file = RemoteFile.find(source, hadoopConfiguration);
    // Checked against this source's hash, even when the session was loaded for another source.
    ModelFiles.LocalCopy copy = files.copy(source, file);
    CachedModel model = null;
    try {
      eviction.found(file.version().uri(), copy.digest());
      model = sessions.getLeased(new ModelKey(file.version().uri(), copy.digest(), settings), source, copy);
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
   * A local copy of any file a model needs besides its .onnx file (a tokenizer, say): copied from
   * its URI into the cache folder once per file version, like model files.
   *
   * @throws ModelLoadException when the file cannot be found or copied
   */
  public Path localFile(ModelSource source, Configuration hadoopConfiguration) {
    Objects.requireNonNull(source, "source");
    Objects.requireNonNull(hadoopConfiguration, "hadoopConfiguration");
    sessions.checkOpen();
    checkAllowed(source);
    // Kept for the life of the JVM: the caller keeps the path, and no session says when it is done.
    return files.copy(source, RemoteFile.find(source, hadoopConfiguration)).file();
  }

  /** Sessions this cache has loaded, for all sources, versions and settings. */
  public long loadCount() {
    return sessions.loadCount();
  }

  /** Sessions this cache has loaded for {@code source}, over all versions and settings. */
  public long loadCount(ModelSource source) {
    return sessions.loadCount(source);
  }

  /**
   * Sessions that run on the CPU because their accelerator could not be used, for all sources: one
   * per model file version, settings and device, however many tasks then use the CPU session (each
   * task can tell by {@link LoadedModel#isFallback()}).
   */
  public long fallbackCount() {
    return sessions.fallbacks().count();
  }

  /** {@link #fallbackCount()} for {@code source}. */
  public long fallbackCount(ModelSource source) {
    return sessions.fallbacks().count(source);
  }

  /** The fallback WARNs logged: one per model and device. */
  long fallbackWarningCount() {
    return sessions.fallbacks().warningCount();
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
    return sessions.closeAll(gracePeriod);
  }

  /** {@link #closeAll(Duration)} with the default grace period. */
  @Override
  public void close() {
    closeAll(Duration.ofMillis(SchedulingProperties.SHUTDOWN_GRACE_PERIOD_DEFAULT_MS));
  }

  @Override
  public String toString() {
    return "ModelCache(" + files.directory() + ", " + sessions.size() + " sessions)";
  }
}

package io.github.sparkinfer.device;

import ai.onnxruntime.OrtException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Closes the model cache's sessions that nobody uses, as the {@link CachePolicy} says: replaced
 * versions, idle ones, and the least recently used beyond the count or byte limit of their
 * device. A session is closed only when no run and no task holds it (checked atomically with new
 * holds), and the local copy of its version is deleted once no open session uses it.
 */
final class SessionEviction {
  private static final Logger LOG = LoggerFactory.getLogger(SessionEviction.class);

  private final CachePolicy policy;
  private final LongSupplier clock;
  // The content each URI had when an acquire last looked: the most recently found, not the newest
  // mtime, so a restored older file is the one kept.
  private final ConcurrentMap<String, String> latest = new ConcurrentHashMap<>();
  private final AtomicLong closed = new AtomicLong();
  // Bytes of each version's local folder, measured once: its files do not change once copied, and
  // eviction runs after every acquire.
  private final ConcurrentMap<Path, Long> folderBytes = new ConcurrentHashMap<>();

  SessionEviction(CachePolicy policy, LongSupplier clock) {
    this.policy = policy;
    this.clock = clock;
  }

  CachePolicy policy() {
    return policy;
  }

  /** The clock idle times are measured by (nanoseconds). */
  LongSupplier clock() {
    return clock;
  }

  /** The content an acquire found at {@code uri}: sessions of its other contents are closed when unused. */
  void found(String uri, String digest) {
    latest.put(uri, digest);
  }

  /** Sessions this has closed. */
  long closedCount() {
    return closed.get();
  }

  /** One session and the cache keys that map to it (a CPU session also serves the devices that fell back to it). */
  private final class Entry {
    final CachedModel model;
    final ModelKey version;
    final List<Map.Entry<ModelKey, CompletableFuture<CachedModel>>> keys = new ArrayList<>();
    final long bytes;

    Entry(CachedModel model, ModelKey version) {
      this.model = model;
      this.version = version;
      this.bytes = folderBytes.computeIfAbsent(model.localFile().getParent(), SessionEviction::measure);
    }
  }

  /** Applies the policy once; returns the sessions closed. */
  synchronized int evict(ConcurrentMap<ModelKey, CompletableFuture<CachedModel>> models) {
    Map<SessionLifetime, Entry> sessions = new IdentityHashMap<>();
    for (Map.Entry<ModelKey, CompletableFuture<CachedModel>> mapping : models.entrySet()) {
      CompletableFuture<CachedModel> loading = mapping.getValue();
      if (!loading.isDone() || loading.isCompletedExceptionally()) {
        continue;
      }
      CachedModel model = loading.join();
      sessions.computeIfAbsent(model.lifetime(), ignored -> new Entry(model, mapping.getKey()))
          .keys.add(mapping);
    }
    int count = 0;
    long now = clock.getAsLong();
    long idle = policy.idleTimeout().toNanos();
    Map<Device, List<Entry>> byDevice = new HashMap<>();
    for (Entry entry : sessions.values()) {
      String newest = latest.get(entry.version.uri);
      if (newest != null && !newest.equals(entry.version.digest)) {
        count += close(entry, models, "its file now has other content (sha256 " + newest + ")");
      } else if (idle > 0 && now - entry.model.lifetime().lastUsedNanos() > idle) {
        count += close(entry, models, "unused for more than " + policy.idleTimeout());
      } else {
        byDevice.computeIfAbsent(entry.model.device(), ignored -> new ArrayList<>()).add(entry);
      }
    }
    for (Map.Entry<Device, List<Entry>> device : byDevice.entrySet()) {
      List<Entry> open = device.getValue();
      open.sort(Comparator.comparingLong(entry -> entry.model.lifetime().lastUsedNanos()));
      long bytes = open.stream().mapToLong(entry -> entry.bytes).sum();
      int sessionCount = open.size();
      for (Entry entry : open) {
        boolean tooMany = policy.maxSessionsPerDevice() > 0 && sessionCount > policy.maxSessionsPerDevice();
        boolean tooLarge = policy.maxBytesPerDevice() > 0 && bytes > policy.maxBytesPerDevice();
        if (!tooMany && !tooLarge) {
          break;
        }
        int done = close(entry, models, tooMany
            ? "more than " + policy.maxSessionsPerDevice() + " sessions on " + device.getKey()
            : "more than " + policy.maxBytesPerDevice() + " bytes of models on " + device.getKey());
        if (done > 0) {
          count += done;
          sessionCount--;
          bytes -= entry.bytes;
        }
      }
    }
    return count;
  }

  private int close(Entry entry, ConcurrentMap<ModelKey, CompletableFuture<CachedModel>> models, String why) {
    try {
      if (!entry.model.lifetime().closeIfUnused()) {
        return 0;  // a run or a task holds it: tried again later
      }
    } catch (OrtException | RuntimeException e) {
      LOG.warn("Cannot close the session of {}", entry.model, e);
    }
    for (Map.Entry<ModelKey, CompletableFuture<CachedModel>> mapping : entry.keys) {
      models.remove(mapping.getKey(), mapping.getValue());
    }
    closed.incrementAndGet();
    Path folder = entry.model.localFile().getParent();
    // The session's use of its folder; deleted if no other session, cache or executor JVM uses it.
    FolderLocks.release(folder);
    boolean folderInUse = !FolderLocks.deleteIfUnused(folder);
    if (!folderInUse) {
      folderBytes.remove(folder);
    }
    LOG.info("Closed the session of {}: {}{}", entry.model, why, folderInUse ? "" : "; deleted its local copy " + folder);
    return 1;
  }

  private static long measure(Path folder) {
    try (Stream<Path> files = Files.walk(folder)) {
      // The model's files, not the cache's own records (.lock, .complete).
      return files.filter(Files::isRegularFile).filter(file -> !file.getFileName().toString().startsWith("."))
          .mapToLong(file -> file.toFile().length()).sum();
    } catch (IOException | RuntimeException e) {
      return 0;
    }
  }

}

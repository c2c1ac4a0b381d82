package io.github.sparkinfer.device;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Who uses a version folder of the local cache, across the executor JVMs of one user on a host
 * (the default cache folder is per user, not per JVM). A JVM that uses a folder holds a shared
 * {@link FileLock} on its {@code .lock} file; a JVM deletes a folder only when it gets the exclusive
 * lock, so never under another JVM's session. The OS drops the locks of a JVM that dies.
 *
 * <p>Java file locks belong to the whole JVM (a second lock on the same file throws), so within one
 * JVM the uses are counted here, for every cache of the JVM, and the shared lock is held while the
 * count is above zero.
 *
 * <p>A user locks first and then checks the folder's {@code .complete} marker; a deleter removes
 * the marker first, under the exclusive lock: a folder seen complete under a shared lock stays so.
 */
final class FolderLocks {
  private static final Logger LOG = LoggerFactory.getLogger(FolderLocks.class);
  static final String LOCK_FILE = ".lock";
  static final String COMPLETE_FILE = ".complete";

  private static final Map<Path, Use> USES = new HashMap<>();

  private FolderLocks() {}

  private static final class Use {
    final FileChannel channel;
    final FileLock lock;
    int count;

    Use(FileChannel channel, FileLock lock) {
      this.channel = channel;
      this.lock = lock;
    }
  }

  /**
   * Takes a use of {@code folder} if it is complete.
   *
   * @return false when it is not (missing, or being deleted): nothing is held
   */
  static synchronized boolean use(Path folder) {
    Path key = folder.toAbsolutePath().normalize();
    Use use = USES.get(key);
    if (use == null) {
      if (!Files.isDirectory(key)) {
        return false;
      }
      FileChannel channel = null;
      try {
        channel = FileChannel.open(key.resolve(LOCK_FILE), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.READ);
        // Blocks only while another JVM deletes the folder (a few file deletions).
        FileLock lock = channel.lock(0, Long.MAX_VALUE, true);
        use = new Use(channel, lock);
      } catch (IOException | OverlappingFileLockException e) {
        closeQuietly(channel);
        return false;
      }
      if (!Files.isRegularFile(key.resolve(COMPLETE_FILE))) {
        closeQuietly(use.channel);
        return false;
      }
      USES.put(key, use);
    }
    use.count++;
    return true;
  }

  /** Gives a use back; the shared lock goes with the last one of this JVM. */
  static synchronized void release(Path folder) {
    Path key = folder.toAbsolutePath().normalize();
    Use use = USES.get(key);
    if (use == null) {
      return;
    }
    if (--use.count == 0) {
      USES.remove(key);
      closeQuietly(use.channel);
    }
  }

  /** Uses of {@code folder} in this JVM, for tests. */
  static synchronized int uses(Path folder) {
    Use use = USES.get(folder.toAbsolutePath().normalize());
    return use == null ? 0 : use.count;
  }

  /**
   * Deletes {@code folder} if no cache of this JVM and no other JVM uses it.
   *
   * @return whether it was deleted (or was gone)
   */
  static synchronized boolean deleteIfUnused(Path folder) {
    Path key = folder.toAbsolutePath().normalize();
    if (USES.containsKey(key)) {
      return false;
    }
    if (!Files.isDirectory(key)) {
      return true;
    }
    try (FileChannel channel = FileChannel.open(key.resolve(LOCK_FILE), StandardOpenOption.CREATE,
        StandardOpenOption.WRITE, StandardOpenOption.READ)) {
      FileLock lock;
      try {
        lock = channel.tryLock(0, Long.MAX_VALUE, false);
      } catch (OverlappingFileLockException e) {
        return false;
      }
      if (lock == null) {
        return false;  // another executor JVM uses it: it deletes it when done
      }
      try {
        // The marker first: a JVM that locks after this sees the folder as not there.
        Files.deleteIfExists(key.resolve(COMPLETE_FILE));
        deleteTree(key);
      } finally {
        lock.release();
      }
      return true;
    } catch (IOException | RuntimeException e) {
      LOG.warn("Cannot delete the local copy {}", key, e);
      return false;
    }
  }

  /** Deletes a folder nobody else can know of yet (a copy that failed before it was recorded). */
  static void deleteTree(Path folder) {
    if (!Files.exists(folder)) {
      return;
    }
    try (Stream<Path> files = Files.walk(folder)) {
      files.sorted(Comparator.reverseOrder()).forEach(ModelFiles::deleteQuietly);
    } catch (IOException | RuntimeException e) {
      LOG.warn("Cannot delete the local copy {}", folder, e);
    }
  }

  private static void closeQuietly(FileChannel channel) {
    if (channel != null) {
      try {
        channel.close();  // releases its lock
      } catch (IOException e) {
        LOG.warn("Cannot close a cache lock file", e);
      }
    }
  }
}

package io.github.sparkinfer.device;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.Set;

/**
 * Folders and files of the model cache that only the executor's user may read: folders 0700,
 * files 0600 (where the file system has POSIX permissions). A cache folder another user owns is
 * refused, and one of ours with looser permissions is tightened.
 */
final class PrivateFiles {
  private static final boolean POSIX = FileSystems.getDefault().supportedFileAttributeViews().contains("posix");
  private static final Set<PosixFilePermission> FOLDER = PosixFilePermissions.fromString("rwx------");
  private static final Set<PosixFilePermission> FILE = PosixFilePermissions.fromString("rw-------");

  private PrivateFiles() {}

  /** Creates {@code folder} (and its missing parents) for this user alone, or checks and tightens it. */
  static void createFolder(Path folder) throws IOException {
    if (!POSIX) {
      Files.createDirectories(folder);
      return;
    }
    if (!Files.exists(folder)) {
      Path parent = folder.toAbsolutePath().getParent();
      if (parent != null && !Files.exists(parent)) {
        Files.createDirectories(parent);
      }
      try {
        Files.createDirectory(folder, PosixFilePermissions.asFileAttribute(FOLDER));
      } catch (java.nio.file.FileAlreadyExistsException e) {
        // Another executor made it first: checked below.
      }
    }
    UserPrincipal owner = Files.getOwner(folder);
    UserPrincipal self = folder.getFileSystem().getUserPrincipalLookupService()
        .lookupPrincipalByName(System.getProperty("user.name"));
    if (!owner.equals(self)) {
      throw new IOException("the cache folder " + folder + " belongs to " + owner.getName() + ", not to "
          + self.getName() + ": another user's cache must not be used. Set " + SchedulingProperties.CACHE_DIRECTORY
          + " to a folder of this user's");
    }
    if (!Files.getPosixFilePermissions(folder).equals(FOLDER)) {
      Files.setPosixFilePermissions(folder, FOLDER);
    }
  }

  /** A new file that only this user may read and write. */
  static OutputStream newFile(Path file) throws IOException {
    if (POSIX) {
      Files.createFile(file, PosixFilePermissions.asFileAttribute(FILE));
      return Files.newOutputStream(file, StandardOpenOption.WRITE);
    }
    return Files.newOutputStream(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
  }
}

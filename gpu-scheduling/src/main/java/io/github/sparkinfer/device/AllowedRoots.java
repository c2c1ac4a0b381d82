package io.github.sparkinfer.device;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Where model and tokenizer files may come from: {@link SchedulingProperties#MODEL_ALLOWED_ROOTS},
 * a static setting of the application (read from the executor's and the driver's SparkConf, so a
 * SQL SET cannot widen it). A URI is normalized first (".." resolved; a local file's symlinks
 * resolved to the file they reach), then it must lie under one of the roots: the same scheme and
 * authority, and a path inside the root's folder.
 *
 * <p>Unset, any storage URI is allowed (file:, hdfs:, s3a:, abfs:, gs:, ...), as a single-user job
 * reads what its own user may read anyway, except:
 * <ul>
 *   <li>URL schemes ({@code http, https, ftp, sftp, webhdfs, swebhdfs, hftp, hsftp}): they make
 *       the driver and executors fetch from any host (server-side request forgery);
 *   <li>wrapper schemes, whose file system reads another URI than the one checked here, so that a
 *       check of this URI says nothing about the file really read: {@code har} (Hadoop archives:
 *       {@code har://<scheme>-<host>:<port>/...} reads through the file system of that embedded
 *       scheme and host, http included), {@code viewfs} (a mount table in the configuration maps
 *       each path to any other URI) and {@code nfly} (viewfs's replicating link, over several URIs);
 *   <li>the operating system's /proc, /sys and /dev.
 * </ul>
 * A root that names one of these schemes explicitly allows it. Models are read with the
 * application's Hadoop configuration (never a session's SQL SET), so the mount tables, endpoints
 * and {@code fs.<scheme>.impl} classes behind each scheme are the administrator's. Shared servers
 * set the roots. Immutable.
 */
public final class AllowedRoots {
  private static final Set<String> URL_SCHEMES =
      Set.of("http", "https", "ftp", "sftp", "webhdfs", "swebhdfs", "hftp", "hsftp");
  // File systems that read through another URI than the one checked (see the class comment).
  private static final Set<String> WRAPPER_SCHEMES = Set.of("har", "viewfs", "nfly");
  // Process and device files (a process's environment, say), never models: refused even without roots.
  private static final List<String> SYSTEM_FOLDERS = List.of("/proc/", "/sys/", "/dev/");

  private final List<URI> roots;
  private final String invalid;

  private AllowedRoots(List<URI> roots, String invalid) {
    this.roots = List.copyOf(roots);
    this.invalid = invalid;
  }

  /**
   * The roots of {@code setting}, or, when it cannot be read, roots that refuse every URI with that
   * reason: a bad value must neither stop a JVM nor open every file.
   */
  public static AllowedRoots parseOrRefuseAll(String setting) {
    try {
      return parse(setting);
    } catch (IllegalArgumentException e) {
      return new AllowedRoots(List.of(), e.getMessage());
    }
  }

  /** No roots set: any storage URI, no URL scheme. */
  public static AllowedRoots unrestricted() {
    return new AllowedRoots(List.of(), null);
  }

  /**
   * The roots of a comma-separated setting such as {@code hdfs://nn/models/,file:/opt/models/}; blank
   * means {@link #unrestricted()}.
   *
   * @throws IllegalArgumentException for a root that is not an absolute URI with a path
   */
  public static AllowedRoots parse(String setting) {
    if (setting == null || setting.isBlank()) {
      return unrestricted();
    }
    List<URI> roots = new ArrayList<>();
    for (String part : setting.split(",")) {
      String text = part.trim();
      if (text.isEmpty()) {
        continue;
      }
      URI root;
      try {
        root = normalize(URI.create(text));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("Invalid root '" + text + "' in " + SchedulingProperties.MODEL_ALLOWED_ROOTS
            + ": " + e.getMessage() + ". Give absolute URIs of folders, such as hdfs://nn/models/ or file:/opt/models/", e);
      }
      if (root.getScheme() == null || root.getPath() == null || !root.getPath().startsWith("/")) {
        throw new IllegalArgumentException("Invalid root '" + text + "' in " + SchedulingProperties.MODEL_ALLOWED_ROOTS
            + ": not an absolute URI with a scheme and a path. Give folders such as hdfs://nn/models/ or file:/opt/models/");
      }
      roots.add(root);
    }
    return new AllowedRoots(roots, null);
  }

  /** Whether roots are set. */
  public boolean isRestricted() {
    return !roots.isEmpty() || invalid != null;
  }

  /**
   * Refuses {@code uri} (a file of {@code source}) unless it is allowed.
   *
   * @throws ModelLoadException naming the model, the URI, the roots and the setting to change
   */
  void check(ModelSource source, String uri) {
    if (invalid != null) {
      throw refused(source, uri, "no file may be loaded while " + SchedulingProperties.MODEL_ALLOWED_ROOTS
          + " cannot be read: " + invalid);
    }
    URI normalized;
    try {
      // Parsed as the file system lookup parses it (Hadoop's Path), so both see the same file.
      URI parsed = new org.apache.hadoop.fs.Path(uri).toUri();
      normalized = normalize(parsed.getScheme() == null ? Paths.get(parsed.getPath()).toAbsolutePath().toUri() : parsed);
    } catch (IllegalArgumentException e) {
      if (roots.isEmpty()) {
        return;  // the file system lookup words the error
      }
      throw refused(source, uri, "it is not a valid URI (" + e.getMessage() + ")");
    }
    String path = normalized.getPath();
    if (path != null && (path.equals("/..") || path.startsWith("/../"))) {
      throw refused(source, uri, "its path leaves the root of its file system");
    }
    if (roots.isEmpty()) {
      String scheme = normalized.getScheme() == null ? "file" : normalized.getScheme().toLowerCase(Locale.ROOT);
      if (URL_SCHEMES.contains(scheme) || WRAPPER_SCHEMES.contains(scheme)) {
        throw ModelLoadException.of(source, "the scheme " + scheme + ": is refused unless "
            + SchedulingProperties.MODEL_ALLOWED_ROOTS + " allows it (" + (URL_SCHEMES.contains(scheme)
                ? "it would make Spark fetch from any host" : "it reads through another file system or host than"
                + " its URI shows") + ")",
            "Register the file's own storage URI (hdfs:, s3a:, file:), or have the application set "
                + SchedulingProperties.MODEL_ALLOWED_ROOTS + " to include " + schemeAndAuthority(normalized) + "/...", null);
      }
      if (scheme.equals("file") && path != null && SYSTEM_FOLDERS.stream().anyMatch(path::startsWith)) {
        throw ModelLoadException.of(source, "it is a file of the operating system (" + path + "), not a model",
            source.registrationFix("Register the model's own file"), null);
      }
      return;
    }
    for (URI root : roots) {
      if (within(normalized, root)) {
        return;
      }
    }
    throw refused(source, uri, "it is outside the allowed roots " + roots + " (" + SchedulingProperties.MODEL_ALLOWED_ROOTS
        + (normalized.toString().equals(uri) ? "" : "; normalized: " + normalized) + ")");
  }

  private ModelLoadException refused(ModelSource source, String uri, String why) {
    return ModelLoadException.of(source, why,
        "Put the model under one of the allowed roots, or have the application's administrator add its folder to "
            + SchedulingProperties.MODEL_ALLOWED_ROOTS + " (a static setting: spark-submit --conf or"
            + " spark-defaults.conf; a SQL SET cannot change it)", null);
  }

  private static boolean within(URI candidate, URI root) {
    if (!equalsIgnoreCase(candidate.getScheme(), root.getScheme())
        || !equalsIgnoreCase(candidate.getAuthority(), root.getAuthority())) {
      return false;
    }
    String folder = root.getPath().endsWith("/") ? root.getPath() : root.getPath() + "/";
    return candidate.getPath() != null && (candidate.getPath() + "/").startsWith(folder);
  }

  /** ".." and "." resolved; a local file's symlinks resolved to where they lead, when it exists. */
  private static URI normalize(URI uri) {
    URI normalized = uri.normalize();
    if ("file".equalsIgnoreCase(normalized.getScheme()) && normalized.getPath() != null) {
      try {
        java.nio.file.Path local = Paths.get(normalized.getPath());
        if (Files.exists(local)) {
          String real = local.toRealPath().toString();
          boolean folder = normalized.getPath().endsWith("/") && !real.endsWith("/");
          return new URI("file", null, folder ? real + "/" : real, null);
        }
      } catch (IOException | java.net.URISyntaxException | RuntimeException e) {
        // Left as given: the check then compares the normalized text.
      }
    }
    return normalized;
  }

  private static boolean equalsIgnoreCase(String a, String b) {
    return a == null ? b == null : a.equalsIgnoreCase(b);
  }

  private static String schemeAndAuthority(URI uri) {
    return uri.getScheme() + "://" + (uri.getAuthority() == null ? "" : uri.getAuthority());
  }

  @Override
  public String toString() {
    return roots.isEmpty() ? "any storage URI" : roots.toString();
  }
}

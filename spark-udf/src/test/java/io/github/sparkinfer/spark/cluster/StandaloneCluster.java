package io.github.sparkinfer.spark.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * A real Spark standalone cluster for tests: one Master and N Workers, each a separate JVM bound to
 * 127.0.0.1, started from the test's own class path, with fake GPU addresses per Worker.
 *
 * <p>The cluster gets a SPARK_HOME folder whose {@code jars/} holds the test class path: links to
 * its jars, and a jar built from each of its directories (target/classes, target/test-classes), so
 * executors load sparkinfer's and the tests' classes. Every JVM it starts, executors included (the
 * Worker launches them with {@code -cp $SPARK_HOME/conf:$SPARK_HOME/jars/*}), has a short command
 * line: ONNX Runtime 1.29 crashes a JVM whose command line is over about 4 KB when it creates its
 * environment.
 *
 * <p>Applications run as real spark-submit drivers in client mode, in their own JVM ({@link
 * #submit}): a JVM has one SparkContext, and the test JVM may already hold a local one.
 *
 * <p>Ports are chosen by the JVMs themselves (port 0) and read from their logs, so two clusters (or
 * two builds) never race for a port. Everything lives under {@code target/standalone-cluster/<name>-
 * <time>-<id>/}: the Master's, Workers' and drivers' logs, each Worker's work folder (executor logs
 * under {@code worker-<i>/work/<app>/<executor>/stderr}) and local folder. {@link #close()} stops the
 * drivers, Workers, executors and the Master by their process ids.
 *
 * <pre>{@code
 * try (StandaloneCluster cluster = StandaloneCluster.builder("bindings")
 *     .worker(2, "2g", "0", "1")
 *     .worker(2, "2g", "0", "1")
 *     .start()) {
 *   StandaloneCluster.Submission app =
 *       cluster.submit("predict", MyApp.class, Map.of("spark.executor.cores", "1"), List.of("out.txt"));
 * }
 * }</pre>
 */
public final class StandaloneCluster implements AutoCloseable {
  /** The resource name of the fake GPUs. */
  public static final String GPU = "gpu";

  private static final String SCALA_VERSION = "2.13";
  private static final String MASTER_CLASS = "org.apache.spark.deploy.master.Master";
  private static final String WORKER_CLASS = "org.apache.spark.deploy.worker.Worker";
  private static final String SUBMIT_CLASS = "org.apache.spark.deploy.SparkSubmit";
  // ORT 1.29 crashes creating its environment when the JVM's command line is longer (about 4 KB).
  private static final int MAX_COMMAND_LINE = 3500;
  private static final Duration POLL_INTERVAL = Duration.ofMillis(200);
  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(15);

  // Spark on JDK 17, when the JVM running the tests has none of its own (run from an IDE, say).
  private static final List<String> DEFAULT_JVM_OPENS =
      List.of(
          "--add-opens=java.base/java.lang=ALL-UNNAMED",
          "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
          "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
          "--add-opens=java.base/java.io=ALL-UNNAMED",
          "--add-opens=java.base/java.net=ALL-UNNAMED",
          "--add-opens=java.base/java.nio=ALL-UNNAMED",
          "--add-opens=java.base/java.util=ALL-UNNAMED",
          "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
          "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
          "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
          "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
          "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
          "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
          "-Djdk.reflect.useDirectMethodHandle=false",
          "-Dio.netty.tryReflectionSetAccessible=true");

  // Short-lived JVMs: C1 only and the serial collector start faster on a small machine.
  private static final List<String> FAST_START = List.of("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC");

  private static final Pattern MASTER_URL = Pattern.compile("Starting Spark master at (spark://\\S+)");
  private static final Pattern MASTER_UI_PORT =
      Pattern.compile("Successfully started service 'MasterUI' on port (\\d+)");
  private static final Pattern WORKER_PORT = Pattern.compile("Starting Spark worker [^:\\s]+:(\\d+) ");
  private static final Pattern WORKER_REGISTERED = Pattern.compile("Successfully registered with master");

  private static final ObjectMapper JSON = new ObjectMapper();

  private final String name;
  private final Path directory;
  private final Path sparkHome;
  private final Path log4jConfiguration;
  private final List<String> jvmOpens;
  private final List<WorkerSpec> workerSpecs;
  private final Duration startTimeout;
  private final HttpClient http =
      HttpClient.newBuilder()
          .connectTimeout(Duration.ofSeconds(2))
          .followRedirects(HttpClient.Redirect.NEVER)
          .build();
  // Every JVM started, in start order; stopped in reverse.
  private final List<Process> processes = new ArrayList<>();
  private final List<Worker> workers = new ArrayList<>();
  private final Thread shutdownHook;
  private final boolean sparkJarsOnly;
  private Process master;
  private String masterUrl;
  private int masterUiPort;
  private boolean closed;

  private StandaloneCluster(Builder builder) throws IOException {
    this.name = builder.name;
    this.workerSpecs = List.copyOf(builder.workers);
    this.startTimeout = builder.startTimeout;
    this.sparkJarsOnly = builder.sparkJarsOnly;
    String stamp = LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
    Path root = builder.root != null ? builder.root : defaultRoot();
    this.directory =
        Files.createDirectories(
            root.resolve(name + "-" + stamp + "-" + UUID.randomUUID().toString().substring(0, 8)))
            .toAbsolutePath();
    this.sparkHome = directory.resolve("spark-home");
    this.log4jConfiguration = sparkHome.resolve("conf").resolve("log4j2.properties");
    this.jvmOpens = jvmOpens();
    this.shutdownHook = new Thread(this::stopProcesses, "standalone-cluster-" + name + "-shutdown");
  }

  public static Builder builder(String name) {
    return new Builder(name);
  }

  /** The Master's URL, {@code spark://127.0.0.1:<port>}. */
  public String masterUrl() {
    return masterUrl;
  }

  /** The Master's web UI, whose {@code /json/} the cluster polls. */
  public URI masterWebUi() {
    return URI.create("http://127.0.0.1:" + masterUiPort);
  }

  /** This cluster's folder: logs, work folders, SPARK_HOME. */
  public Path directory() {
    return directory;
  }

  public Path sparkHome() {
    return sparkHome;
  }

  public List<Worker> workers() {
    return List.copyOf(workers);
  }

  /** The Master's state, as its web UI's {@code /json/} shows it. */
  public JsonNode masterState() {
    return getJson(masterWebUi().resolve("/json/"));
  }

  /** A Worker's state, as its web UI's {@code /json/} shows it: executors, finished ones too. */
  public JsonNode workerState(Worker worker) {
    return getJson(worker.webUi().resolve("/json/"));
  }

  /**
   * The executors the Workers launched for {@code applicationId}, running or finished, with the
   * resource addresses each Worker assigned them: the cluster's own record, to check what tasks
   * were given against.
   */
  public List<ExecutorRecord> executors(String applicationId) {
    List<ExecutorRecord> records = new ArrayList<>();
    for (Worker worker : workers) {
      JsonNode state = workerState(worker);
      for (String field : List.of("executors", "finishedexecutors")) {
        for (JsonNode executor : state.path(field)) {
          if (!applicationId.equals(executor.path("appid").asText())) {
            continue;
          }
          Map<String, List<String>> resources = new LinkedHashMap<>();
          executor
              .path("resources")
              .properties()
              .forEach(
                  entry -> {
                    List<String> addresses = new ArrayList<>();
                    entry.getValue().path("addresses").forEach(a -> addresses.add(a.asText()));
                    resources.put(entry.getKey(), List.copyOf(addresses));
                  });
          records.add(
              new ExecutorRecord(
                  worker, executor.path("id").asText(), executor.path("memory").asInt(), resources));
        }
      }
    }
    return records;
  }

  /**
   * The settings an application on this cluster needs: master, spark.driver.host and bindAddress
   * 127.0.0.1, no UI, spark.executorEnv.SPARK_SCALA_VERSION, local and warehouse folders under
   * {@code app-<appName>/} of this cluster's folder, fast-starting executor JVMs. {@link #submit}
   * uses them; a driver in the calling JVM can too, if that JVM has no SparkContext yet (executors
   * load the application's classes from SPARK_HOME/jars, nothing needs shipping).
   */
  public Map<String, String> applicationConf(String appName) throws IOException {
    Path appDirectory = Files.createDirectories(directory.resolve("app-" + appName));
    Map<String, String> settings = new LinkedHashMap<>();
    settings.put("spark.master", masterUrl);
    settings.put("spark.app.name", appName);
    settings.put("spark.submit.deployMode", "client");
    settings.put("spark.driver.host", "127.0.0.1");
    settings.put("spark.driver.bindAddress", "127.0.0.1");
    settings.put("spark.ui.enabled", "false");
    settings.put("spark.executorEnv.SPARK_SCALA_VERSION", SCALA_VERSION);
    settings.put("spark.local.dir", Files.createDirectories(appDirectory.resolve("local")).toString());
    settings.put("spark.sql.warehouse.dir", appDirectory.resolve("warehouse").toUri().toString());
    settings.put("spark.executor.extraJavaOptions", String.join(" ", FAST_START));
    return settings;
  }

  /**
   * Runs {@code mainClass} as a Spark application on this cluster through spark-submit in client
   * mode, in a JVM of its own, and waits for it to end.
   *
   * @param appName names the application and its log, {@code driver-<appName>.log}
   * @param conf Spark settings of the application, over {@link #applicationConf}
   * @param args the arguments of {@code mainClass}
   * @param timeout how long it may run; it is killed after that
   */
  public Submission submit(
      String appName, Class<?> mainClass, Map<String, String> conf, List<String> args, Duration timeout)
      throws IOException, InterruptedException {
    // Its classes are in SPARK_HOME/jars already: nothing to ship.
    return run(appName, conf, List.of("--class", mainClass.getName(), "spark-internal"), args, timeout);
  }

  /**
   * Runs {@code applicationJar}'s {@code mainClass} through spark-submit as a user would: {@code
   * --jars} ships {@code jars} to the driver and executors, {@code --class} names the main class.
   */
  public Submission submitJar(
      String appName, Path applicationJar, String mainClass, List<Path> jars, Map<String, String> conf,
      List<String> args, Duration timeout) throws IOException, InterruptedException {
    List<String> submit = new ArrayList<>();
    if (!jars.isEmpty()) {
      submit.add("--jars");
      submit.add(jars.stream().map(Path::toString).collect(Collectors.joining(",")));
    }
    submit.addAll(List.of("--class", mainClass, applicationJar.toString()));
    return run(appName, conf, submit, args, timeout);
  }

  private Submission run(
      String appName, Map<String, String> conf, List<String> submitArguments, List<String> args, Duration timeout)
      throws IOException, InterruptedException {
    checkRunning();
    Path appDirectory = Files.createDirectories(directory.resolve("app-" + appName));
    Map<String, String> settings = applicationConf(appName);
    settings.putAll(conf);
    Properties properties = new Properties();
    properties.putAll(settings);
    Path propertiesFile = appDirectory.resolve("spark.properties");
    try (OutputStream out = Files.newOutputStream(propertiesFile)) {
      properties.store(out, "spark-submit --properties-file for " + appName);
    }

    List<String> command = new ArrayList<>(javaCommand("-Xmx1g"));
    command.add(SUBMIT_CLASS);
    command.addAll(
        List.of(
            "--master", masterUrl,
            "--deploy-mode", "client",
            "--properties-file", propertiesFile.toString()));
    command.addAll(submitArguments);
    command.addAll(args);
    Path log = directory.resolve("driver-" + appName + ".log");
    Process driver = start(command, environment(appDirectory.resolve("local")), log, appDirectory);
    long start = System.nanoTime();
    boolean ended = driver.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
    if (!ended) {
      stop(List.of(driver));
    }
    Duration took = Duration.ofNanos(System.nanoTime() - start);
    return new Submission(appName, ended ? driver.exitValue() : -1, !ended, took, log);
  }

  /** The last {@code lines} lines of a log, for failure messages. */
  public static String tail(Path log, int lines) {
    try {
      if (!Files.exists(log)) {
        return "(no " + log + ")";
      }
      List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    } catch (IOException | UncheckedIOException e) {
      return "(cannot read " + log + ": " + e + ")";
    }
  }

  /** Stops every JVM this cluster started: drivers, Workers with their executors, the Master. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    stopProcesses();
    try {
      Runtime.getRuntime().removeShutdownHook(shutdownHook);
    } catch (IllegalStateException alreadyShuttingDown) {
      // The hook runs or ran.
    }
  }

  @Override
  public String toString() {
    return "StandaloneCluster(" + name + ", " + masterUrl + ", " + workers.size() + " workers, " + directory + ")";
  }

  private StandaloneCluster startAll() throws IOException, InterruptedException {
    Runtime.getRuntime().addShutdownHook(shutdownHook);
    try {
      buildSparkHome();
      startMaster();
      for (int i = 0; i < workerSpecs.size(); i++) {
        startWorker(i, workerSpecs.get(i));
      }
      awaitWorkers();
      return this;
    } catch (IOException | InterruptedException | RuntimeException | Error e) {
      close();
      throw e;
    }
  }

  private void startMaster() throws IOException, InterruptedException {
    Path log = directory.resolve("master.log");
    List<String> command = new ArrayList<>(javaCommand("-Xmx256m"));
    command.add("-Dspark.master.rest.enabled=false");
    command.add(MASTER_CLASS);
    command.addAll(List.of("--host", "127.0.0.1", "--port", "0", "--webui-port", "0"));
    master = start(command, environment(directory.resolve("master-local")), log, directory);
    Deadline deadline = new Deadline(startTimeout);
    while (masterUrl == null || masterUiPort == 0) {
      String text = read(log);
      Matcher url = MASTER_URL.matcher(text);
      Matcher port = MASTER_UI_PORT.matcher(text);
      if (url.find() && port.find()) {
        masterUrl = url.group(1);
        masterUiPort = Integer.parseInt(port.group(1));
      } else {
        deadline.await(master, "the Master to start", log);
      }
    }
  }

  private void startWorker(int index, WorkerSpec spec) throws IOException {
    Path home = Files.createDirectories(directory.resolve("worker-" + index));
    Path work = Files.createDirectories(home.resolve("work"));
    Path local = Files.createDirectories(home.resolve("local"));
    List<String> command = new ArrayList<>(javaCommand("-Xmx256m"));
    if (!spec.gpus().isEmpty()) {
      Path resources = home.resolve("resources.json");
      String addresses =
          spec.gpus().stream().map(a -> "\"" + a + "\"").collect(Collectors.joining(","));
      Files.writeString(
          resources,
          "[{\"id\":{\"componentName\":\"spark.worker\",\"resourceName\":\""
              + GPU
              + "\"},\"addresses\":["
              + addresses
              + "]}]");
      command.add("-Dspark.worker.resource." + GPU + ".amount=" + spec.gpus().size());
      command.add("-Dspark.worker.resourcesFile=" + resources);
    }
    command.add(WORKER_CLASS);
    command.addAll(
        List.of(
            "--host", "127.0.0.1",
            "--port", "0",
            "--webui-port", "0",
            "--cores", Integer.toString(spec.cores()),
            "--memory", spec.memory(),
            "--work-dir", work.toString(),
            masterUrl));
    Path log = directory.resolve("worker-" + index + ".log");
    Process process = start(command, environment(local), log, home);
    workers.add(new Worker(index, spec, process, log, work));
  }

  /** Waits until every Worker said it registered and the Master shows them all ALIVE. */
  private void awaitWorkers() throws InterruptedException {
    Deadline deadline = new Deadline(startTimeout);
    for (Worker worker : workers) {
      while (true) {
        String text = read(worker.log);
        Matcher port = WORKER_PORT.matcher(text);
        if (port.find() && WORKER_REGISTERED.matcher(text).find()) {
          worker.port = Integer.parseInt(port.group(1));
          break;
        }
        deadline.await(worker.process, "Worker " + worker.index + " to register", worker.log);
        deadline.check(master, "Master", directory.resolve("master.log"));
      }
    }
    while (true) {
      JsonNode state = masterState();
      int matched = 0;
      for (Worker worker : workers) {
        for (JsonNode node : state.path("workers")) {
          if (node.path("port").asInt() == worker.port && "ALIVE".equals(node.path("state").asText())) {
            worker.id = node.path("id").asText();
            worker.webUiPort = URI.create(node.path("webuiaddress").asText()).getPort();
            matched++;
          }
        }
      }
      if (matched == workers.size()) {
        return;
      }
      deadline.await(master, "the Master to show " + workers.size() + " ALIVE workers: " + state,
          directory.resolve("master.log"));
    }
  }

  private JsonNode getJson(URI uri) {
    try {
      HttpResponse<String> response =
          http.send(
              HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10)).GET().build(),
              HttpResponse.BodyHandlers.ofString());
      if (response.statusCode() != 200) {
        throw new IllegalStateException("GET " + uri + " answered " + response.statusCode());
      }
      return JSON.readTree(response.body());
    } catch (IOException e) {
      throw new UncheckedIOException("GET " + uri + " failed", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("Interrupted during GET " + uri, e);
    }
  }

  /** java, heap, fast start, the Spark opens, logging, and the SPARK_HOME class path. */
  private List<String> javaCommand(String heap) {
    List<String> command = new ArrayList<>();
    command.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
    command.add(heap);
    command.addAll(FAST_START);
    command.addAll(jvmOpens);
    command.add("-Dlog4j2.configurationFile=" + log4jConfiguration.toUri());
    command.add("-cp");
    command.add(sparkHome.resolve("conf") + java.io.File.pathSeparator + sparkHome.resolve("jars") + "/*");
    return command;
  }

  private Map<String, String> environment(Path localDirectory) {
    Map<String, String> environment = new LinkedHashMap<>();
    environment.put("SPARK_HOME", sparkHome.toString());
    environment.put("SPARK_CONF_DIR", sparkHome.resolve("conf").toString());
    environment.put("SPARK_SCALA_VERSION", SCALA_VERSION);
    environment.put("SPARK_LOCAL_IP", "127.0.0.1");
    environment.put("SPARK_LOCAL_DIRS", localDirectory.toString());
    environment.put("JAVA_HOME", System.getProperty("java.home"));
    return environment;
  }

  private synchronized Process start(List<String> command, Map<String, String> environment, Path log, Path workingDirectory)
      throws IOException {
    checkRunning();
    String line = String.join(" ", command);
    if (line.length() > MAX_COMMAND_LINE) {
      throw new IllegalStateException(
          "The command line would be "
              + line.length()
              + " characters, over "
              + MAX_COMMAND_LINE
              + " (ONNX Runtime 1.29 crashes JVMs with long command lines): "
              + line);
    }
    Files.createDirectories(workingDirectory);
    ProcessBuilder builder =
        new ProcessBuilder(command)
            .directory(workingDirectory.toFile())
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
    Map<String, String> env = builder.environment();
    // Settings of a Spark installation or build that would change what the JVMs load.
    for (String key :
        List.of(
            "CLASSPATH",
            "SPARK_DIST_CLASSPATH",
            "SPARK_PREPEND_CLASSES",
            "SPARK_TESTING",
            "SPARK_MASTER_OPTS",
            "SPARK_WORKER_OPTS",
            "SPARK_DAEMON_JAVA_OPTS",
            "SPARK_SUBMIT_OPTS",
            "HADOOP_CONF_DIR",
            "YARN_CONF_DIR",
            "_JAVA_OPTIONS",
            "JAVA_TOOL_OPTIONS",
            "JDK_JAVA_OPTIONS")) {
      env.remove(key);
    }
    env.putAll(environment);
    Files.writeString(log, "$ " + line + "\n", StandardCharsets.UTF_8);
    Process process = builder.start();
    processes.add(process);
    return process;
  }

  private synchronized void stopProcesses() {
    List<Process> reversed = new ArrayList<>(processes);
    java.util.Collections.reverse(reversed);
    stop(reversed);
  }

  /**
   * Asks each process and its descendants (a Worker's executors) to stop, waits, then kills what
   * is left.
   */
  private static void stop(List<Process> targets) {
    List<ProcessHandle> handles = new ArrayList<>();
    for (Process process : targets) {
      // Taken before the parent goes, which orphans its children.
      process.descendants().forEach(handles::add);
      handles.add(process.toHandle());
    }
    for (Process process : targets) {
      process.destroy();
    }
    Deadline deadline = new Deadline(STOP_TIMEOUT);
    for (ProcessHandle handle : handles) {
      try {
        handle.onExit().get(Math.max(deadline.remainingMillis(), 1), TimeUnit.MILLISECONDS);
      } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
        handle.destroyForcibly();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        handle.destroyForcibly();
      }
    }
    for (ProcessHandle handle : handles) {
      if (handle.isAlive()) {
        handle.destroyForcibly();
        handle.onExit().orTimeout(5, TimeUnit.SECONDS).exceptionally(e -> null).join();
      }
    }
  }

  private void checkRunning() {
    if (closed) {
      throw new IllegalStateException(this + " is closed");
    }
  }

  /** A SPARK_HOME whose jars/ is the test class path, and conf/ holds the logging settings. */
  private void buildSparkHome() throws IOException {
    Path jars = Files.createDirectories(sparkHome.resolve("jars"));
    Path conf = Files.createDirectories(sparkHome.resolve("conf"));
    Files.writeString(
        log4jConfiguration,
        String.join(
            "\n",
            "rootLogger.level = info",
            "rootLogger.appenderRef.stderr.ref = console",
            "appender.console.type = Console",
            "appender.console.name = console",
            "appender.console.target = SYSTEM_ERR",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = %d{HH:mm:ss.SSS} %p %c{1}: %m%n%ex",
            "logger.jetty.name = org.sparkproject.jetty",
            "logger.jetty.level = warn",
            ""));
    Set<String> names = new HashSet<>();
    int directories = 0;
    for (Path entry : testClassPath()) {
      if (sparkJarsOnly && !isSparkInstallationJar(entry)) {
        continue;
      }
      if (Files.isDirectory(entry)) {
        // target/classes -> <module>-classes.jar, target/test-classes -> <module>-test-classes.jar
        Path module = entry.getParent() == null ? null : entry.getParent().getParent();
        String base =
            "dir" + directories++ + "-" + (module == null ? "" : module.getFileName() + "-") + entry.getFileName();
        jarDirectory(entry, jars.resolve(unique(names, base + ".jar")));
      } else if (Files.isRegularFile(entry) && entry.getFileName().toString().endsWith(".jar")) {
        Path link = jars.resolve(unique(names, entry.getFileName().toString()));
        try {
          Files.createSymbolicLink(link, entry);
        } catch (UnsupportedOperationException | IOException e) {
          Files.copy(entry, link);
        }
      }
    }
    if (!names.stream().anyMatch(n -> n.startsWith("spark-core_"))) {
      throw new IllegalStateException("spark-core is not on the class path: " + testClassPath());
    }
  }

  /** Not a class folder, not sparkinfer or what it bundles, not a test library. */
  private static boolean isSparkInstallationJar(Path entry) {
    String file = entry.getFileName().toString();
    return Files.isRegularFile(entry)
        && !file.matches("(sparkinfer-|onnxruntime|tokenizers-|api-\\d|jna-|langchain4j|junit-|assertj-|opentest4j-"
            + "|apiguardian-|surefire|failsafe).*");
  }

  private static String unique(Set<String> names, String name) {
    String candidate = name;
    for (int i = 1; !names.add(candidate); i++) {
      candidate = i + "-" + name;
    }
    return candidate;
  }

  /**
   * The class path of the tests: surefire's (its JVM may see only a manifest-only booter jar),
   * else java.class.path, with manifest Class-Path entries of jars expanded.
   */
  static List<Path> testClassPath() {
    String classPath = System.getProperty("surefire.test.class.path");
    if (classPath == null || classPath.isBlank()) {
      classPath = System.getProperty("java.class.path");
    }
    List<Path> entries = new ArrayList<>();
    for (String part : classPath.split(java.io.File.pathSeparator)) {
      if (part.isBlank()) {
        continue;
      }
      Path path = Paths.get(part).toAbsolutePath().normalize();
      entries.add(path);
      if (path.getFileName().toString().startsWith("surefirebooter") && Files.isRegularFile(path)) {
        entries.addAll(manifestClassPath(path));
      }
    }
    return entries.stream().distinct().collect(Collectors.toList());
  }

  private static List<Path> manifestClassPath(Path jar) {
    try (java.util.jar.JarFile file = new java.util.jar.JarFile(jar.toFile())) {
      Manifest manifest = file.getManifest();
      String value = manifest == null ? null : manifest.getMainAttributes().getValue(Attributes.Name.CLASS_PATH);
      List<Path> entries = new ArrayList<>();
      if (value != null) {
        for (String url : value.trim().split("\\s+")) {
          entries.add(Paths.get(jar.getParent().toUri().resolve(url)));
        }
      }
      return entries;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void jarDirectory(Path directory, Path jar) throws IOException {
    Manifest manifest = new Manifest();
    manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
    try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar), manifest)) {
      out.setLevel(java.util.zip.Deflater.BEST_SPEED);
      Files.walkFileTree(
          directory,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
              if (!dir.equals(directory)) {
                out.putNextEntry(new JarEntry(entryName(directory, dir) + "/"));
                out.closeEntry();
              }
              return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
              String entry = entryName(directory, file);
              if (!entry.equalsIgnoreCase("META-INF/MANIFEST.MF")) {
                out.putNextEntry(new JarEntry(entry));
                try (InputStream in = Files.newInputStream(file)) {
                  in.transferTo(out);
                }
                out.closeEntry();
              }
              return FileVisitResult.CONTINUE;
            }
          });
    }
  }

  private static String entryName(Path root, Path file) {
    return root.relativize(file).toString().replace(java.io.File.separatorChar, '/');
  }

  /** The surefire JVM's --add-opens/--add-exports and Spark's -D switches, else a fixed list. */
  private static List<String> jvmOpens() {
    List<String> options = new ArrayList<>();
    List<String> arguments = ManagementFactory.getRuntimeMXBean().getInputArguments();
    for (int i = 0; i < arguments.size(); i++) {
      String argument = arguments.get(i);
      if (argument.startsWith("--add-opens=") || argument.startsWith("--add-exports=")) {
        options.add(argument);
      } else if ((argument.equals("--add-opens") || argument.equals("--add-exports")) && i + 1 < arguments.size()) {
        options.add(argument + "=" + arguments.get(++i));
      } else if (argument.startsWith("-Djdk.reflect.useDirectMethodHandle=")
          || argument.startsWith("-Dio.netty.tryReflectionSetAccessible=")) {
        options.add(argument);
      }
    }
    return options.stream().anyMatch(o -> o.startsWith("--add-opens")) ? options : DEFAULT_JVM_OPENS;
  }

  private static Path defaultRoot() {
    String basedir = System.getProperty("basedir");
    Path module = basedir != null ? Paths.get(basedir) : Paths.get("").toAbsolutePath();
    return module.resolve("target").resolve("standalone-cluster");
  }

  private static String read(Path log) {
    try {
      return Files.exists(log) ? Files.readString(log, StandardCharsets.ISO_8859_1) : "";
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** What a Worker offers: cores, memory (as in {@code --memory 2g}) and fake GPU addresses. */
  public record WorkerSpec(int cores, String memory, List<String> gpus) {
    public WorkerSpec {
      Objects.requireNonNull(memory, "memory");
      gpus = List.copyOf(gpus);
      if (cores < 1) {
        throw new IllegalArgumentException("cores must be at least 1: " + cores);
      }
    }
  }

  /** A started Worker. */
  public static final class Worker {
    private final int index;
    private final WorkerSpec spec;
    private final Process process;
    private final Path log;
    private final Path workDirectory;
    private volatile int port;
    private volatile int webUiPort;
    private volatile String id;

    private Worker(int index, WorkerSpec spec, Process process, Path log, Path workDirectory) {
      this.index = index;
      this.spec = spec;
      this.process = process;
      this.log = log;
      this.workDirectory = workDirectory;
    }

    public int index() {
      return index;
    }

    public WorkerSpec spec() {
      return spec;
    }

    /** The Master's id of this Worker, {@code worker-<time>-127.0.0.1-<port>}. */
    public String id() {
      return id;
    }

    public URI webUi() {
      return URI.create("http://127.0.0.1:" + webUiPort);
    }

    public Path log() {
      return log;
    }

    /** Where its executors' stdout and stderr are: {@code <app id>/<executor id>/stderr}. */
    public Path workDirectory() {
      return workDirectory;
    }

    public long pid() {
      return process.pid();
    }

    @Override
    public String toString() {
      return "Worker " + index + " (" + id + ", " + spec + ")";
    }
  }

  /** An executor as the Worker that launched it records it. */
  public record ExecutorRecord(Worker worker, String executorId, int memoryMb, Map<String, List<String>> resources) {
    /** The addresses of {@code resource} the Worker gave this executor; empty if none. */
    public List<String> addresses(String resource) {
      return resources.getOrDefault(resource, List.of());
    }
  }

  /** A spark-submit run that ended (or was killed at its timeout). */
  public record Submission(String appName, int exitCode, boolean timedOut, Duration took, Path log) {
    public boolean succeeded() {
      return !timedOut && exitCode == 0;
    }

    /** For assertion messages: how it ended and the end of its log. */
    public String describe() {
      return "driver '"
          + appName
          + "' "
          + (timedOut ? "timed out" : "exited with " + exitCode)
          + " after "
          + took.toMillis()
          + " ms; end of "
          + log
          + ":\n"
          + tail(log, 60);
    }
  }

  /** A deadline to poll against: no fixed sleeps beyond a short poll interval. */
  private static final class Deadline {
    private final long end;
    private final Duration timeout;

    Deadline(Duration timeout) {
      this.timeout = timeout;
      this.end = System.nanoTime() + timeout.toNanos();
    }

    long remainingMillis() {
      return TimeUnit.NANOSECONDS.toMillis(end - System.nanoTime());
    }

    /** Fails if {@code process} died. */
    void check(Process process, String what, Path log) {
      if (!process.isAlive()) {
        throw new IllegalStateException(
            what + " exited with " + process.exitValue() + "; end of " + log + ":\n" + tail(log, 40));
      }
    }

    /** Waits one poll interval for {@code what}, failing if the process died or time is up. */
    void await(Process process, String what, Path log) throws InterruptedException {
      if (!process.isAlive()) {
        throw new IllegalStateException(
            "Waiting for " + what + ", the process exited with " + process.exitValue() + "; end of " + log + ":\n"
                + tail(log, 40));
      }
      if (System.nanoTime() - end > 0) {
        throw new IllegalStateException(
            "Waited " + timeout.toSeconds() + " s for " + what + "; end of " + log + ":\n" + tail(log, 40));
      }
      // Returns early if the process ends: the next call reports it.
      process.waitFor(POLL_INTERVAL.toMillis(), TimeUnit.MILLISECONDS);
    }
  }

  /** Builds and starts a cluster. */
  public static final class Builder {
    private final String name;
    private final List<WorkerSpec> workers = new ArrayList<>();
    private Duration startTimeout = Duration.ofSeconds(90);
    private Path root;
    private boolean sparkJarsOnly;

    private Builder(String name) {
      if (!name.matches("[A-Za-z0-9._-]+")) {
        throw new IllegalArgumentException("A cluster name is letters, digits, '.', '_' or '-': " + name);
      }
      this.name = name;
    }

    /** A Worker with {@code cores}, {@code memory} ("2g") and these fake GPU addresses. */
    public Builder worker(int cores, String memory, String... gpuAddresses) {
      workers.add(new WorkerSpec(cores, memory, List.of(gpuAddresses)));
      return this;
    }

    /** How long the Master and the Workers may take to start and register. */
    public Builder startTimeout(Duration timeout) {
      this.startTimeout = Objects.requireNonNull(timeout);
      return this;
    }

    /** The folder the cluster's folder is made in; default {@code target/standalone-cluster}. */
    public Builder root(Path root) {
      this.root = root;
      return this;
    }

    /**
     * SPARK_HOME/jars holds Spark and its dependencies only, as a Spark installation does: no
     * sparkinfer, ONNX Runtime, tokenizer or test jars and no class folders, so an application gets
     * sparkinfer only from what it submits (--jars or its application jar).
     */
    public Builder sparkJarsOnly() {
      this.sparkJarsOnly = true;
      return this;
    }

    /** Starts the Master and the Workers and returns when the Master shows every Worker ALIVE. */
    public StandaloneCluster start() throws IOException, InterruptedException {
      if (workers.isEmpty()) {
        throw new IllegalStateException("A cluster needs at least one worker");
      }
      return new StandaloneCluster(this).startAll();
    }
  }
}

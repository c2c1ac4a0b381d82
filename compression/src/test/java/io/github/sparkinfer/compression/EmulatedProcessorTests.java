package io.github.sparkinfer.compression;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

/**
 * Main of the child JVM that {@link TestInt8OnProcessorWithoutVnni} starts on an emulated CPU:
 * runs the test classes named as arguments and exits 0 when all passed.
 */
public final class EmulatedProcessorTests {
  private EmulatedProcessorTests() {}

  public static void main(String[] classNames) throws Exception {
    System.out.println("int8 scheme for this CPU: " + Int8KernelProbe.result());
    LauncherDiscoveryRequestBuilder request = LauncherDiscoveryRequestBuilder.request();
    for (String className : classNames) {
      request.selectors(selectClass(Class.forName(className)));
    }
    LauncherDiscoveryRequest discovery = request.build();
    SummaryGeneratingListener listener = new SummaryGeneratingListener();
    Launcher launcher = LauncherFactory.create();
    launcher.execute(discovery, listener);
    TestExecutionSummary summary = listener.getSummary();
    PrintWriter out = new PrintWriter(System.out, true, StandardCharsets.UTF_8);
    summary.printTo(out);
    summary.printFailuresTo(out, 20);
    out.flush();
    System.exit(summary.getTotalFailureCount() == 0 && summary.getTestsSucceededCount() > 0 ? 0 : 1);
  }
}

package io.github.sparkinfer.notebooks;

import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import org.rapaio.jupyter.kernel.MainApp;
import org.rapaio.jupyter.kernel.channels.Channels;
import org.rapaio.jupyter.kernel.channels.IOPubChannel;
import org.rapaio.jupyter.kernel.core.ConnectionProperties;
import org.rapaio.jupyter.kernel.core.Transform;
import org.rapaio.jupyter.kernel.message.Message;
import org.rapaio.jupyter.kernel.message.MessageType;
import org.rapaio.jupyter.kernel.message.messages.IOPubStatus;

/**
 * Starts rapaio-jupyter-kernel 3.0.1 as its MainApp does, with two changes for its startup races
 * ("Kernel didn't respond in 60 seconds" for about one notebook in two on a 2-core machine):
 *
 * <ul>
 *   <li>The channels' handler map exists before the channels bind. The kernel binds its sockets, then
 *       builds JShell (seconds with Spark's class path), then creates that map; a request arriving in
 *       between threw a NullPointerException in the shell thread, which then never answered again.
 *       With an empty map the early request is ignored; Jupyter asks again every second.
 *   <li>An IOPub status until the first request is being handled. Jupyter accepts a kernel once a
 *       kernel_info reply came and IOPub delivered something; the kernel publishes only its
 *       "starting" status, once, right after binding, which a client that subscribed later misses
 *       (ZeroMQ drops messages for subscribers that are not connected yet), and publishes nothing
 *       for kernel_info. This thread publishes an idle status every 300 ms for the first 30 s.
 * </ul>
 */
public final class KernelLauncher {
  private KernelLauncher() {}

  public static void main(String[] args) throws Exception {
    java.util.logging.LogManager.getLogManager()
        .readConfiguration(MainApp.class.getClassLoader().getResourceAsStream("logging.properties"));
    String connection = Files.readString(Path.of(args[0]), StandardCharsets.UTF_8);
    Channels channels = new Channels(Transform.fromJson(connection, ConnectionProperties.class));
    Field handlers = Channels.class.getDeclaredField("handlers");
    handlers.setAccessible(true);
    handlers.set(channels, new HashMap<>());
    channels.connect(MainApp.kernel);
    Field iopubField = Channels.class.getDeclaredField("iopub");
    iopubField.setAccessible(true);
    IOPubChannel iopub = (IOPubChannel) iopubField.get(channels);
    // For the first 30 s, while Jupyter waits for the kernel. The channel's sendMessage is synchronized;
    // the statuses have no parent message, so a client waiting on a cell's status ignores them.
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      iopub.sendMessage(new Message<>(MessageType.IOPUB_STATUS, IOPubStatus.IDLE));
      Thread.sleep(300);
    }
    channels.joinUntilClose();
  }
}

package io.github.sparkinfer.benchmarks;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The GPU's power draw and utilization, sampled every 100 ms by
 * {@code nvidia-smi --query-gpu=power.draw,utilization.gpu -lms 100}
 * for the life of this object, and the CPU package energy from RAPL where the machine exposes it,
 * so a timed window's energy can be reported per 1,000 rows. Closing stops the sampler.
 */
final class PowerSampler implements AutoCloseable {
  private static final Path RAPL = Path.of("/sys/class/powercap/intel-rapl:0/energy_uj");

  private final Process process;
  private final List<long[]> samples = new ArrayList<>();  // {nanoTime, milliwatts, utilization %}
  private final Thread reader;

  PowerSampler() throws IOException {
    process = new ProcessBuilder("nvidia-smi", "--id=0", "--query-gpu=power.draw,utilization.gpu", "--format=csv,noheader,nounits",
        "-lms", "100").redirectErrorStream(true).start();
    reader = new Thread(() -> {
      try (BufferedReader lines = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line = lines.readLine(); line != null; line = lines.readLine()) {
          try {
            String[] fields = line.split(",");
            long milliwatts = Math.round(Double.parseDouble(fields[0].trim()) * 1000);
            long utilization = fields.length > 1 ? Long.parseLong(fields[1].trim()) : -1;
            synchronized (samples) {
              samples.add(new long[] {System.nanoTime(), milliwatts, utilization});
            }
          } catch (NumberFormatException e) {
            // A header or a message, not a sample.
          }
        }
      } catch (IOException e) {
        // The process ended.
      }
    }, "power-sampler");
    reader.setDaemon(true);
    reader.start();
  }

  /** Mean GPU power in watts over [start, end] (System.nanoTime), NaN without samples. */
  double meanWatts(long start, long end) {
    long sum = 0;
    int count = 0;
    synchronized (samples) {
      for (long[] sample : samples) {
        if (sample[0] >= start && sample[0] <= end) {
          sum += sample[1];
          count++;
        }
      }
    }
    return count == 0 ? Double.NaN : sum / 1000.0 / count;
  }

  /** Mean GPU utilization (nvidia-smi's utilization.gpu, %) over [start, end], NaN without samples. */
  double meanUtilization(long start, long end) {
    long sum = 0;
    int count = 0;
    synchronized (samples) {
      for (long[] sample : samples) {
        if (sample[0] >= start && sample[0] <= end && sample[2] >= 0) {
          sum += sample[2];
          count++;
        }
      }
    }
    return count == 0 ? Double.NaN : (double) sum / count;
  }

  /** The CPU package energy counter in microjoules, or -1 where RAPL is not readable. */
  static long cpuMicrojoules() {
    try {
      return Long.parseLong(Files.readString(RAPL).trim());
    } catch (IOException | RuntimeException e) {
      return -1;
    }
  }

  @Override
  public void close() {
    process.destroy();
  }
}

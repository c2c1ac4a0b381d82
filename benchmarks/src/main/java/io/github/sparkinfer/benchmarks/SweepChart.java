package io.github.sparkinfer.benchmarks;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * A PNG line chart of rows/s against a batch setting (batch size, token budget): x on a log-2 axis,
 * y on a log-10 axis so a CPU and a GPU series an order of magnitude apart both read. Headless AWT;
 * the text needs a font the JRE can find (fontconfig), else {@link #write} throws and the caller
 * keeps the figures as a table.
 */
final class SweepChart {
  private static final int WIDTH = 900;
  private static final int HEIGHT = 540;
  private static final int LEFT = 110;
  private static final int RIGHT = 40;
  private static final int TOP = 60;
  private static final int BOTTOM = 80;
  private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c),
      new Color(0x9467bd)};

  /** One line: its name and points (x, rows/s), x ascending. */
  static final class Series {
    final String name;
    final double[] x;
    final double[] y;

    Series(String name, double[] x, double[] y) {
      this.name = name;
      this.x = x;
      this.y = y;
    }
  }

  private SweepChart() {}

  static void write(Path png, String title, String xLabel, List<Series> series) throws IOException {
    System.setProperty("java.awt.headless", "true");
    double minX = Double.MAX_VALUE;
    double maxX = 0;
    double minY = Double.MAX_VALUE;
    double maxY = 0;
    for (Series line : series) {
      for (int i = 0; i < line.x.length; i++) {
        minX = Math.min(minX, line.x[i]);
        maxX = Math.max(maxX, line.x[i]);
        minY = Math.min(minY, line.y[i]);
        maxY = Math.max(maxY, line.y[i]);
      }
    }
    double lowX = Math.floor(log2(minX));
    double highX = Math.ceil(log2(maxX));
    double lowY = Math.floor(Math.log10(minY));
    double highY = Math.ceil(Math.log10(maxY));
    if (highY == lowY) {
      highY++;
    }
    BufferedImage image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    try {
      g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
      g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
      g.setColor(Color.WHITE);
      g.fillRect(0, 0, WIDTH, HEIGHT);
      int plotWidth = WIDTH - LEFT - RIGHT;
      int plotHeight = HEIGHT - TOP - BOTTOM;
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
      for (double exponent = lowY; exponent <= highY; exponent++) {
        for (int step : new int[] {1, 2, 5}) {
          double value = step * Math.pow(10, exponent);
          double position = Math.log10(value);
          if (position > highY) {
            continue;
          }
          int y = TOP + plotHeight - (int) Math.round((position - lowY) / (highY - lowY) * plotHeight);
          g.setColor(step == 1 ? new Color(0xcccccc) : new Color(0xeeeeee));
          g.drawLine(LEFT, y, LEFT + plotWidth, y);
          g.setColor(Color.DARK_GRAY);
          String label = humanNumber(value);
          g.drawString(label, LEFT - 8 - g.getFontMetrics().stringWidth(label), y + 5);
        }
      }
      for (double exponent = lowX; exponent <= highX; exponent++) {
        int x = LEFT + (int) Math.round((exponent - lowX) / Math.max(1, highX - lowX) * plotWidth);
        g.setColor(new Color(0xdddddd));
        g.drawLine(x, TOP, x, TOP + plotHeight);
        g.setColor(Color.DARK_GRAY);
        String label = Long.toString(Math.round(Math.pow(2, exponent)));
        g.drawString(label, x - g.getFontMetrics().stringWidth(label) / 2, TOP + plotHeight + 20);
      }
      g.setColor(Color.BLACK);
      g.drawRect(LEFT, TOP, plotWidth, plotHeight);
      g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
      g.drawString(title, LEFT, TOP - 25);
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 14));
      g.drawString(xLabel + " (log scale)", LEFT + plotWidth / 2 - 80, HEIGHT - 25);
      Graphics2D rotated = (Graphics2D) g.create();
      rotated.rotate(-Math.PI / 2);
      rotated.drawString("rows/s (log scale)", -(TOP + plotHeight / 2 + 60), 25);
      rotated.dispose();
      for (int s = 0; s < series.size(); s++) {
        Series line = series.get(s);
        g.setColor(COLORS[s % COLORS.length]);
        g.setStroke(new BasicStroke(2.5f));
        int previousX = -1;
        int previousY = -1;
        for (int i = 0; i < line.x.length; i++) {
          int x = LEFT + (int) Math.round((log2(line.x[i]) - lowX) / Math.max(1, highX - lowX) * plotWidth);
          int y = TOP + plotHeight - (int) Math.round((Math.log10(line.y[i]) - lowY) / (highY - lowY) * plotHeight);
          g.fillOval(x - 4, y - 4, 8, 8);
          if (previousX >= 0) {
            g.drawLine(previousX, previousY, x, y);
          }
          previousX = x;
          previousY = y;
        }
        g.fillRect(LEFT + 15, TOP + 15 + s * 22, 18, 4);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
        g.drawString(line.name, LEFT + 40, TOP + 21 + s * 22);
      }
    } finally {
      g.dispose();
    }
    ImageIO.write(image, "png", png.toFile());
  }

  private static double log2(double value) {
    return Math.log(value) / Math.log(2);
  }

  private static String humanNumber(double value) {
    if (value >= 1e6) {
      return trim(value / 1e6) + "M";
    }
    if (value >= 1e3) {
      return trim(value / 1e3) + "k";
    }
    return trim(value);
  }

  private static String trim(double value) {
    String text = String.format(Locale.ROOT, "%.1f", value);
    return text.endsWith(".0") ? text.substring(0, text.length() - 2) : text;
  }
}

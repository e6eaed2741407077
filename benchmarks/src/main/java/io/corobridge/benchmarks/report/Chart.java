package io.corobridge.benchmarks.report;

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

/** Draws a horizontal bar chart on a logarithmic axis into a PNG, with Java2D only. */
final class Chart {
    /** One bar: its group label (drawn once per group), its series, and its value. */
    record Bar(String group, int series, double value) {}

    private static final Color[] SERIES_COLORS = {
        new Color(0x1f77b4), new Color(0xaec7e8), new Color(0xd62728), new Color(0xff9896)
    };
    private static final int BAR = 13;
    private static final int GAP = 10;
    private static final int LEFT = 230;
    private static final int RIGHT = 40;
    private static final int TOP = 70;
    private static final int WIDTH = 1000;

    private Chart() {}

    static void write(Path file, String title, List<String> seriesNames, List<Bar> bars, String unit)
            throws IOException {
        double min = bars.stream().mapToDouble(Bar::value).filter(v -> v > 0).min().orElse(0.01);
        double max = bars.stream().mapToDouble(Bar::value).max().orElse(1);
        double low = Math.pow(10, Math.floor(Math.log10(min)));
        double high = Math.pow(10, Math.ceil(Math.log10(max)));
        int groups = (int) bars.stream().map(Bar::group).distinct().count();
        int height = TOP + bars.size() * BAR + groups * GAP + 70;
        BufferedImage image = new BufferedImage(WIDTH, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, WIDTH, height);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 15));
        g.drawString(title, 20, 25);

        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        int legendX = 20;
        for (int s = 0; s < seriesNames.size(); s++) {
            g.setColor(SERIES_COLORS[s % SERIES_COLORS.length]);
            g.fillRect(legendX, 38, 12, 12);
            g.setColor(Color.BLACK);
            g.drawString(seriesNames.get(s), legendX + 16, 49);
            legendX += 20 + g.getFontMetrics().stringWidth(seriesNames.get(s)) + 20;
        }

        int plotWidth = WIDTH - LEFT - RIGHT;
        int plotBottom = height - 50;
        g.setStroke(new BasicStroke(1));
        for (double tick = low; tick <= high * 1.0001; tick *= 10) {
            int x = LEFT + (int) (plotWidth * Math.log10(tick / low) / Math.log10(high / low));
            g.setColor(new Color(0xdddddd));
            g.drawLine(x, TOP - 5, x, plotBottom);
            g.setColor(Color.DARK_GRAY);
            String label = tick >= 1 ? String.format(Locale.ROOT, "%.0f", tick) : String.format(Locale.ROOT, "%s", tick);
            g.drawString(label + " " + unit, x - 12, plotBottom + 18);
        }

        int y = TOP;
        String lastGroup = null;
        for (Bar bar : bars) {
            if (!bar.group().equals(lastGroup)) {
                if (lastGroup != null) {
                    y += GAP;
                }
                g.setColor(Color.BLACK);
                g.drawString(bar.group(), 15, y + BAR);
                lastGroup = bar.group();
            }
            double value = Math.max(bar.value(), low);
            int w = (int) (plotWidth * Math.log10(value / low) / Math.log10(high / low));
            g.setColor(SERIES_COLORS[bar.series() % SERIES_COLORS.length]);
            g.fillRect(LEFT, y, Math.max(w, 1), BAR - 2);
            g.setColor(Color.DARK_GRAY);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 10));
            g.drawString(format(bar.value()), LEFT + Math.max(w, 1) + 4, y + BAR - 3);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            y += BAR;
        }
        g.dispose();
        ImageIO.write(image, "png", file.toFile());
    }

    private static String format(double value) {
        if (value >= 10) {
            return String.format(Locale.ROOT, "%.1f", value);
        }
        if (value >= 0.1) {
            return String.format(Locale.ROOT, "%.2f", value);
        }
        return String.format(Locale.ROOT, "%.4f", value);
    }
}

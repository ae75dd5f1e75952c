#include "apps/study_plot.h"

#include "core/atomic_file.h"

#include <fmt/core.h>

#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <sstream>

namespace kindling::app {
namespace fs = std::filesystem;

namespace {

// A gnuplot string literal: single quotes, an inner quote doubled.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char ch : text) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

// One shell word.
std::string shell_word(const std::string& text) {
  std::string out = "'";
  for (char ch : text) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// The script's first lines: the PNG it writes unless the caller sets `png` (gnuplot -e), so
// `gnuplot <stem>.gp` by hand renders <stem>.png too.
std::string preamble(int width, int height, const std::string& png) {
  return fmt::format(
      "set terminal pngcairo size {},{} noenhanced font ',10'\nif (!exists('png')) png = {}\nset output "
      "png\n",
      width, height, quoted(png));
}

// The last non-empty line of a command's output (gnuplot's error is its last line).
std::string last_line(const std::string& text) {
  std::stringstream stream(text);
  std::string line, last;
  while (std::getline(stream, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  return last;
}

}  // namespace

SeriesStyle series_style(size_t index) {
  static const char* const kColours[12] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                                           "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#000000", "#0a2d6e"};
  return {kColours[index % 12], int(1 + index % 4), int(1 + index % 13)};
}

std::string curves_script(const CurvesPlot& plot, const std::string& png) {
  const bool one_epoch = plot.epochs <= 1, band = plot.seeds > 1;
  const int64_t tick_step = std::max<int64_t>(1, (plot.epochs + 9) / 10);
  const int64_t point_interval = std::max<int64_t>(1, plot.epochs / 10);
  std::string gp = preamble(1500, 620, png);
  gp += "set datafile separator ','\nset datafile missing 'NaN'\n";
  gp += fmt::format("set multiplot layout 1,2 title {}\n", quoted(plot.title));
  gp += "set grid\nset xlabel 'epoch'\nset format x '%.0f'\n";
  gp += fmt::format("set xtics {}\n", tick_step);  // whole epochs only
  gp += one_epoch ? std::string("set xrange [0.5:1.5]\n") : fmt::format("set xrange [1:{}]\n", plot.epochs);
  const size_t n = plot.series.size();
  auto panel = [&](int offset) {
    std::string command = "plot ";
    for (size_t i = 0; i < n; ++i) {
      const SeriesStyle style = series_style(i);
      const size_t mean = 2 + 6 * i + size_t(offset);
      // One epoch: the losses side by side around x = 1, so their points do not hide each other.
      const std::string x = one_epoch ? fmt::format("($1+{:.4f})", (double(i) - double(n - 1) / 2) * 0.6 /
                                                                       double(std::max<size_t>(n, 1)))
                                      : std::string("1");
      const std::string source = fmt::format("{} skip 1 using {}", quoted(plot.data_file), x);
      if (band && one_epoch)
        command += fmt::format("{}:{}:{}:{} with yerrorbars lc rgb '{}' pt {} notitle, \\\n  ", source, mean,
                               mean + 1, mean + 2, style.colour, style.point_type);
      else if (band)
        command += fmt::format(
            "{}:{}:{} with filledcurves fc rgb '{}' fs transparent solid 0.12 noborder "
            "notitle, \\\n  ",
            source, mean + 1, mean + 2, style.colour);
      command += fmt::format(
          "{}:{} with {} lc rgb '{}' dt {} pt {} lw 2 ps 1.2 title {} noenhanced{}", source, mean,
          one_epoch ? "points" : fmt::format("linespoints pi {}", point_interval), style.colour,
          style.dash_type, style.point_type, quoted(plot.series[i]), i + 1 < n ? ", \\\n  " : "\n");
    }
    return command;
  };
  gp += "unset key\nset ylabel 'test accuracy (%)'\n" + panel(0);
  gp += "set key outside right top\nset ylabel 'test NLL'\n" + panel(3);
  return gp + "unset multiplot\n";
}

std::string reliability_script(const ReliabilityPlot& plot, const std::string& png) {
  const int panels = std::max<int>(1, int(plot.panels.size()));
  const int columns = std::min(4, panels), rows = (panels + columns - 1) / columns;
  std::string gp = preamble(std::max(900, 360 * columns), 360 * rows + 40, png);
  gp += fmt::format("set multiplot layout {},{} title {}\n", rows, columns, quoted(plot.title));
  gp +=
      "set xrange [0:1]\nset yrange [0:1]\nset xtics 0.2\nset ytics 0.2\nset grid\nset size ratio 1\n"
      "set xlabel 'confidence'\nset ylabel 'accuracy'\nunset key\n";
  const int stride = plot.scaled ? 2 : 1;
  for (size_t i = 0; i < plot.panels.size(); ++i) {
    const ReliabilityPanel& panel = plot.panels[i];
    gp += fmt::format("set title {} noenhanced\n", quoted(panel.title));
    gp += "plot x with lines dt 2 lc rgb '#808080' title 'calibrated'";
    const std::string file = quoted(plot.data_file);
    if (panel.has_raw)
      gp += fmt::format(
          ", \\\n  {} index {} using 2:3 with linespoints lc rgb '#1f77b4' dt 1 pt 7 lw 2 "
          "title 'raw'",
          file, stride * int(i));
    if (plot.scaled && panel.has_scaled)
      gp += fmt::format(
          ", \\\n  {} index {} using 2:3 with linespoints lc rgb '#d62728' dt 2 pt 4 lw 2 "
          "title 'at T'",
          file, stride * int(i) + 1);
    gp += "\n";
  }
  return gp + "unset multiplot\n";
}

void render_plot(const fs::path& out, const std::string& stem,
                 const std::function<std::string(const std::string& png)>& script) {
  const std::string gp_path = (out / (stem + ".gp")).string(), png_path = (out / (stem + ".png")).string();
  write_file_atomically(gp_path, script(png_path));
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    fmt::print("plot: gnuplot not found; render with `gnuplot {}` (apt-get install gnuplot-nox)\n", gp_path);
    return;
  }
  const std::string png_tmp = png_path + ".tmp." + std::to_string(::getpid()) + ".0";
  std::string output;
  int status = -1;
  const std::string command =
      fmt::format("gnuplot -e {} {} 2>&1", shell_word("png = " + quoted(png_tmp)), shell_word(gp_path));
  if (std::FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
    status = ::pclose(pipe);
  }
  std::error_code error;
  if (status == 0 && fs::file_size(png_tmp, error) > 0 && !error) {
    fs::rename(png_tmp, png_path);
    fmt::print("plot: {}\n", png_path);
    return;
  }
  fs::remove(png_tmp, error);
  fmt::print(
      stderr, "kindling: warning: gnuplot failed on {}: {}\n", gp_path,
      output.empty() ? std::string("no output, exit status ") + std::to_string(status) : last_line(output));
}

}  // namespace kindling::app

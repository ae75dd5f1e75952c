// The study's plots, as gnuplot scripts rendered to PNG when gnuplot is installed:
//   curves.png       test accuracy and test NLL per epoch, one series per loss: the mean over seeds,
//                    with a band from the seeds' minimum to their maximum when there are several
//                    (error bars in a one-epoch study, which plots points);
//   reliability.png  one panel per loss: accuracy against confidence on the last epoch's test set,
//                    pooled over seeds, raw and (with --val-split) at the fitted temperature T.
// Every series has its own colour, dash and marker; all text is literal (gnuplot's noenhanced).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace kindling::app {

struct SeriesStyle {
  std::string colour;  // '#rrggbb'
  int dash_type = 1;   // gnuplot dt 1..4
  int point_type = 1;  // gnuplot pt 1..13
};
// Distinct for every index below 156: twelve colours, four dashes and thirteen markers, cycled.
SeriesStyle series_style(size_t index);

struct CurvesPlot {
  std::string title;                // above both panels
  std::string data_file;            // curves_mean.csv (apps/study_report.h: curves_mean_csv)
  std::vector<std::string> series;  // the loss specs, in the file's column order
  int64_t epochs = 1;
  int seeds = 1;
};
std::string curves_script(const CurvesPlot& plot, const std::string& png);

struct ReliabilityPanel {
  std::string title;
  bool has_raw = false, has_scaled = false;  // whether the data file holds that block with rows
};
struct ReliabilityPlot {
  std::string title;
  std::string data_file;  // reliability.dat (apps/study_report.h: reliability_dat)
  std::vector<ReliabilityPanel> panels;
  bool scaled = false;  // the file holds a block at T after each raw one
};
std::string reliability_script(const ReliabilityPlot& plot, const std::string& png);

// Writes <out>/<stem>.gp from script(png path) and, when gnuplot is installed, renders it into
// <out>/<stem>.png through a temporary renamed into place only on success: a failure leaves no empty
// PNG and prints gnuplot's own last line as a warning on stderr; the study still succeeds.
void render_plot(const std::filesystem::path& out, const std::string& stem,
                 const std::function<std::string(const std::string& png)>& script);

}  // namespace kindling::app

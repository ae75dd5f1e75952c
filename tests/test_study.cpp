// The loss study's report and plots from given figures, without training: study.md's spreads (a
// single value marked n = 1, mean ± std from two seeds up), the best epoch, the temperature columns,
// and gnuplot scripts that tell twelve losses apart, print names literally and tick whole epochs,
// rendered by gnuplot (which scripts/install_deps.sh installs; its absence fails this test).
#include "apps/study_plot.h"
#include "apps/study_report.h"
#include "tests/test_data_files.h"
#include "tests/test_losses_common.h"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <cstdlib>
#include <regex>
#include <set>

using namespace kindling;
using namespace kindling::app;
using kindling::test::contains;
namespace fs = std::filesystem;

namespace {

// A run of `epochs` epochs whose test top-1 rises by `step` per epoch; with validation figures and a
// temperature when `scaled`; the validation top-1 peaks at epoch `val_best`.
SeedRun make_run(int64_t epochs, double first_top1, double step, bool scaled, int64_t val_best = 1) {
  SeedRun run;
  for (int64_t e = 1; e <= epochs; ++e) {
    EpochFigures f;
    f.epoch = e;
    f.top1 = first_top1 + step * double(e - 1);
    f.nll = 0.5 / double(e);
    f.ece15 = 0.1;
    f.ece10 = 0.09;
    f.has_validation = scaled;
    f.val_top1 = e == val_best ? 0.99 : 0.5;
    f.temperature = 1.5;
    f.nll_scaled = 0.25;
    f.ece15_scaled = 0.02;
    f.ece10_scaled = 0.015;
    run.epochs.push_back(f);
  }
  run.seconds = 10;
  return run;
}

const std::vector<std::string>& kTwelve = test::default_specs();

}  // namespace

TEST_CASE("study: one value is printed alone and marked n = 1, and two seeds give mean ± std") {
  CHECK(format_stat({91.5}, 2) == "91.50");
  CHECK(format_stat({1.0, 3.0}, 2) == "2.00 ± 1.41");
  CHECK(format_stat({}, 2) == "—");

  StudyHeader header{"resnet20", "fashion-mnist", 2, 1, 0};
  std::vector<LossResult> one = {{"ce", {make_run(2, 0.9, 0.01, false)}, {}, {}}};
  const std::string single = study_markdown(header, one);
  INFO(single);
  CHECK(!contains(single, "±"));
  CHECK(contains(single, "(n = 1)"));
  CHECK(contains(single, "| ce | 1 | 91.00 | 0.2500 |"));
  CHECK(contains(single, "not fitted (no --val-split)"));
  CHECK(!contains(single, "NLL at T"));
  const nlohmann::json single_json = study_json(header, one);
  CHECK(single_json["losses"][0]["n"] == 1);
  CHECK(single_json["losses"][0]["top1_std"].is_null());  // no spread measured
  CHECK(single_json["losses"][0]["top1_mean"].get<double>() == doctest::Approx(91.0));
  CHECK(!single_json["losses"][0]["last"].contains("temperature"));

  header.seeds = 2;
  std::vector<LossResult> two = {
      {"ce", {make_run(2, 0.9, 0.01, false), make_run(2, 0.92, 0.01, false)}, {}, {}}};
  const std::string spread = study_markdown(header, two);
  INFO(spread);
  CHECK(contains(spread, "| ce | 2 | 92.00 ± 1.41 |"));
  CHECK(!contains(spread, "n = 1"));
  CHECK(study_json(header, two)["losses"][0]["top1_std"].get<double>() ==
        doctest::Approx(1.41421).epsilon(1e-4));
}

TEST_CASE("study: temperature columns with --val-split, and the best epoch chosen on validation") {
  StudyHeader header{"resnet20", "mnist", 3, 1, 0.1};
  // Test top-1 rises to epoch 3, but validation peaks at epoch 2: the best epoch is 2.
  std::vector<LossResult> losses = {{"square", {make_run(3, 0.8, 0.05, true, 2)}, {}, {}}};
  const std::string md = study_markdown(header, losses);
  INFO(md);
  CHECK(contains(md, "| T | NLL at T | ECE at T (15 bins) |"));
  CHECK(contains(md, "validation split of 0.1"));
  CHECK(contains(md, "chosen per seed by validation top-1"));
  CHECK(contains(md, "| square | 1 | 90.00 | 0.1667 | 0.1000 | 0.0900 | 1.500 | 0.2500 | 0.0200 |"));
  CHECK(contains(md, "| square | 1 | 2 | 85.00 | 0.2500 |"));  // the best epoch's row
  CHECK(!contains(md, "bound of the fit"));
  losses[0].runs[0].epochs[0].temperature = 100;
  CHECK(contains(study_markdown(header, losses), "A T of 0.01 or 100 is a bound of the fit"));
  const nlohmann::json j = study_json(header, losses)["losses"][0];
  CHECK(j["best"]["epoch"] == std::vector<int64_t>{2});
  CHECK(j["last"]["temperature"]["values"][0].get<double>() == 1.5);
  CHECK(j["best"]["top1"]["mean"].get<double>() == doctest::Approx(85.0));
  // Without validation the best epoch is the test set's best.
  std::vector<LossResult> raw = {{"ce", {make_run(3, 0.8, 0.05, false)}, {}, {}}};
  CHECK(best_epoch_index(raw[0].runs[0]) == 2);
}

TEST_CASE("study: curves_mean.csv holds mean, min and max per loss, and specs with commas are quoted") {
  std::vector<LossResult> losses = {
      {"focal:gamma=2,alpha=1", {make_run(2, 0.5, 0.125, false), make_run(2, 0.75, 0.125, false)}, {}, {}}};
  const std::string mean = curves_mean_csv(losses, 2);
  CHECK(contains(mean, "epoch,\"focal:gamma=2,alpha=1 accuracy_mean\""));
  CHECK(contains(mean, "\n1,62.5,50,75,0.5,0.5,0.5\n"));
  CHECK(contains(curves_csv(losses), "\"focal:gamma=2,alpha=1\",1,2,0.875,0.25\n"));
}

TEST_CASE(
    "study: the curves script gives twelve losses distinct styles, literal names and whole-epoch ticks") {
  std::set<std::string> colours;
  std::set<int> points;
  std::set<std::tuple<std::string, int, int>> styles;
  for (size_t i = 0; i < 156; ++i) {
    const SeriesStyle s = series_style(i);
    styles.insert({s.colour, s.dash_type, s.point_type});
    if (i < 12) {
      colours.insert(s.colour);
      points.insert(s.point_type);
    }
  }
  CHECK(colours.size() == 12);
  CHECK(points.size() == 12);
  CHECK(styles.size() == 156);

  for (int64_t epochs : {1, 5, 30})
    for (int seeds : {1, 3}) {
      CurvesPlot plot{"t", "/x/curves_mean.csv", kTwelve, epochs, seeds};
      const std::string gp = curves_script(plot, "/x/curves.png");
      INFO(gp);
      CHECK(contains(gp, "noenhanced"));
      CHECK(contains(gp, "title 'label_smoothing' noenhanced"));
      const std::smatch tics = [&] {
        std::smatch m;
        std::regex_search(gp, m, std::regex("set xtics ([0-9.]+)\n"));
        return m;
      }();
      REQUIRE(tics.size() == 2);
      CHECK(tics[1].str().find('.') == std::string::npos);  // a whole step: integer ticks only
      CHECK(contains(gp, epochs == 1 ? "with points" : "with linespoints"));
      CHECK(contains(gp, "set ylabel 'test NLL'"));
      CHECK(contains(gp, seeds == 1 ? "" : epochs == 1 ? "with yerrorbars" : "with filledcurves"));
      if (seeds == 1) CHECK(!contains(gp, "filledcurves"));
      for (size_t i = 0; i < 12; ++i) CHECK(contains(gp, fmt::format("pt {} ", series_style(i).point_type)));
    }
}

TEST_CASE("study: gnuplot renders the curves and the reliability diagrams") {
  REQUIRE_MESSAGE(std::system("command -v gnuplot >/dev/null 2>&1") == 0,
                  "gnuplot is missing: scripts/install_deps.sh installs gnuplot-nox");
  kindling::test::TempDir dir;
  const char* keep = std::getenv("KINDLING_TEST_PLOT_DIR");  // to look at the images
  const fs::path root = keep ? fs::path(keep) : dir.path;
  for (int64_t epochs : {1, 4}) {
    std::vector<LossResult> losses;
    for (size_t i = 0; i < kTwelve.size(); ++i) {
      LossResult loss{kTwelve[i],
                      {make_run(epochs, 0.3 + 0.04 * double(i), 0.1, true),
                       make_run(epochs, 0.35 + 0.04 * double(i), 0.05, true)},
                      {},
                      {}};
      const nlohmann::json diagram = {
          {"count", {0, 3, 7}}, {"accuracy", {0, 0.4, 0.9}}, {"confidence", {0, 0.5, 0.8}}};
      loss.reliability.add(diagram);
      if (i != 3) loss.reliability_scaled.add(diagram);  // one panel without a diagram at T
      losses.push_back(loss);
    }
    const fs::path out = root / std::to_string(epochs);
    fs::create_directories(out);
    std::ofstream(out / "curves_mean.csv") << curves_mean_csv(losses, epochs);
    const std::string dat = reliability_dat(losses, true);
    std::ofstream(out / "reliability.dat") << dat;
    // Every block holds a data row, so gnuplot's index k is block k (it skips blocks without data).
    size_t blocks_with_rows = 0, begin = 0;
    for (size_t end; (end = dat.find("\n\n\n", begin)) != std::string::npos; begin = end + 3)
      blocks_with_rows += std::regex_search(dat.substr(begin, end - begin), std::regex("(^|\n)[-0-9]"));
    CHECK(blocks_with_rows == 24);
    CurvesPlot curves{"curves", (out / "curves_mean.csv").string(), kTwelve, epochs, 2};
    render_plot(out, "curves", [&](const std::string& png) { return curves_script(curves, png); });
    ReliabilityPlot reliability{"reliability", (out / "reliability.dat").string(), {}, true};
    for (const LossResult& loss : losses)
      reliability.panels.push_back({loss.spec, !loss.reliability.empty(), !loss.reliability_scaled.empty()});
    render_plot(out, "reliability",
                [&](const std::string& png) { return reliability_script(reliability, png); });
    CHECK(fs::file_size(out / "curves.png") > 10000);
    CHECK(fs::file_size(out / "reliability.png") > 10000);
    // The saved script renders by itself, as the study's message tells a reader to do.
    fs::remove(out / "curves.png");
    CHECK(std::system(fmt::format("cd '{}' && gnuplot curves.gp", out.string()).c_str()) == 0);
    CHECK(fs::exists(out / "curves.png"));
  }
}

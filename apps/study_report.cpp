#include "apps/study_report.h"

#include "core/error.h"
#include "losses/temperature.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

namespace kindling::app {

namespace {

double number(const nlohmann::json& row, const char* key, const std::string& source) {
  const auto it = row.find(key);
  // NaN and infinities are written as null by the JSON library: a diverged figure reads as NaN.
  if (it != row.end() && it->is_null()) return NAN;
  KINDLING_CHECK(it != row.end() && it->is_number(), FileError,
                 "study: {}: a metrics row without a number '{}'", source, key);
  return it->get<double>();
}

double mean_of(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return values.empty() ? NAN : sum / double(values.size());
}
// Sample standard deviation; NaN below two values.
double std_of(const std::vector<double>& values) {
  if (values.size() < 2) return NAN;
  const double mean = mean_of(values);
  double sum = 0;
  for (double v : values) sum += (v - mean) * (v - mean);
  return std::sqrt(sum / double(values.size() - 1));
}

// One figure of every seed's last (or best) epoch.
template <typename Field>
std::vector<double> gather(const LossResult& loss, bool best, Field field) {
  std::vector<double> values;
  for (const SeedRun& run : loss.runs) {
    if (run.epochs.empty()) continue;
    values.push_back(field(run.epochs[best ? best_epoch_index(run) : run.epochs.size() - 1]));
  }
  return values;
}

bool scaled(const LossResult& loss) {
  return !loss.runs.empty() && !loss.runs[0].epochs.empty() && loss.runs[0].epochs.back().has_validation;
}

// A CSV field: quoted when it holds a comma or a quote (a loss spec with several hyperparameters).
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char ch : text) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return quoted + "\"";
}

struct Column {
  const char* title;  // in study.md
  const char* key;    // in study.json
  int decimals;
  double (*field)(const EpochFigures&);
  bool needs_scaling;
};
const Column kColumns[] = {
    {"top-1 (%)", "top1", 2, [](const EpochFigures& e) { return 100 * e.top1; }, false},
    {"NLL", "nll", 4, [](const EpochFigures& e) { return e.nll; }, false},
    {"ECE (15 bins)", "ece", 4, [](const EpochFigures& e) { return e.ece15; }, false},
    {"ECE (10 bins)", "ece10", 4, [](const EpochFigures& e) { return e.ece10; }, false},
    {"T", "temperature", 3, [](const EpochFigures& e) { return e.temperature; }, true},
    {"NLL at T", "nll_scaled", 4, [](const EpochFigures& e) { return e.nll_scaled; }, true},
    {"ECE at T (15 bins)", "ece_scaled", 4, [](const EpochFigures& e) { return e.ece15_scaled; }, true},
    {"ECE at T (10 bins)", "ece10_scaled", 4, [](const EpochFigures& e) { return e.ece10_scaled; }, true},
};

std::string table(const std::vector<LossResult>& losses, bool with_scaling, bool best) {
  std::string head = best ? "| loss | n | epoch |" : "| loss | n |",
              rule = best ? "|---|---|---|" : "|---|---|";
  for (const Column& column : kColumns)
    if (with_scaling || !column.needs_scaling) {
      head += fmt::format(" {} |", column.title);
      rule += "---|";
    }
  if (!best) {
    head += " time per run (s) |";
    rule += "---|";
  }
  std::string text = head + "\n" + rule + "\n";
  for (const LossResult& loss : losses) {
    text += fmt::format("| {} | {} |", loss.spec, loss.runs.size());
    if (best) {
      std::vector<std::string> epochs;
      for (const SeedRun& run : loss.runs)
        if (!run.epochs.empty()) epochs.push_back(std::to_string(run.epochs[best_epoch_index(run)].epoch));
      text += fmt::format(" {} |", fmt::join(epochs, ", "));
    }
    for (const Column& column : kColumns)
      if (with_scaling || !column.needs_scaling)
        text += fmt::format(" {} |", format_stat(gather(loss, best, column.field), column.decimals));
    if (!best) {
      std::vector<double> seconds;
      for (const SeedRun& run : loss.runs) seconds.push_back(run.seconds);
      text += fmt::format(" {:.0f} |", mean_of(seconds));
    }
    text += "\n";
  }
  return text;
}

}  // namespace

EpochFigures epoch_figures(const nlohmann::json& row, const std::string& source) {
  EpochFigures e;
  e.epoch = int64_t(number(row, "epoch", source));
  e.top1 = number(row, "test_accuracy", source);
  e.nll = number(row, "test_nll", source);
  e.ece15 = number(row, "test_ece", source);
  e.ece10 = row.contains("test_ece10") ? number(row, "test_ece10", source) : NAN;
  e.has_validation = row.contains("temperature");
  if (e.has_validation) {
    e.val_top1 = number(row, "val_accuracy", source);
    e.temperature = number(row, "temperature", source);
    e.nll_scaled = number(row, "test_nll_scaled", source);
    e.ece15_scaled = number(row, "test_ece_scaled", source);
    e.ece10_scaled = number(row, "test_ece10_scaled", source);
  }
  return e;
}

void PooledReliability::add(const nlohmann::json& diagram) {
  if (!diagram.is_object() || !diagram.contains("count")) return;
  const auto& counts = diagram.at("count");
  const auto& accuracy = diagram.at("accuracy");
  const auto& confidence = diagram.at("confidence");
  if (count.empty()) {
    count.assign(counts.size(), 0);
    correct.assign(counts.size(), 0.0);
    confidence_sum.assign(counts.size(), 0.0);
  }
  KINDLING_CHECK(
      counts.size() == count.size() && accuracy.size() == count.size() && confidence.size() == count.size(),
      FileError, "study: reliability diagrams of {} and {} bins cannot be pooled", count.size(),
      counts.size());
  for (size_t b = 0; b < count.size(); ++b) {
    const int64_t n = counts[b].get<int64_t>();
    count[b] += n;
    correct[b] += double(n) * accuracy[b].get<double>();
    confidence_sum[b] += double(n) * confidence[b].get<double>();
  }
}

bool PooledReliability::empty() const {
  return std::all_of(count.begin(), count.end(), [](int64_t n) { return n == 0; });
}

size_t best_epoch_index(const SeedRun& run) {
  size_t best = 0;
  for (size_t i = 1; i < run.epochs.size(); ++i) {
    const EpochFigures &e = run.epochs[i], &b = run.epochs[best];
    if (e.has_validation ? e.val_top1 > b.val_top1 : e.top1 > b.top1) best = i;
  }
  return best;
}

std::string format_stat(const std::vector<double>& values, int decimals) {
  if (values.empty()) return "—";
  if (values.size() == 1) return fmt::format("{:.{}f}", values[0], decimals);
  return fmt::format("{:.{}f} ± {:.{}f}", mean_of(values), decimals, std_of(values), decimals);
}

std::string study_markdown(const StudyHeader& h, const std::vector<LossResult>& losses) {
  const bool with_scaling = h.val_split > 0;
  std::string text = fmt::format("# Loss study: {} on {}, {} epochs, {} seed{}\n\n", h.model, h.data,
                                 h.epochs, h.seeds, h.seeds == 1 ? "" : "s");
  text += h.seeds == 1 ? "One seed per loss (n = 1): each figure is that run's own; no spread is measured.\n"
                       : "Each figure is the mean ± the sample standard deviation over the n seeds.\n";
  text += with_scaling ? fmt::format(
                             "Temperature scaling (Guo et al. 2017): T is fitted, per run and epoch, on a "
                             "validation split of {} of the training set drawn from the run's seed, by "
                             "minimising its NLL; NLL and ECE at T are the test set's.\n",
                             h.val_split)
                       : std::string(
                             "Temperature scaling: not fitted (no --val-split); NLL and ECE are the raw "
                             "softmax's.\n");
  bool at_bound = false;
  for (const LossResult& loss : losses)
    for (const SeedRun& run : loss.runs)
      for (const EpochFigures& e : run.epochs)
        at_bound |=
            e.has_validation && (e.temperature == kMinTemperature || e.temperature == kMaxTemperature);
  if (at_bound)
    text += fmt::format("A T of {} or {} is a bound of the fit: the validation NLL still fell beyond it.\n",
                        kMinTemperature, kMaxTemperature);
  text += fmt::format("\n## Last epoch ({})\n\n", h.epochs) + table(losses, with_scaling, false);
  text += with_scaling ? "\n## Best epoch, chosen per seed by validation top-1\n\n"
                       : "\n## Best epoch, chosen per seed by test top-1 (no validation split: an optimistic "
                         "choice)\n\n";
  return text + table(losses, with_scaling, true);
}

nlohmann::json study_json(const StudyHeader& h, const std::vector<LossResult>& losses) {
  nlohmann::json study = {{"data", h.data},
                          {"model", h.model},
                          {"epochs", h.epochs},
                          {"seeds", h.seeds},
                          {"val_split", h.val_split},
                          {"temperature_scaling", h.val_split > 0},
                          {"losses", nlohmann::json::array()}};
  for (const LossResult& loss : losses) {
    // A figure that is not a number (no spread from one seed, a diverged run) is null.
    auto number_or_null = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
    auto stat = [&](const std::vector<double>& values) {
      return nlohmann::json{{"mean", number_or_null(mean_of(values))},
                            {"std", number_or_null(std_of(values))},
                            {"values", values}};
    };
    nlohmann::json last = nlohmann::json::object(), best = nlohmann::json::object();
    for (const Column& column : kColumns)
      if (scaled(loss) || !column.needs_scaling) {
        last[column.key] = stat(gather(loss, false, column.field));
        best[column.key] = stat(gather(loss, true, column.field));
      }
    std::vector<int64_t> best_epochs;
    std::vector<double> seconds;
    for (const SeedRun& run : loss.runs) {
      if (!run.epochs.empty()) best_epochs.push_back(run.epochs[best_epoch_index(run)].epoch);
      seconds.push_back(run.seconds);
    }
    best["epoch"] = best_epochs;
    const nlohmann::json top1 = last["top1"];
    study["losses"].push_back({{"loss", loss.spec},
                               {"n", loss.runs.size()},
                               {"top1_mean", top1["mean"]},
                               {"top1_std", top1["std"]},
                               {"top1", top1["values"]},
                               {"nll_mean", last["nll"]["mean"]},
                               {"ece_mean", last["ece"]["mean"]},
                               {"ece10_mean", last["ece10"]["mean"]},
                               {"seconds_mean", mean_of(seconds)},
                               {"last", last},
                               {"best", best}});
  }
  return study;
}

std::string curves_csv(const std::vector<LossResult>& losses) {
  std::string text = "loss,seed,epoch,test_accuracy,test_nll\n";
  for (const LossResult& loss : losses)
    for (size_t s = 0; s < loss.runs.size(); ++s)
      for (const EpochFigures& e : loss.runs[s].epochs)
        text += fmt::format("{},{},{},{},{}\n", csv_field(loss.spec), s, e.epoch, e.top1, e.nll);
  return text;
}

std::string curves_mean_csv(const std::vector<LossResult>& losses, int64_t epochs) {
  std::string text = "epoch";
  for (const LossResult& loss : losses)
    for (const char* what :
         {"accuracy_mean", "accuracy_min", "accuracy_max", "nll_mean", "nll_min", "nll_max"})
      text += fmt::format(",{}", csv_field(loss.spec + " " + what));
  text += "\n";
  for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
    text += std::to_string(epoch);
    for (const LossResult& loss : losses) {
      std::vector<double> accuracy, nll;
      for (const SeedRun& run : loss.runs)
        for (const EpochFigures& e : run.epochs)
          if (e.epoch == epoch) {
            accuracy.push_back(100 * e.top1);
            nll.push_back(e.nll);
          }
      for (const std::vector<double>* values : {&accuracy, &nll}) {
        if (values->empty()) {
          text += ",NaN,NaN,NaN";
          continue;
        }
        const auto [low, high] = std::minmax_element(values->begin(), values->end());
        text += fmt::format(",{},{},{}", mean_of(*values), *low, *high);
      }
    }
    text += "\n";
  }
  return text;
}

std::string reliability_dat(const std::vector<LossResult>& losses, bool with_scaling) {
  std::string text = "# reliability diagrams of the last epoch's test set, pooled over seeds\n";
  for (const LossResult& loss : losses)
    for (bool at_t : {false, true}) {
      if (at_t && !with_scaling) continue;
      const PooledReliability& pooled = at_t ? loss.reliability_scaled : loss.reliability;
      text +=
          fmt::format("# {} {}\n# bin_centre confidence accuracy count\n", loss.spec, at_t ? "at T" : "raw");
      // gnuplot numbers only blocks with data, so an empty diagram gets a point off the plot.
      if (pooled.empty()) text += "-1 -1 -1 0\n";
      const size_t bins = pooled.count.size();
      for (size_t b = 0; b < bins; ++b)
        if (pooled.count[b] > 0)
          text += fmt::format("{} {} {} {}\n", (double(b) + 0.5) / double(bins),
                              pooled.confidence_sum[b] / double(pooled.count[b]),
                              pooled.correct[b] / double(pooled.count[b]), pooled.count[b]);
      text += "\n\n";
    }
  return text;
}

}  // namespace kindling::app

// The output folder of a run (--out) and what a resume finds there. One run owns a folder: an
// advisory lock on <folder>/.kindling.lock is held for the run's lifetime (the kernel drops it
// when the process ends, however it ends), so a second run on the same folder stops at once with
// one line naming the folder and the process that holds it.
//
// Files a run writes: config.json, metrics.jsonl (one JSON line per finished epoch),
// last.safetensors (every epoch), best.safetensors (epochs that improve the test accuracy). Every
// file is replaced atomically (core/atomic_file.h); metrics.jsonl is appended after the epoch's
// checkpoints, so it never holds an epoch the checkpoint lacks, and each checkpoint carries its
// own epoch's metrics line, so a resume can restore the log exactly.
#pragma once
#include "core/checkpoint.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kindling::app {

class RunFolder {
 public:
  // Creates `dir` if needed, locks it, checks that files can be created in it, and removes the
  // temporaries a killed run left. FileError naming `flag` and the folder when it cannot be
  // created or written, or when another process holds it.
  explicit RunFolder(const std::string& dir, const std::string& flag = "--out");
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  const std::filesystem::path& path() const { return dir_; }
  std::string file(const char* name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
  int lock_fd_ = -1;
};

// The JSON rows of a metrics.jsonl (missing file: none). A torn or unparsable line, which only a
// crash mid-append leaves, is dropped.
std::vector<nlohmann::json> read_metrics(const std::filesystem::path& file);

// Metadata keys a training checkpoint carries besides CheckpointInfo's own.
inline constexpr const char* kBestAccuracyKey = "best_accuracy";  // best test accuracy so far
inline constexpr const char* kBestEpochKey = "best_epoch";        // the epoch that reached it
inline constexpr const char* kMetricsKey = "metrics";             // this epoch's metrics.jsonl line

// A number stored in checkpoint metadata; FileError naming the key and the file when it is not one.
double metadata_number(const CheckpointInfo& info, const char* key, const std::string& checkpoint,
                       double absent_value);

// Makes `dir` agree with the checkpoint a run resumes from (`info` read from `checkpoint`):
// metrics.jsonl is rewritten atomically to hold exactly the epochs 1..info.epoch (the file's rows
// before the checkpoint's epoch, then the checkpoint's own row); best.safetensors, when it does not
// hold the best epoch the checkpoint records, is restored from the checkpoint when that is the
// best epoch, else reported with one warning line on stderr. Returns what it repaired, for the log.
std::vector<std::string> reconcile_run_folder(const RunFolder& dir, const std::string& checkpoint,
                                              const CheckpointInfo& info);

}  // namespace kindling::app

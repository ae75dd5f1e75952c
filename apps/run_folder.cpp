#include "apps/run_folder.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/spec.h"

#include <fmt/core.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>

namespace kindling::app {
namespace fs = std::filesystem;

namespace {

constexpr const char* kLockName = ".kindling.lock";

// The pid the lock file names, for the message of a second run ("" when unreadable).
std::string lock_holder(int fd) {
  char text[32] = {};
  const ssize_t got = ::pread(fd, text, sizeof text - 1, 0);
  const long pid = got > 0 ? std::strtol(text, nullptr, 10) : 0;
  return pid > 0 ? fmt::format("process {}", pid) : std::string("another process");
}

}  // namespace

RunFolder::RunFolder(const std::string& dir, const std::string& flag) : dir_(dir) {
  std::error_code error;
  fs::create_directories(dir_, error);
  if (error) throw FileError(fmt::format("{} {}: cannot create the folder ({})", flag, dir, error.message()));
  const std::string lock_path = (dir_ / kLockName).string();
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    throw FileError(fmt::format("{} {}: cannot write in the folder ({})", flag, dir, std::strerror(errno)));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const std::string holder = lock_holder(lock_fd_);
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw FileError(fmt::format("{} {}: in use by another kindling run ({}); one run per output folder", flag,
                                dir, holder));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, pid.data(), pid.size(), 0) != ssize_t(pid.size()))
    throw FileError(fmt::format("{} {}: cannot write in the folder ({})", flag, dir, std::strerror(errno)));
  // Files are created by rename into the folder: try it once before any work is done.
  try {
    write_file_atomically((dir_ / ".kindling.write-test").string(), "ok\n", flag + " " + dir);
    fs::remove(dir_ / ".kindling.write-test", error);
  } catch (const FileError& e) {
    throw FileError(fmt::format("{} (the folder must be writable)", e.what()));
  }
  // We hold the lock, so temporaries here belong to runs that died mid-write.
  for (const auto& entry : fs::directory_iterator(dir_, error))
    if (is_atomic_temporary(entry.path().filename().string())) fs::remove(entry.path(), error);
}

RunFolder::~RunFolder() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock; the file stays, so no race on it
}

std::vector<nlohmann::json> read_metrics(const fs::path& file) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    nlohmann::json row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_object() && row.contains("epoch") && row["epoch"].is_number_integer())
      rows.push_back(std::move(row));
  }
  return rows;
}

double metadata_number(const CheckpointInfo& info, const char* key, const std::string& checkpoint,
                       double absent_value) {
  const auto it = info.extra.find(key);
  if (it == info.extra.end()) return absent_value;
  const std::optional<double> value = parse_finite(it->second);
  if (!value)
    throw FileError(
        fmt::format("checkpoint {}: metadata {}='{}' is not a number", checkpoint, key, it->second));
  return *value;
}

namespace {

// metrics.jsonl = the file's rows of epochs 1..epoch-1 (the last copy of each), then the
// checkpoint's own row for `epoch` (or the file's, from a checkpoint that carries none).
void restore_metrics(const RunFolder& dir, const std::string& checkpoint, const CheckpointInfo& info) {
  std::map<int64_t, nlohmann::json> by_epoch;
  for (nlohmann::json& row : read_metrics(dir.file("metrics.jsonl"))) {
    const int64_t epoch = row["epoch"].get<int64_t>();
    if (epoch >= 1 && epoch <= info.epoch) by_epoch[epoch] = std::move(row);
  }
  if (const auto it = info.extra.find(kMetricsKey); it != info.extra.end()) {
    nlohmann::json row = nlohmann::json::parse(it->second, nullptr, false);
    if (!row.is_object())
      throw FileError(
          fmt::format("checkpoint {}: metadata {} is not a JSON object", checkpoint, kMetricsKey));
    by_epoch[info.epoch] = std::move(row);
  }
  std::string text;
  for (const auto& [epoch, row] : by_epoch) text += row.dump() + "\n";
  write_file_atomically(dir.file("metrics.jsonl"), text);
}

}  // namespace

std::vector<std::string> reconcile_run_folder(const RunFolder& dir, const std::string& checkpoint,
                                              const CheckpointInfo& info) {
  std::vector<std::string> repaired;
  restore_metrics(dir, checkpoint, info);
  const double best_epoch = metadata_number(info, kBestEpochKey, checkpoint, -1);
  if (best_epoch < 0) return repaired;  // a checkpoint that does not record its best epoch
  const std::string best = dir.file("best.safetensors");
  int64_t held = -1;
  if (fs::exists(best)) {
    try {
      held = read_checkpoint_info(best).epoch;
    } catch (const FileError&) {
      held = -1;  // unreadable: repaired or reported below like a stale one
    }
  }
  if (double(held) == best_epoch) return repaired;
  if (double(info.epoch) == best_epoch && fs::absolute(checkpoint) != fs::absolute(best)) {
    std::ifstream in(checkpoint, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    write_file_atomically(best, bytes, "checkpoint " + best);
    repaired.push_back(fmt::format("{} restored from {} (epoch {}, the best)", best, checkpoint, info.epoch));
  } else {
    fmt::print(stderr,
               "kindling: warning: {} {}, but {} records the best test accuracy at epoch {}; it is "
               "replaced at the next better epoch\n",
               best, held < 0 ? std::string("is missing or unreadable") : fmt::format("holds epoch {}", held),
               checkpoint, int64_t(best_epoch));
  }
  return repaired;
}

}  // namespace kindling::app

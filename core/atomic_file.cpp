#include "core/atomic_file.h"

#include "core/error.h"
#include "core/test_point.h"

#include <fcntl.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace kindling {

namespace {

std::string errno_text() { return std::strerror(errno); }

// fsync the directory so the rename itself survives a crash; best effort (some filesystems
// refuse fsync on a directory).
void sync_directory_of(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  // (Not `dir = "."` on an empty string: GCC 12 warns falsely about that assignment, -Wrestrict.)
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Writes all of `bytes` to fd, retrying after EINTR and short writes; false with errno on failure.
bool write_all(int fd, const char* bytes, size_t size) {
  while (size > 0) {
    const ssize_t done = ::write(fd, bytes, size);
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) {
      if (done == 0) errno = ENOSPC;
      return false;
    }
    bytes += done;
    size -= size_t(done);
  }
  return true;
}

}  // namespace

AtomicFile::AtomicFile(std::string path, std::string label)
    : path_(std::move(path)), label_(label.empty() ? path_ : std::move(label)) {
  static std::atomic<unsigned> counter{0};
  tmp_path_ = path_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) throw FileError(fmt::format("{}: cannot create {} ({})", label_, tmp_path_, errno_text()));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_path_.c_str());
}

void AtomicFile::write(const void* bytes, size_t size) {
  if (!write_all(fd_, static_cast<const char*>(bytes), size))
    throw FileError(fmt::format("{}: write to {} failed ({})", label_, tmp_path_, errno_text()));
  test_point("atomic-write");
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0)
    throw FileError(fmt::format("{}: fsync of {} failed ({})", label_, tmp_path_, errno_text()));
  const int closed = ::close(fd_);
  fd_ = -1;
  if (closed != 0)
    throw FileError(fmt::format("{}: closing {} failed ({})", label_, tmp_path_, errno_text()));
  test_point("atomic-rename");
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0)
    throw FileError(fmt::format("{}: cannot rename {} over it ({})", label_, tmp_path_, errno_text()));
  committed_ = true;
  sync_directory_of(path_);
}

void write_file_atomically(const std::string& path, const std::string& text, const std::string& label) {
  AtomicFile file(path, label);
  file.write(text);
  file.commit();
}

void append_line_synced(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw FileError(fmt::format("{}: cannot open for appending ({})", path, errno_text()));
  const std::string text = line + "\n";
  const bool written = write_all(fd, text.data(), text.size()) && ::fsync(fd) == 0;
  const std::string why = written ? "" : errno_text();
  const bool closed = ::close(fd) == 0;
  if (!written || !closed)
    throw FileError(fmt::format("{}: appending a line failed ({})", path, written ? errno_text() : why));
}

bool is_atomic_temporary(const std::string& filename) {
  // "<name>.tmp.<digits>.<digits>" with a non-empty name
  const size_t tmp = filename.rfind(".tmp.");
  if (tmp == std::string::npos || tmp == 0) return false;
  const std::string numbers = filename.substr(tmp + 5);
  const size_t dot = numbers.find('.');
  auto digits = [](const std::string& text) {
    return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  };
  return dot != std::string::npos && digits(numbers.substr(0, dot)) && digits(numbers.substr(dot + 1));
}

}  // namespace kindling

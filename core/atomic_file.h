// Files that are either the old version or the new one, never half of each: the bytes go to a
// temporary "<path>.tmp.<pid>.<n>" (a name no other process or writer uses), are fsync'd, and the
// temporary is renamed over <path>; the directory is fsync'd after. Plain POSIX calls, checked
// one by one, so a full disk, a failing fsync or rename is an error naming the file.
#pragma once
#include <cstddef>
#include <string>

namespace kindling {

class AtomicFile {
 public:
  // Creates the temporary. `label` starts every error message (default: the path), e.g.
  // "checkpoint run/last.safetensors". Throws FileError when the temporary cannot be created.
  explicit AtomicFile(std::string path, std::string label = "");
  ~AtomicFile();  // without commit(): closes and removes the temporary; <path> is untouched
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* bytes, size_t size);  // FileError on a short or failed write
  void write(const std::string& text) { write(text.data(), text.size()); }
  // fsync, close, rename over the path, fsync the directory. FileError when any step fails; the
  // temporary is then removed and the old file, if any, stays.
  void commit();

  const std::string& temporary_path() const { return tmp_path_; }

 private:
  std::string path_, label_, tmp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// The whole of `text` as <path>, atomically (AtomicFile).
void write_file_atomically(const std::string& path, const std::string& text, const std::string& label = "");

// Appends `line` and a newline to <path> (created when missing) and fsyncs it; FileError naming
// the path when any step fails. A crash mid-append can leave a torn last line, which readers of
// such logs drop.
void append_line_synced(const std::string& path, const std::string& line);

// True for the names AtomicFile gives its temporaries ("<anything>.tmp.<pid>.<n>").
bool is_atomic_temporary(const std::string& filename);

}  // namespace kindling

// An LD_PRELOAD library that makes file system calls fail, to test kindling's runs against full
// disks and failing devices without root or a small tmpfs. Only calls on paths containing
// KINDLING_FAULT_MATCH count. KINDLING_FAULT="<call>@<n>" makes the n-th such call and every later
// one fail: write (ENOSPC, a full disk), fsync (EIO), rename (EIO) or open (ENOSPC, when creating);
// KINDLING_FAULT="readonly" fails every creation, rename and removal there with EROFS.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

struct Fault {
  std::string call, match;
  long from = 0;  // the first failing call, 1-based
  long seen = 0;
};

Fault& fault() {
  static Fault f = [] {
    Fault parsed;
    const char* spec = std::getenv("KINDLING_FAULT");
    const char* match = std::getenv("KINDLING_FAULT_MATCH");
    if (!spec || !match) return parsed;
    parsed.match = match;
    const std::string text = spec;
    const size_t at = text.find('@');
    parsed.call = text.substr(0, at);
    parsed.from = at == std::string::npos ? 1 : std::atol(text.c_str() + at + 1);
    return parsed;
  }();
  return f;
}

bool matches(const char* path) {
  return path && !fault().match.empty() && std::strstr(path, fault().match.c_str());
}

std::string path_of(int fd) {
  char link[64], target[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, target, sizeof target - 1);
  return n > 0 ? std::string(target, size_t(n)) : std::string();
}

// True when this call of `call` on `path` must fail.
bool should_fail(const char* call, const char* path) {
  Fault& f = fault();
  if (f.call == "readonly")
    return std::strcmp(call, "write") != 0 && std::strcmp(call, "fsync") != 0 && matches(path);
  if (f.call != call || !matches(path)) return false;
  return ++f.seen >= f.from;
}

template <typename Fn>
Fn next(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

int fail(int error) {
  errno = fault().call == "readonly" ? EROFS : error;
  return -1;
}

int open_impl(const char* path, int flags, mode_t mode) {
  using Open = int (*)(const char*, int, ...);
  static const Open real = next<Open>("open");
  if ((flags & O_CREAT) && should_fail("open", path)) return fail(ENOSPC);
  return real(path, flags, mode);
}

}  // namespace

extern "C" {

// (kindling calls open; on 64-bit Linux open64 is the same call and is not used.)
int open(const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = (flags & O_CREAT) ? mode_t(va_arg(args, int)) : 0;
  va_end(args);
  return open_impl(path, flags, mode);
}

ssize_t write(int fd, const void* bytes, size_t size) {
  using Write = ssize_t (*)(int, const void*, size_t);
  static const Write real = next<Write>("write");
  if (fd > 2 && !fault().match.empty() && should_fail("write", path_of(fd).c_str())) return fail(ENOSPC);
  return real(fd, bytes, size);
}

int fsync(int fd) {
  using Fsync = int (*)(int);
  static const Fsync real = next<Fsync>("fsync");
  if (!fault().match.empty() && should_fail("fsync", path_of(fd).c_str())) return fail(EIO);
  return real(fd);
}

int rename(const char* from, const char* to) {
  using Rename = int (*)(const char*, const char*);
  static const Rename real = next<Rename>("rename");
  if (should_fail("rename", to)) return fail(EIO);
  return real(from, to);
}

int mkdir(const char* path, mode_t mode) {
  using Mkdir = int (*)(const char*, mode_t);
  static const Mkdir real = next<Mkdir>("mkdir");
  if (fault().call == "readonly" && matches(path)) return fail(EROFS);
  return real(path, mode);
}

}  // extern "C"

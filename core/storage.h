// Storage: a block of bytes on one device, shared by every tensor that views it. It also carries the
// version counter that in-place ops bump and autograd checks, so a saved tensor that was changed
// in place is caught at backward time whatever view changed it.
#pragma once
#include "core/allocator.h"
#include "core/dtype.h"

namespace kindling {

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
  uint64_t version_ = 0;
};

}  // namespace kindling

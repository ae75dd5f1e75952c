#include "core/storage.h"

#include "core/backend.h"

namespace kindling {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  allocator_ = &backend(device).allocator();
  if (nbytes_ > 0) data_ = allocator_->allocate(nbytes_);
}

Storage::~Storage() {
  if (data_) allocator_->deallocate(data_, nbytes_);
}

}  // namespace kindling

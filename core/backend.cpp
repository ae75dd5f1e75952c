// Backend lookup: a table of providers, one per device type, filled by the layer that holds the
// kernels (ops/backends.cpp) and read here. Each backend is made on first use and never destroyed:
// it outlives every static tensor.
#include "core/backend.h"

#include <array>
#include <cstdlib>
#include <mutex>
#include <string_view>

namespace kindling {
namespace {

constexpr size_t kDeviceTypes = 2;  // DeviceType::CPU, DeviceType::CUDA

struct Slot {
  BackendProvider provider;
  std::once_flag made;
  Backend* backend = nullptr;
  std::string why_not;
};

std::array<Slot, kDeviceTypes>& slots() {
  static std::array<Slot, kDeviceTypes> table;  // function-local: ready for registrations at start-up
  return table;
}

const char* type_name(DeviceType type) { return type == DeviceType::CPU ? "cpu" : "cuda"; }

// The slot of `type` with its backend made (or the reason it could not be).
Slot& made_slot(DeviceType type) {
  Slot& slot = slots()[size_t(type)];
  std::call_once(slot.made, [&] {
    if (slot.provider.make == nullptr) {
      slot.why_not = type == DeviceType::CUDA
                         ? "built without CUDA (configure with -DKINDLING_CUDA=ON)"
                         : "no CPU backend is registered (link kindling::kindling, whose ops layer "
                           "registers it)";
      return;
    }
    slot.backend = slot.provider.make(slot.why_not);
  });
  return slot;
}

}  // namespace

void register_backend(DeviceType type, BackendProvider provider) {
  KINDLING_CHECK(provider.make != nullptr, ValueError, "register_backend({}): no factory", type_name(type));
  Slot& slot = slots()[size_t(type)];
  KINDLING_CHECK(slot.provider.make == nullptr, ValueError,
                 "register_backend({}): a backend is already registered", type_name(type));
  slot.provider = provider;
}

Backend& cpu_backend() {
  Slot& slot = made_slot(DeviceType::CPU);
  if (slot.backend == nullptr) throw DeviceError(fmt::format("cpu backend: {}", slot.why_not));
  return *slot.backend;
}

bool cuda_required() {
  const char* value = std::getenv("KINDLING_REQUIRE_CUDA");
  return value != nullptr && std::string_view(value) != "" && std::string_view(value) != "0";
}

std::string cuda_unavailable_reason() { return made_slot(DeviceType::CUDA).why_not; }

bool cuda_available() {
  const Slot& slot = made_slot(DeviceType::CUDA);
  if (slot.backend == nullptr && cuda_required())
    throw DeviceError(fmt::format("KINDLING_REQUIRE_CUDA is set but CUDA is unavailable: {}", slot.why_not));
  return slot.backend != nullptr;
}

int cuda_device_count() {
  const BackendProvider& provider = slots()[size_t(DeviceType::CUDA)].provider;
  return provider.device_count != nullptr ? provider.device_count() : 0;
}

Backend& backend(Device device) {
  if (device.is_cpu()) return cpu_backend();
  const Slot& slot = made_slot(DeviceType::CUDA);
  if (slot.backend == nullptr)
    throw DeviceError(
        fmt::format("device {} requested, but no CUDA GPU is available: {}", device.str(), slot.why_not));
  return *slot.backend;
}

}  // namespace kindling

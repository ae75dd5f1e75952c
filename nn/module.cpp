#include "nn/module.h"

#include "core/autograd.h"

#include <unordered_set>

namespace kindling {

const Tensor* find_tensor(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [key, tensor] : tensors)
    if (key == name) return &tensor;
  return nullptr;
}

namespace {
void check_name(const std::string& name, const char* what) {
  KINDLING_CHECK(!name.empty() && name.find('.') == std::string::npos, ValueError,
                 "Module: {} name '{}' must be non-empty and contain no '.'", what, name);
}
}  // namespace

Tensor& Module::register_parameter(const std::string& name, Tensor tensor) {
  check_name(name, "parameter");
  KINDLING_CHECK(tensor.defined() && tensor.dtype() == DType::f32, DTypeError,
                 "Module: parameter '{}' must be a defined f32 tensor, got {}", name, tensor.describe());
  tensor = tensor.detach();
  tensor.set_requires_grad(true);
  parameters_.push_back({name, std::move(tensor), false});
  return parameters_.back().tensor;
}

Tensor& Module::register_buffer(const std::string& name, Tensor tensor, bool host_only) {
  check_name(name, "buffer");
  KINDLING_CHECK(tensor.defined(), ValueError, "Module: buffer '{}' is undefined", name);
  buffers_.push_back({name, tensor.detach(), host_only});
  return buffers_.back().tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name(name, "child module");
  KINDLING_CHECK(module != nullptr, ValueError, "Module: child '{}' is null", name);
  for (const auto& [existing, unused] : children_)
    KINDLING_CHECK(existing != name, ValueError, "Module: a child named '{}' already exists", name);
  children_.emplace_back(name, std::move(module));
}

Module& Module::child(const std::string& name) const {
  for (const auto& [key, module] : children_)
    if (key == name) return *module;
  throw ValueError(fmt::format("Module {}: no child named '{}'", describe(), name));
}

void Module::train(bool training) {
  training_ = training;
  for (auto& [name, module] : children_) module->train(training);
}

void Module::collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const {
  if (params)
    for (const Entry& e : parameters_) out.emplace_back(prefix + e.name, e.tensor);
  if (buffers)
    for (const Entry& e : buffers_) out.emplace_back(prefix + e.name, e.tensor);
  for (const auto& [name, module] : children_) module->collect(prefix + name + ".", params, buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors all;
  collect("", true, false, all);
  // A parameter shared by two modules is listed once, under its first name, as in PyTorch.
  NamedTensors unique;
  std::unordered_set<const TensorImpl*> seen;
  for (auto& entry : all)
    if (seen.insert(entry.second.impl()).second) unique.push_back(std::move(entry));
  return unique;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out.push_back(tensor);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, true, out);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect("", true, true, out);
  return out;
}

void copy_named_tensors(const NamedTensors& destination, const NamedTensors& source, const char* context,
                        const char* owner) {
  for (const auto& [name, tensor] : destination) {
    const Tensor* given = find_tensor(source, name);
    KINDLING_CHECK(given != nullptr, ValueError, "{}: {} is missing", context, name);
    KINDLING_CHECK(given->shape() == tensor.shape(), ValueError, "{}: {} is {}, the {} expects {}", context,
                   name, shape_str(given->shape()), owner, shape_str(tensor.shape()));
    KINDLING_CHECK(given->dtype() == tensor.dtype(), ValueError, "{}: {} is {}, the {} expects {}", context,
                   name, dtype_name(given->dtype()), owner, dtype_name(tensor.dtype()));
  }
  for (const auto& [name, tensor] : source)
    KINDLING_CHECK(find_tensor(destination, name) != nullptr, ValueError, "{}: unexpected tensor {}", context,
                   name);
  NoGradGuard no_grad;
  for (const auto& [name, tensor] : destination) {
    Tensor target = tensor;
    target.copy_(*find_tensor(source, name));
  }
}

void Module::load_state_dict(const NamedTensors& state) {
  copy_named_tensors(state_dict(), state, "load_state_dict", "model");
}

int64_t Module::num_parameters() const {
  int64_t total = 0;
  for (const Tensor& p : parameters()) total += p.numel();
  return total;
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.set_grad(Tensor());
}

void move_to_device_in_place(const Tensor& t, Device device) {
  if (t.device() == device) return;
  KINDLING_CHECK(t.is_leaf(), AutogradError,
                 "move_to_device_in_place: {} is the output of {}, only a leaf tensor can move in place",
                 t.describe(), t.grad_fn()->name());
  const Tensor moved = t.detach().to(device);  // a contiguous copy
  TensorImpl& impl = *t.impl();
  impl.storage = moved.storage();
  impl.strides = moved.strides();
  impl.offset = moved.offset();
  if (impl.grad.defined()) impl.grad = impl.grad.to(device);
  // A graph recorded before the move ends in an accumulator that describes the old device; the
  // next use of the tensor gets a fresh one.
  impl.grad_accumulator.reset();
}

void Module::to(Device device) {
  for (Entry& e : parameters_) move_to_device_in_place(e.tensor, device);
  for (Entry& e : buffers_)
    if (!e.host_only) move_to_device_in_place(e.tensor, device);
  for (auto& [name, module] : children_) module->to(device);
}

Device Module::device() const {
  for (const Entry& e : parameters_) return e.tensor.device();
  for (const Entry& e : buffers_)
    if (!e.host_only) return e.tensor.device();
  for (const auto& [name, module] : children_)
    if (!module->parameters().empty() || !module->named_buffers().empty()) return module->device();
  return Device::cpu();
}

void Module::print(std::string& out, const std::string& name, int indent) const {
  out += std::string(size_t(indent) * 2, ' ');
  if (!name.empty()) out += "(" + name + "): ";
  out += describe();
  if (children_.empty()) {
    out += "\n";
    return;
  }
  out += " (\n";
  for (const auto& [child_name, module] : children_) module->print(out, child_name, indent + 1);
  out += std::string(size_t(indent) * 2, ' ') + ")\n";
}

std::string Module::str() const {
  std::string out;
  print(out, "", 0);
  return out;
}

}  // namespace kindling

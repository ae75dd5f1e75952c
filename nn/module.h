// Module: the base of every layer and model. A module owns named parameters (leaf tensors that
// require grad), named buffers (state that is saved but not trained: BatchNorm's running
// statistics) and named children, in registration order, so state_dict() produces the names and the
// order PyTorch gives the same model (`layer1.0.conv1.weight`, `layer1.0.bn1.running_mean`, ...).
#pragma once
#include "core/tensor.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kindling {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Layers keep pointers into their own registries, so a module is never copied or moved.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // x -> y. Requires what the concrete layer documents (shape, dtype f32, the module's device).
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
  // "Conv2d(16, 32, kernel_size=3, stride=2, padding=1, bias=false)": one line, for printing.
  virtual std::string describe() const = 0;
  // The module tree, one line per module, indented as PyTorch prints it.
  std::string str() const;

  // ---- modes: train() switches BatchNorm to batch statistics and enables Dropout ----
  void train(bool training = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // ---- parameters and state ----
  // Every parameter of this module and its descendants, each once, in registration order.
  std::vector<Tensor> parameters() const;
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  // Parameters and buffers, each module's own before its children's, as PyTorch orders them. The
  // tensors are the module's own (not copies): writing into them changes the model.
  NamedTensors state_dict() const;
  // Copies every tensor of `state` into the tensor of the same name (any device, same shape and
  // dtype). Throws ValueError naming the first tensor missing from `state`, unexpected in it, or of
  // the wrong shape or dtype; nothing is copied unless everything matches.
  void load_state_dict(const NamedTensors& state);
  // Total element count of the trainable parameters.
  int64_t num_parameters() const;
  // Drops every parameter's gradient (the next backward allocates a fresh one).
  void zero_grad();
  // Moves parameters (with their gradients) and device buffers to `device` in place, as PyTorch
  // does: each tensor keeps its identity, so handles taken before the move (named_parameters(),
  // an optimizer built earlier) see the new device. A no-op for tensors already there.
  void to(Device device);
  Device device() const;  // the device of the first parameter or device buffer (CPU if none)

  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  // The direct child named `name`; ValueError when there is none.
  Module& child(const std::string& name) const;

 protected:
  // Registration returns a reference that stays valid for the module's life, also across to().
  // `tensor` must be f32; it becomes a leaf that requires grad.
  Tensor& register_parameter(const std::string& name, Tensor tensor);
  // host_only: the buffer stays on the CPU whatever the module's device (a host-side counter such
  // as num_batches_tracked, updated without touching the device).
  Tensor& register_buffer(const std::string& name, Tensor tensor, bool host_only = false);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  struct Entry {
    std::string name;
    Tensor tensor;
    bool host_only = false;
  };
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const;
  void print(std::string& out, const std::string& name, int indent) const;

  std::deque<Entry> parameters_;  // deque: references handed out stay valid on growth
  std::deque<Entry> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Moves t's data to `device` in place: t keeps its identity (every handle to it sees the new device
// and contiguous strides), and its gradient moves with it. Requires a leaf tensor (no grad_fn).
void move_to_device_in_place(const Tensor& t, Device device);

// Finds `name` in `tensors`; null when absent.
const Tensor* find_tensor(const NamedTensors& tensors, const std::string& name);
// Copies `source` into the tensors of `destination` by name, after checking that it holds exactly
// those names with the same shapes and dtypes; ValueError "<context>: <name> is missing", "... is
// [16,3,3,3], the <owner> expects [32,3,3,3]" or "<context>: unexpected tensor <name>", and nothing
// is copied unless every tensor matches.
void copy_named_tensors(const NamedTensors& destination, const NamedTensors& source, const char* context,
                        const char* owner);

}  // namespace kindling

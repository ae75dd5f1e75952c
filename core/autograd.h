// Reverse-mode autograd in micrograd's shape: a Node per recorded op holds edges to the nodes that
// produced its inputs and a backward function; backward() visits nodes in reverse topological order,
// sums the gradients flowing into each input, and leaves end in AccumulateGrad, which adds into the
// leaf's .grad. Backward formulas live beside their forward op in ops/. The engine's per-node state
// sits in one open-addressing table (autograd.cpp) rather than hash maps: a small-batch step records
// hundreds of nodes and the maps' allocations showed up in its profile.
#pragma once
#include "core/tensor.h"

#include <functional>
#include <string>
#include <vector>

namespace kindling {

struct Edge {
  std::shared_ptr<Node> node;  // null: this input needs no gradient
  uint32_t output_nr = 0;      // which output of `node` the tensor was (TensorImpl::output_nr)
  bool valid() const { return node != nullptr; }
};

struct OutputMeta {
  Shape shape;
  DType dtype;
  Device device;
};

class Node {
 public:
  virtual ~Node() = default;
  virtual std::string name() const = 0;
  // grads: one per forward output (missing ones are zero-filled by the engine).
  // Returns one gradient per next_edges entry; undefined where the input needs none.
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grads) = 0;
  // Drops saved tensors after a backward without retain_graph; a later apply must throw.
  virtual void release_saved() {}

  std::vector<Edge> next_edges;
  std::vector<OutputMeta> outputs;
  uint64_t sequence_nr = 0;  // creation order: later nodes run first among ready ones
};

// A tensor kept for backward. It keeps a detached alias (no grad_fn, so no reference cycle when an
// op saves its own output) and the storage version at save time; unpack() throws AutogradError if
// an in-place op changed the storage since.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  const Tensor& unpack() const;
  bool defined() const { return tensor_.defined(); }

 private:
  Tensor tensor_;
  uint64_t version_ = 0;
};

// What a backward function receives: the gradients of the outputs and which inputs need one.
struct GradOutputs {
  std::vector<Tensor> grads;
  std::vector<bool> needs_input_grad;
  const Tensor& operator[](size_t i) const { return grads[i]; }
  bool needs(size_t i) const { return needs_input_grad[i]; }
};
using BackwardFn = std::function<std::vector<Tensor>(const GradOutputs&)>;

// True when grad mode is on and any of the tensors requires grad.
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node named `name` to `outputs`, with one edge per input and `backward` as its formula.
// Call only when needs_grad(inputs). The closure owns its SavedTensors; they are freed with it.
void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn backward);
inline void record(const char* name, const std::vector<Tensor>& inputs, const Tensor& output,
                   BackwardFn backward) {
  record(name, inputs, std::vector<Tensor>{output}, std::move(backward));
}

// The engine: accumulates d(roots)/d(leaf) · root_grads into every reachable leaf's grad.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads, bool retain_graph);

// Runs hook(leaf.grad) each time a backward has accumulated into the leaf's grad, once per backward
// (after every use of the leaf in the graph has been summed). Data-parallel training launches its
// gradient all-reduce from here, while backward goes on. Requires a leaf that requires grad.
void register_post_accumulate_grad_hook(const Tensor& leaf, std::function<void(const Tensor& grad)> hook);
void clear_post_accumulate_grad_hooks(const Tensor& leaf);

// Grad mode is thread-local; NoGradGuard turns it off for a scope (optimizers, evaluation).
struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};
class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace kindling

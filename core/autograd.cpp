// The autograd engine: record() builds the graph during forward, run_backward() walks it once.
#include "core/autograd.h"

#include "core/backend.h"

#include <atomic>
#include <queue>
#include <utility>

namespace kindling {
namespace {

thread_local bool tls_grad_enabled = true;
std::atomic<uint64_t> next_sequence_nr{0};

// A recorded op: its backward formula is a closure that owns the op's SavedTensors.
class FunctionNode final : public Node {
 public:
  FunctionNode(const char* name, BackwardFn fn) : name_(name), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }

  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    KINDLING_CHECK(fn_ != nullptr, AutogradError,
                   "{}: trying to backward through the graph a second time; its saved tensors were "
                   "freed after the first backward (pass retain_graph=true to keep them)",
                   name_);
    GradOutputs outputs{std::move(grads), {}};
    for (const Edge& e : next_edges) outputs.needs_input_grad.push_back(e.valid());
    return fn_(outputs);
  }

  void release_saved() override { fn_ = nullptr; }

 private:
  std::string name_;
  BackwardFn fn_;
};

// The sink for a leaf: adds the incoming gradient into leaf.grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {}
  std::string name() const override { return "AccumulateGrad"; }

  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor& g = grads[0];
    Tensor& accumulated = leaf_->grad;
    if (!accumulated.defined()) {
      // Own the buffer: a gradient that is a view of another tensor must not be updated in place
      // by the next accumulation.
      accumulated = (g.storage().use_count() > 1 || !g.is_contiguous()) ? g.detach().clone() : g.detach();
    } else {
      accumulated.add_(g);
    }
    for (const auto& hook : leaf_->post_accumulate_grad_hooks) hook(accumulated);
    return {};
  }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  TensorImpl* impl = t.impl();
  if (impl->grad_fn) return {impl->grad_fn, impl->output_nr};
  std::shared_ptr<Node> accumulator = impl->grad_accumulator.lock();
  if (!accumulator) {
    accumulator = std::make_shared<AccumulateGrad>(t.impl_ptr());
    accumulator->outputs.push_back({t.shape(), t.dtype(), t.device()});
    accumulator->sequence_nr = next_sequence_nr++;
    impl->grad_accumulator = accumulator;
  }
  return {accumulator, 0};
}

// The state of each node of one backward pass, found by the node's address: open addressing with
// linear probing in one array, so that a backward costs no allocation per node in each of several
// hash maps (the engine's own cost counts for small graphs such as a fused loss). The array is kept
// per thread for the next backward, emptied but with its capacity (and its grads vectors').
class NodeTasks {
 public:
  NodeTasks() : slots_(std::exchange(spare(), {})) {
    if (slots_.empty()) slots_.resize(32);  // a power of two
  }
  ~NodeTasks() {
    for (Task& task : slots_) {
      task.node = nullptr;
      task.dependencies = 0;
      task.visited = task.queued = false;
      task.grads.clear();
    }
    if (spare().empty()) spare() = std::move(slots_);  // a nested backward's table is dropped
  }
  NodeTasks(const NodeTasks&) = delete;
  NodeTasks& operator=(const NodeTasks&) = delete;

  struct Task {
    Node* node = nullptr;
    int dependencies = 0;       // edges from nodes not yet run
    bool visited = false;       // reached by the dependency count
    bool queued = false;        // pushed to the ready queue
    std::vector<Tensor> grads;  // one per output of node, as gradients arrive
  };

  // The task of `node`, created on first use. References stay valid until the next creation.
  Task& get(Node* node) {
    size_t i = probe(node);
    if (slots_[i].node == node) return slots_[i];
    if (2 * (size_ + 1) > slots_.size()) {
      grow();
      i = probe(node);
    }
    ++size_;
    slots_[i].node = node;
    return slots_[i];
  }

 private:
  size_t probe(const Node* node) const {
    const size_t mask = slots_.size() - 1;
    uint64_t h = uint64_t(reinterpret_cast<uintptr_t>(node)) * 0x9E3779B97F4A7C15ull;
    size_t i = size_t(h >> 32) & mask;
    while (slots_[i].node != nullptr && slots_[i].node != node) i = (i + 1) & mask;
    return i;
  }

  void grow() {
    std::vector<Task> old = std::exchange(slots_, std::vector<Task>(2 * slots_.size()));
    for (Task& task : old)
      if (task.node != nullptr) slots_[probe(task.node)] = std::move(task);
  }

  static std::vector<Task>& spare() {
    thread_local std::vector<Task> slots;
    return slots;
  }

  std::vector<Task> slots_;
  size_t size_ = 0;
};

}  // namespace

bool GradMode::is_enabled() { return tls_grad_enabled; }
void GradMode::set_enabled(bool enabled) { tls_grad_enabled = enabled; }

SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  tensor_ = t.detach();
  version_ = t.storage()->version();
}

const Tensor& SavedTensor::unpack() const {
  KINDLING_CHECK(!tensor_.defined() || tensor_.storage()->version() == version_, AutogradError,
                 "a tensor saved for backward ({}) was modified by an in-place operation after it "
                 "was saved (version {} now, {} when saved)",
                 tensor_.describe(), tensor_.storage()->version(), version_);
  return tensor_;
}

void register_post_accumulate_grad_hook(const Tensor& leaf, std::function<void(const Tensor& grad)> hook) {
  KINDLING_CHECK(leaf.defined() && leaf.is_leaf() && leaf.requires_grad(), AutogradError,
                 "register_post_accumulate_grad_hook: expected a leaf that requires grad, found {}",
                 leaf.defined() ? leaf.describe() : "an undefined tensor");
  leaf.impl()->post_accumulate_grad_hooks.push_back(std::move(hook));
}

void clear_post_accumulate_grad_hooks(const Tensor& leaf) {
  if (leaf.defined()) leaf.impl()->post_accumulate_grad_hooks.clear();
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn backward) {
  auto node = std::make_shared<FunctionNode>(name, std::move(backward));
  node->sequence_nr = next_sequence_nr++;
  for (const Tensor& input : inputs) node->next_edges.push_back(gradient_edge(input));
  for (uint32_t i = 0; i < outputs.size(); ++i) {
    TensorImpl* impl = outputs[i].impl();
    node->outputs.push_back({impl->shape, impl->dtype, outputs[i].device()});
    impl->grad_fn = node;
    impl->output_nr = i;
    impl->requires_grad = true;
  }
}

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads,
                  bool retain_graph) {
  NoGradGuard no_grad;  // backward formulas do not record
  NodeTasks tasks;
  std::vector<std::shared_ptr<Node>> root_nodes;

  auto accumulate = [&](const Edge& edge, Tensor grad) {
    Node* node = edge.node.get();
    const OutputMeta& meta = node->outputs[edge.output_nr];
    KINDLING_CHECK(grad.shape() == meta.shape, AutogradError,
                   "backward: {} received a gradient of shape {} for an output of shape {}", node->name(),
                   shape_str(grad.shape()), shape_str(meta.shape));
    std::vector<Tensor>& grads = tasks.get(node).grads;
    if (grads.empty()) grads.resize(node->outputs.size());
    Tensor& slot = grads[edge.output_nr];
    if (!slot.defined()) {
      slot = std::move(grad);
    } else if (slot.impl_ptr().use_count() == 1 && slot.storage().use_count() == 1 && slot.is_contiguous()) {
      // Nothing else holds the slot's buffer, and each element has its own float (not a
      // broadcast view such as sum's gradient): summed in place, one pass and no copy.
      slot.add_(grad);
    } else {
      // Never update a gradient that another node, a view or the caller may still hold: the sum
      // goes to a new buffer, in one pass over both.
      Tensor sum = empty(slot.shape(), TensorOptions{}.with_device(slot.device()));
      backend(slot.device()).binary(BinaryOp::Add, sum, slot, grad);
      slot = sum;
    }
  };

  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& root = roots[i];
    KINDLING_CHECK(root.requires_grad(), AutogradError,
                   "backward: the tensor ({}) does not require grad and has no grad_fn", root.describe());
    Tensor grad = i < root_grads.size() ? root_grads[i] : Tensor();
    if (!grad.defined()) {
      KINDLING_CHECK(root.numel() == 1, AutogradError,
                     "backward: a gradient can be implied only for a single-element output; this "
                     "output is {} — pass a gradient of that shape",
                     root.describe());
      grad = ones_like(root);
    }
    KINDLING_CHECK(grad.shape() == root.shape(), ShapeError,
                   "backward: gradient {} does not match the output {}", grad.describe(), root.describe());
    Edge edge = gradient_edge(root);
    accumulate(edge, grad.detach());
    root_nodes.push_back(edge.node);
  }

  // Count, for each node, how many edges reach it from the roots.
  std::vector<Node*> stack;
  for (auto& node : root_nodes) {
    NodeTasks::Task& task = tasks.get(node.get());
    if (!task.visited) {
      task.visited = true;
      stack.push_back(node.get());
    }
  }
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const Edge& e : node->next_edges) {
      if (!e.valid()) continue;
      NodeTasks::Task& task = tasks.get(e.node.get());
      ++task.dependencies;
      if (!task.visited) {
        task.visited = true;
        stack.push_back(e.node.get());
      }
    }
  }

  auto later_first = [](const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) {
    return a->sequence_nr < b->sequence_nr;
  };
  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, decltype(later_first)> ready(
      later_first);
  auto queue_if_ready = [&](const std::shared_ptr<Node>& node) {
    NodeTasks::Task& task = tasks.get(node.get());
    if (task.dependencies == 0 && !task.queued) {
      task.queued = true;
      ready.push(node);
    }
  };
  for (auto& node : root_nodes) queue_if_ready(node);

  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.top();
    ready.pop();
    std::vector<Tensor> grads = std::move(tasks.get(node.get()).grads);
    grads.resize(node->outputs.size());
    bool any = false;
    for (size_t i = 0; i < grads.size(); ++i) {
      if (grads[i].defined()) {
        any = true;
      } else {
        const OutputMeta& meta = node->outputs[i];
        grads[i] = zeros(meta.shape, TensorOptions{}.with_dtype(meta.dtype).with_device(meta.device));
      }
    }
    std::vector<Tensor> input_grads;
    if (any) input_grads = node->apply(std::move(grads));
    if (!retain_graph) node->release_saved();
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.valid()) continue;
      if (i < input_grads.size() && input_grads[i].defined()) accumulate(e, std::move(input_grads[i]));
      --tasks.get(e.node.get()).dependencies;
      queue_if_ready(e.node);
    }
  }
}

}  // namespace kindling

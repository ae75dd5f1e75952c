// Bucketed gradient all-reduce, and the broadcast and averaging of whole tensor lists.
#include "dist/gradient_reducer.h"

#include "core/autograd.h"

namespace kindling::dist {

GradientReducer::GradientReducer(Communicator& comm, std::vector<Tensor> parameters, int64_t bucket_bytes)
    : comm_(comm), parameters_(std::move(parameters)) {
  bucket_of_.resize(parameters_.size());
  arrived_.assign(parameters_.size(), 0);
  int64_t bucket_elements = 0;
  for (size_t k = parameters_.size(); k-- > 0;) {
    const Tensor& p = parameters_[k];
    KINDLING_CHECK(p.requires_grad() && p.dtype() == DType::f32 && p.device() == parameters_[0].device(),
                   DistError, "gradient reducer: parameter {} is {}; expected f32 on {}, requiring grad", k,
                   p.describe(), parameters_[0].device().str());
    if (buckets_.empty() || bucket_elements * 4 >= bucket_bytes) {
      buckets_.emplace_back();
      bucket_elements = 0;
    }
    Bucket& bucket = buckets_.back();
    bucket.members.push_back(k);
    bucket.offsets.push_back(bucket_elements);
    bucket_elements += p.numel();
    bucket_of_[k] = buckets_.size() - 1;
  }
  for (Bucket& bucket : buckets_) {
    int64_t total = 0;
    for (size_t k : bucket.members) total += parameters_[k].numel();
    bucket.flat = zeros({total}, TensorOptions{}.with_device(parameters_[0].device()));
  }
  for (size_t k = 0; k < parameters_.size(); ++k)
    register_post_accumulate_grad_hook(parameters_[k], [this, k](const Tensor&) { on_ready(k); });
}

GradientReducer::~GradientReducer() {
  for (const Tensor& p : parameters_) clear_post_accumulate_grad_hooks(p);
}

void GradientReducer::prepare() {
  KINDLING_CHECK(!active_, DistError, "gradient reducer: prepare() twice without finish()");
  for (Bucket& bucket : buckets_) bucket.ready = 0;
  std::fill(arrived_.begin(), arrived_.end(), uint8_t{0});
  next_to_launch_ = 0;
  active_ = true;
}

void GradientReducer::on_ready(size_t parameter) {
  if (!active_ || arrived_[parameter]) return;  // a backward outside a step, or a second one
  arrived_[parameter] = 1;
  ++buckets_[bucket_of_[parameter]].ready;
  while (next_to_launch_ < buckets_.size() &&
         buckets_[next_to_launch_].ready == buckets_[next_to_launch_].members.size())
    launch(buckets_[next_to_launch_++]);
}

void GradientReducer::launch(Bucket& bucket) {
  NoGradGuard no_grad;
  for (size_t i = 0; i < bucket.members.size(); ++i) {
    const Tensor& p = parameters_[bucket.members[i]];
    Tensor slot = bucket.flat.narrow(0, bucket.offsets[i], p.numel());
    if (p.grad().defined()) {
      slot.copy_(p.grad().reshape({p.numel()}));
    } else {
      slot.zero_();
    }
  }
  bucket.work = comm_.all_reduce_async(bucket.flat);
}

void GradientReducer::finish() {
  KINDLING_CHECK(active_, DistError, "gradient reducer: finish() without prepare()");
  active_ = false;
  while (next_to_launch_ < buckets_.size()) launch(buckets_[next_to_launch_++]);
  NoGradGuard no_grad;
  for (Bucket& bucket : buckets_) {
    bucket.work->wait();
    bucket.work.reset();
    for (size_t i = 0; i < bucket.members.size(); ++i) {
      Tensor& p = parameters_[bucket.members[i]];
      Tensor grad = p.grad();
      const Tensor sum = bucket.flat.narrow(0, bucket.offsets[i], p.numel()).reshape(p.shape());
      if (grad.defined()) {
        grad.copy_(sum);
      } else {
        p.set_grad(sum.clone());  // unused here, used on another rank
      }
    }
  }
}

void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int root) {
  NoGradGuard no_grad;
  for (const Tensor& t : tensors) {
    if (t.is_contiguous()) {
      comm.broadcast(t, root);
    } else {
      Tensor packed = t.contiguous();
      comm.broadcast(packed, root);
      Tensor(t).copy_(packed);
    }
  }
}

void average_tensors(Communicator& comm, const std::vector<Tensor>& tensors) {
  NoGradGuard no_grad;
  for (const Tensor& t : tensors) {
    if (t.dtype() != DType::f32) continue;  // counters stay rank 0's
    Tensor sum = t.contiguous().clone();
    comm.all_reduce(sum);
    Tensor(t).copy_(sum.mul_(1.0 / comm.size()));
  }
}

}  // namespace kindling::dist

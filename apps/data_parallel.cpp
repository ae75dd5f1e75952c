// DataParallel: what a training run does differently on N ranks.
#include "apps/data_parallel.h"

#include "core/autograd.h"
#include "nn/layers.h"
#include "ops/ops.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>

namespace kindling::app {
namespace {

// Fails on every rank, naming the first option (in config.json order) whose value differs from
// rank 0's: each rank hashes each option's value and compares with rank 0's hashes.
void check_same_config(dist::Communicator& world, const TrainConfig& c) {
  const nlohmann::json j = to_json(c);
  std::vector<std::string> keys;
  std::vector<int64_t> hashes;
  for (const auto& [key, value] : j.items()) {
    keys.push_back(key);
    hashes.push_back(int64_t(std::hash<std::string>{}(value.dump()) >> 1));
  }
  Tensor root = from_vector(hashes, {int64_t(hashes.size())});
  world.broadcast(root, 0);
  const std::vector<int64_t> root_hashes = root.to_vector<int64_t>();
  int64_t first_differing = int64_t(keys.size());
  for (size_t k = 0; k < keys.size(); ++k)
    if (root_hashes[k] != hashes[k]) first_differing = std::min(first_differing, int64_t(k));
  Tensor worst = from_vector(std::vector<int64_t>{-first_differing}, {1});
  world.all_reduce_max(worst);  // the smallest differing index over all ranks
  const int64_t differing = -worst.item<int64_t>();
  if (differing == int64_t(keys.size())) return;
  std::string option = "--" + keys[size_t(differing)];
  std::replace(option.begin(), option.end(), '_', '-');
  throw UsageError(
      fmt::format("{} differs between the ranks (rank {} has {}): every rank must be given the "
                  "same flags",
                  option, world.rank(), j.at(keys[size_t(differing)]).dump()));
}

}  // namespace

DataParallel::DataParallel(const TrainConfig& requested) : world_(dist::world()), config_(requested) {
  world_.set_timeout(requested.dist_timeout);
  if (world_.size() == 1) return;
  check_same_config(world_, requested);
  if (requested.data.batch_size % world_.size() != 0)
    throw UsageError(
        fmt::format("--batch-size {} does not split evenly over {} ranks: it is the global "
                    "batch, each rank takes an equal share",
                    requested.data.batch_size, world_.size()));
  if (requested.data.device == "cuda" && !std::getenv("CUDA_VISIBLE_DEVICES"))
    if (const char* local_rank = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK"))
      setenv("CUDA_VISIBLE_DEVICES", local_rank, 1);
  if (world_.rank() != 0) {
    config_.quiet = true;
    config_.out.clear();
  }
}

void DataParallel::shard(data::LoaderOptions& options, int64_t dataset_size) const {
  options.rank = world_.rank();
  options.world_size = world_.size();
  const int64_t last = dataset_size % options.batch_size;
  if (last > 0 && last < world_.size())
    throw UsageError(
        fmt::format("the last batch holds {} of {} samples, fewer than the {} ranks: change "
                    "--batch-size or --limit-train",
                    last, dataset_size, world_.size()));
}

void DataParallel::attach(Module& model, Device device) {
  if (world_.size() == 1) return;
  device_comm_ = &dist::for_device(device);
  device_comm_->set_timeout(config_.dist_timeout);
  std::vector<Tensor> state;
  for (const auto& [name, tensor] : model.state_dict()) state.push_back(tensor);
  dist::broadcast_tensors(*device_comm_, state);
  reducer_ = std::make_unique<dist::GradientReducer>(*device_comm_, model.parameters());
  if (!config_.sync_bn) return;
  dist::Communicator* comm = device_comm_;
  set_sync_batchnorm(model, [comm](const Tensor& t) { comm->all_reduce(t); });
}

double DataParallel::global_loss(const Tensor& local_loss, int64_t local_count, int64_t global_count,
                                 int64_t step) {
  const double local = local_loss.item<float>();
  if (world_.size() == 1) return local;
  world_.set_step(step + 1);  // 1-based in messages: the step being taken
  device_comm_->set_step(step + 1);
  Tensor weighted = full({1}, local * double(local_count) / double(global_count));
  world_.all_reduce(weighted);
  return weighted.item<float>();
}

void DataParallel::backward(const Tensor& local_loss, int64_t local_count, int64_t global_count) {
  if (world_.size() == 1) {
    local_loss.backward();
    return;
  }
  reducer_->prepare();
  mul(local_loss, double(local_count) / double(global_count)).backward();
  reducer_->finish();
}

int64_t DataParallel::sum(int64_t local) {
  if (world_.size() == 1) return local;
  Tensor total = from_vector(std::vector<int64_t>{local}, {1});
  world_.all_reduce(total);
  return total.item<int64_t>();
}

void DataParallel::sync_buffers(Module& model) {
  if (world_.size() == 1) return;
  std::vector<Tensor> buffers;
  for (const auto& [name, tensor] : model.named_buffers()) buffers.push_back(tensor);
  dist::average_tensors(*device_comm_, buffers);
}

}  // namespace kindling::app

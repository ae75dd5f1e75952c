// evaluate(): the metrics of a model over a dataset. Under mpirun each rank runs the model on its
// share of every batch; the logits are gathered, in dataset order, into one [size, classes] tensor
// (each rank writes its rows into zeros and a sum adds them: exact), and every rank then computes
// the metrics from it batch by batch, exactly as one process does.
#include "apps/trainer.h"

#include "core/autograd.h"
#include "data/loader.h"
#include "dist/communicator.h"

namespace kindling::app {

EvalResult evaluate(Module& model, const data::ImageDataset& dataset, int64_t batch_size, Device device,
                    const Loss* loss, int workers) {
  NoGradGuard no_grad;
  dist::Communicator& world = dist::world();
  const bool was_training = model.is_training();
  model.eval();
  data::LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = false;
  options.augment = false;
  options.num_workers = workers;
  options.rank = world.rank();
  options.world_size = world.size();
  data::Loader loader(dataset, options);
  Tensor logits = zeros({dataset.size(), dataset.num_classes});
  while (auto batch = loader.next()) {
    const int64_t rows = batch->labels.numel();
    if (rows == 0) continue;
    const Tensor batch_logits = model(batch->images.to(device));
    KINDLING_CHECK(batch_logits.dim() == 2 && batch_logits.size(1) == dataset.num_classes, ShapeError,
                   "evaluate: the model gives logits {} for {} classes of {}", batch_logits.describe(),
                   dataset.num_classes, dataset.name);
    const int64_t first =
        batch->index * batch_size + data::batch_share(batch->global_size, world.rank(), world.size()).begin;
    logits.narrow(0, first, rows).copy_(batch_logits);
  }
  model.train(was_training);
  if (world.size() > 1) world.all_reduce(logits);

  MetricsAccumulator metrics;
  double loss_sum = 0;
  const Tensor labels = from_vector(dataset.labels, {dataset.size()});
  for (int64_t first = 0; first < dataset.size(); first += batch_size) {
    const int64_t rows = std::min(batch_size, dataset.size() - first);
    const Tensor batch_logits = logits.narrow(0, first, rows);
    const Tensor batch_labels = labels.narrow(0, first, rows);
    try {
      if (loss)
        loss_sum += double(loss->forward(batch_logits.to(device), batch_labels.to(device)).item<float>()) *
                    double(rows);
      metrics.add(batch_logits, batch_labels);
    } catch (const ValueError& e) {
      throw ValueError(fmt::format("{} in evaluation batch {} of {}", e.what(), first / batch_size + 1,
                                   (dataset.size() + batch_size - 1) / batch_size));
    }
  }
  EvalResult result;
  result.metrics = summarize(metrics);
  result.mean_loss = metrics.count() ? loss_sum / double(metrics.count()) : 0.0;
  result.logits = logits;
  return result;
}

}  // namespace kindling::app

// ResNet-20 from the model zoo, trained on Fashion-MNIST with a loss chosen by its spec string,
// checkpointed, then loaded back and evaluated: the library calls `kindling train` makes.
//   resnet_zoo [loss spec] [epochs] [max_steps_per_epoch] [checkpoint]
//   (defaults: "ce", 3 epochs, every batch, resnet20.safetensors)
// The checkpoint is the one `kindling eval --checkpoint` and examples/finetune.cpp read.
#include <kindling/core/autograd.h>
#include <kindling/core/checkpoint.h>
#include <kindling/data/datasets.h>
#include <kindling/data/loader.h>
#include <kindling/losses/loss.h>
#include <kindling/losses/metrics.h>
#include <kindling/nn/models.h>
#include <kindling/nn/optim.h>
#include <kindling/nn/schedule.h>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace kindling;

// Top-1 accuracy of `model` on `dataset`, in eval mode and without recording a graph.
double test_accuracy(Module& model, const data::ImageDataset& dataset) {
  model.eval();
  NoGradGuard no_grad;
  data::Loader loader(dataset, {.batch_size = 1000, .shuffle = false, .augment = false});
  MetricsAccumulator metrics;
  while (auto batch = loader.next()) metrics.add(model(batch->images), batch->labels);
  return metrics.top1();
}

int main(int argc, char** argv) {
  const std::string loss_spec = argc > 1 ? argv[1] : "ce";  // e.g. "focal:gamma=2", "squentropy"
  const int64_t epochs = argc > 2 ? std::atoll(argv[2]) : 3;
  const int64_t max_steps = argc > 3 ? std::atoll(argv[3]) : -1;
  const std::string checkpoint = argc > 4 ? argv[4] : "resnet20.safetensors";

  const data::ImageDataset train_set = data::load_dataset("fashion-mnist", true);
  data::ImageDataset test_set = data::load_dataset("fashion-mnist", false);
  if (max_steps > 0) test_set = data::limit(test_set, 1000);  // a short run tests on 1000 images
  const int64_t channels = train_set.channels, classes = train_set.num_classes, side = train_set.height;

  // The zoo: resnet20..110, resnet18/34/50, vgg11/16, for any channel and class count.
  std::shared_ptr<Module> model = make_model("resnet20", channels, classes, side);
  Loss loss(loss_spec);  // every studied loss, fused forward and backward: `kindling losses`
  Sgd optimizer(model->named_parameters(),
                {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true});
  data::Loader loader(train_set, {.batch_size = 128, .seed = 0});
  const int64_t steps_per_epoch = max_steps > 0 ? max_steps : loader.num_batches();
  std::unique_ptr<Schedule> schedule = make_schedule("onecycle", 0.1, epochs, steps_per_epoch);

  int64_t step = 0;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    model->train();
    loss.set_progress(epoch, epochs);  // losses with an epoch schedule (ce_expectation_mix) use it
    loader.start_epoch(epoch);
    for (int64_t batch_index = 0; batch_index < steps_per_epoch; ++batch_index) {
      auto batch = loader.next();
      if (!batch) break;
      optimizer.set_lr(schedule->lr(epoch, batch_index));
      Tensor value = loss(model->forward(batch->images), batch->labels);
      optimizer.zero_grad();
      value.backward();
      optimizer.step();
      ++step;
    }
    std::printf("epoch %lld: test accuracy %.2f %%\n", static_cast<long long>(epoch + 1),
                100 * test_accuracy(*model, test_set));
  }

  // A training checkpoint: weights under PyTorch's names, optimizer state, and the metadata that
  // rebuilds the model (`kindling eval --checkpoint` reads it too).
  CheckpointInfo info;
  info.model = "resnet20";
  info.model_config = model_config_json(channels, classes, side);
  info.loss = loss.spec();
  info.epoch = epochs;
  info.step = step;
  info.rng = default_generator().state();
  info.extra["dataset"] = "fashion-mnist";
  save_checkpoint(checkpoint, model->state_dict(), optimizer.state_dict(), info);

  // Load it into a fresh model, as another program would, and evaluate.
  const CheckpointInfo saved = read_checkpoint_info(checkpoint);
  std::shared_ptr<Module> restored = make_model(saved.model, channels, classes, side);
  load_checkpoint(checkpoint, restored->state_dict());
  std::printf("%s (loss %s, %lld steps): test accuracy %.2f %%\n", checkpoint.c_str(), saved.loss.c_str(),
              static_cast<long long>(saved.step), 100 * test_accuracy(*restored, test_set));
  return 0;
}

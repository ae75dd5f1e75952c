// Fine-tuning: load a trained checkpoint (examples/resnet_zoo.cpp's, or `kindling train`'s), give
// the network a new classifier for another class count, and train only that head. The new task
// groups Fashion-MNIST's ten classes into four: tops, bottoms and dresses, footwear, bags.
//   finetune <checkpoint> [epochs] [max_steps_per_epoch]     (defaults: 1 epoch, every batch)
#include <kindling/core/autograd.h>
#include <kindling/core/checkpoint.h>
#include <kindling/data/datasets.h>
#include <kindling/data/loader.h>
#include <kindling/losses/loss.h>
#include <kindling/losses/metrics.h>
#include <kindling/nn/models.h>
#include <kindling/nn/optim.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace kindling;

// T-shirt, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot -> 4 groups.
data::ImageDataset regroup(data::ImageDataset dataset) {
  const int64_t group[10] = {0, 1, 0, 1, 0, 2, 0, 2, 3, 2};
  for (int64_t& label : dataset.labels) label = group[label];
  dataset.num_classes = 4;
  dataset.class_names = {"top", "bottom or dress", "footwear", "bag"};
  return dataset;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: finetune <checkpoint> [epochs] [max_steps_per_epoch]\n");
    return 2;
  }
  const std::string checkpoint = argv[1];
  const int64_t epochs = argc > 2 ? std::atoll(argv[2]) : 1;
  const int64_t max_steps = argc > 3 ? std::atoll(argv[3]) : -1;
  const data::ImageDataset train_set = regroup(data::load_dataset("fashion-mnist", true));
  data::ImageDataset test_set = regroup(data::load_dataset("fashion-mnist", false));
  if (max_steps > 0) test_set = data::limit(test_set, 1000);  // a short run tests on 1000 images

  // The same architecture with a 4-class classifier: the checkpoint's metadata names the model.
  const CheckpointInfo info = read_checkpoint_info(checkpoint);
  const auto config = nlohmann::json::parse(info.model_config);
  std::shared_ptr<Module> model = make_model(info.model, config["in_channels"].get<int64_t>(),
                                             train_set.num_classes, config["input_size"].get<int64_t>());

  // Copy every trained tensor but the old classifier's ("fc.*": its shape is for 10 classes), as
  // PyTorch's load_state_dict(strict=False) would. Module tensors are the model's own, so copy_()
  // writes the weights in place.
  const SafetensorsFile file = SafetensorsFile::read(checkpoint);
  {
    NoGradGuard no_grad;
    for (auto& [name, tensor] : model->state_dict())
      if (name.rfind("fc.", 0) != 0) tensor.copy_(file.tensor(name));
  }

  // Only the head learns: the backbone's parameters stop requiring gradients (backward skips
  // them) and the optimizer sees the head alone.
  NamedTensors head;
  for (auto& [name, parameter] : model->named_parameters()) {
    if (name.rfind("fc.", 0) == 0)
      head.emplace_back(name, parameter);
    else
      parameter.set_requires_grad(false);
  }
  Sgd optimizer(head, {.lr = 0.05, .momentum = 0.9});
  Loss loss("ce");
  data::Loader loader(train_set, {.batch_size = 128, .seed = 1});

  // eval(): the frozen backbone's BatchNorm keeps its trained running statistics.
  model->eval();
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    loader.start_epoch(epoch);
    int64_t step = 0;
    while (auto batch = loader.next()) {
      if (step++ == max_steps) break;
      Tensor value = loss(model->forward(batch->images), batch->labels);
      optimizer.zero_grad();
      value.backward();
      optimizer.step();
    }
    NoGradGuard no_grad;
    data::Loader test_loader(test_set, {.batch_size = 1000, .shuffle = false, .augment = false});
    MetricsAccumulator metrics;
    while (auto batch = test_loader.next()) metrics.add(model->forward(batch->images), batch->labels);
    std::printf("epoch %lld: 4-class test accuracy %.2f %%\n", static_cast<long long>(epoch + 1),
                100 * metrics.top1());
  }
  return 0;
}

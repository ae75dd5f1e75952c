// A small CNN of your own, a loss of your own written with ops, and a plain training loop on
// Fashion-MNIST (the Debian package dataset-fashion-mnist, or the files in $KINDLING_DATA_DIR).
//   small_cnn [epochs] [max_steps_per_epoch]     (defaults: 2 epochs, every batch)
#include <kindling/core/autograd.h>
#include <kindling/data/datasets.h>
#include <kindling/data/loader.h>
#include <kindling/losses/metrics.h>
#include <kindling/nn/layers.h>
#include <kindling/nn/optim.h>
#include <kindling/ops/ops.h>

#include <cstdio>
#include <cstdlib>

using namespace kindling;

// A model is a Module: register parameters and children in the constructor (their names become
// the checkpoint's tensor names), compose them in forward(). Autograd records every op.
class SmallCnn final : public Module {
 public:
  explicit SmallCnn(int64_t num_classes) {
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(1, 16, 3, Conv2dOptions{.padding = 1}));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(16));
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(16, 32, 3, Conv2dOptions{.padding = 1}));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(32));
    fc_ = register_module("fc", std::make_shared<Linear>(32 * 7 * 7, num_classes));
  }
  Tensor forward(const Tensor& x) override {                            // x [N, 1, 28, 28]
    Tensor y = max_pool2d(relu(bn1_->forward(conv1_->forward(x))), 2);  // [N, 16, 14, 14]
    y = max_pool2d(relu(bn2_->forward(conv2_->forward(y))), 2);         // [N, 32, 7, 7]
    return fc_->forward(y.flatten(1));                                  // [N, classes]
  }
  std::string describe() const override { return "SmallCnn"; }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<Linear> fc_;
};

// Cross entropy against label-smoothed targets, composed from ops: autograd derives its backward.
// logits [N, C], labels [N] i64 -> a scalar: mean_n -sum_c t[n,c] log softmax(logits)[n,c],
// t = (1 - eps) one_hot + eps / C. (kindling's fused Loss("label_smoothing") computes the same.)
Tensor smoothed_cross_entropy(const Tensor& logits, const Tensor& labels, double eps) {
  const int64_t C = logits.size(1);
  Tensor targets = add(mul(one_hot(labels, C), 1.0 - eps), eps / static_cast<double>(C));
  return neg(mean(sum(mul(targets, log_softmax(logits, 1)), 1)));
}

int main(int argc, char** argv) {
  const int64_t epochs = argc > 1 ? std::atoll(argv[1]) : 2;
  const int64_t max_steps = argc > 2 ? std::atoll(argv[2]) : -1;
  const data::ImageDataset train_set = data::load_dataset("fashion-mnist", /*train=*/true);
  const data::ImageDataset test_set = data::load_dataset("fashion-mnist", /*train=*/false);

  SmallCnn model(train_set.num_classes);
  Sgd optimizer(model.named_parameters(), {.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
  data::Loader train_loader(train_set, {.batch_size = 128, .seed = 0});

  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    model.train();
    train_loader.start_epoch(epoch);
    int64_t step = 0;
    while (auto batch = train_loader.next()) {
      if (step == max_steps) break;
      Tensor loss = smoothed_cross_entropy(model(batch->images), batch->labels, 0.1);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      if (++step % 100 == 0 || step == max_steps)
        std::printf("epoch %lld step %lld: loss %.4f\n", static_cast<long long>(epoch + 1),
                    static_cast<long long>(step), loss.item<float>());
    }

    // Evaluation: BatchNorm on its running statistics, no graph recorded.
    model.eval();
    NoGradGuard no_grad;
    data::Loader test_loader(test_set, {.batch_size = 1000, .shuffle = false, .augment = false});
    MetricsAccumulator metrics;
    while (auto batch = test_loader.next()) metrics.add(model(batch->images), batch->labels);
    std::printf("epoch %lld: test accuracy %.2f %%\n", static_cast<long long>(epoch + 1),
                100 * metrics.top1());
  }
  return 0;
}

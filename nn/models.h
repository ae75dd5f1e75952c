// The model registry behind `--model`: resnet20, resnet32, resnet44, resnet56, resnet110 (CIFAR
// ResNets, option-A shortcuts), resnet18, resnet34, resnet50 (torchvision-style; 3×3 stem for
// inputs up to 32×32), vgg11, vgg16 (with BN). Every model takes any channel and class count.
#pragma once
#include "core/rng.h"
#include "nn/module.h"

#include <memory>
#include <string>
#include <vector>

namespace kindling {

// Requires in_channels, num_classes, input_size >= 1 (input_size: the side of the square images).
// Throws ValueError listing the valid names for an unknown one. Weights are drawn from `generator`.
std::shared_ptr<Module> make_model(const std::string& name, int64_t in_channels, int64_t num_classes,
                                   int64_t input_size = 32, Generator& generator = default_generator());
const std::vector<std::string>& model_names();
// {"in_channels":3,"input_size":32,"num_classes":10}: the config a checkpoint stores to rebuild a model.
std::string model_config_json(int64_t in_channels, int64_t num_classes, int64_t input_size);

}  // namespace kindling

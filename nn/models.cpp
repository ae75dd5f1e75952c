#include "nn/models.h"

#include "nn/resnet.h"
#include "nn/vgg.h"

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace kindling {

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
                                                 "resnet18", "resnet34", "resnet50", "vgg11",    "vgg16"};
  return names;
}

std::shared_ptr<Module> make_model(const std::string& name, int64_t in_channels, int64_t num_classes,
                                   int64_t input_size, Generator& generator) {
  if (name == "resnet20") return ResNet::cifar(20, in_channels, num_classes, generator);
  if (name == "resnet32") return ResNet::cifar(32, in_channels, num_classes, generator);
  if (name == "resnet44") return ResNet::cifar(44, in_channels, num_classes, generator);
  if (name == "resnet56") return ResNet::cifar(56, in_channels, num_classes, generator);
  if (name == "resnet110") return ResNet::cifar(110, in_channels, num_classes, generator);
  if (name == "resnet18") return ResNet::imagenet_style(18, in_channels, num_classes, input_size, generator);
  if (name == "resnet34") return ResNet::imagenet_style(34, in_channels, num_classes, input_size, generator);
  if (name == "resnet50") return ResNet::imagenet_style(50, in_channels, num_classes, input_size, generator);
  if (name == "vgg11") return std::make_shared<Vgg>(11, in_channels, num_classes, input_size, generator);
  if (name == "vgg16") return std::make_shared<Vgg>(16, in_channels, num_classes, input_size, generator);
  throw ValueError(fmt::format("unknown model '{}' (valid: {})", name, fmt::join(model_names(), ", ")));
}

std::string model_config_json(int64_t in_channels, int64_t num_classes, int64_t input_size) {
  return nlohmann::json{
      {"in_channels", in_channels}, {"num_classes", num_classes}, {"input_size", input_size}}
      .dump();
}

}  // namespace kindling

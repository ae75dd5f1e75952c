// Walks the module tree in forward order and emits one or a few ONNX nodes per layer. Names of
// intermediate values are "<module path>" of the layer that produces them.
#include "apps/onnx_export.h"

#include "core/error.h"
#include "nn/layers.h"
#include "nn/resnet.h"
#include "nn/vgg.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <fmt/core.h>

#include <cctype>
#include <limits>
#include <vector>

namespace kindling::app {
namespace {

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto& graph) : graph_(graph) {}

  // A weight as an f32 initializer named `name`.
  std::string weight(const std::string& name, const Tensor& tensor) {
    onnx::TensorProto* proto = graph_.add_initializer();
    proto->set_name(name);
    proto->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : tensor.shape()) proto->add_dims(d);
    const std::vector<float> values = tensor.to_vector<float>();
    proto->set_raw_data(values.data(), values.size() * sizeof(float));
    return name;
  }
  // An i64 [n] constant (Slice's and Pad's operands).
  std::string ints(const std::string& name, const std::vector<int64_t>& values) {
    onnx::TensorProto* proto = graph_.add_initializer();
    proto->set_name(name);
    proto->set_data_type(onnx::TensorProto::INT64);
    proto->add_dims(static_cast<int64_t>(values.size()));
    proto->set_raw_data(values.data(), values.size() * sizeof(int64_t));
    return name;
  }
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::string& output) {
    onnx::NodeProto* node = graph_.add_node();
    node->set_op_type(op);
    node->set_name(output);
    for (const auto& input : inputs) node->add_input(input);
    node->add_output(output);
    return *node;
  }
  static void attribute(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values) {
    onnx::AttributeProto* a = node.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }
  static void attribute(onnx::NodeProto& node, const std::string& name, int64_t value) {
    onnx::AttributeProto* a = node.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }
  static void attribute(onnx::NodeProto& node, const std::string& name, float value) {
    onnx::AttributeProto* a = node.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
  }

 private:
  onnx::GraphProto& graph_;
};

std::string join(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

class Exporter {
 public:
  explicit Exporter(onnx::GraphProto& graph) : g_(graph) {}

  // Emits `module` applied to the value `x`; returns the name of its output.
  std::string emit(const Module& module, const std::string& path, std::string x) {
    if (dynamic_cast<const Sequential*>(&module) || dynamic_cast<const ResNet*>(&module) ||
        dynamic_cast<const Vgg*>(&module)) {
      // These run their children in registration order (ResNet and Vgg flatten before the
      // classifier, which the Linear case below does).
      for (const auto& [name, child] : module.children()) x = emit(*child, join(path, name), x);
      return x;
    }
    if (auto* conv = dynamic_cast<const Conv2d*>(&module)) return emit_conv(*conv, path, x);
    if (auto* bn = dynamic_cast<const BatchNorm2d*>(&module)) return emit_batchnorm(*bn, path, x);
    if (dynamic_cast<const ReLU*>(&module)) return g_.node("Relu", {x}, path).output(0);
    if (dynamic_cast<const Dropout*>(&module)) return x;  // eval mode: the identity
    if (auto* block = dynamic_cast<const CifarBasicBlock*>(&module)) return emit_cifar_block(*block, path, x);
    if (auto* block = dynamic_cast<const ResidualBlock*>(&module))
      return emit_residual_block(*block, path, x);
    if (auto* pool = dynamic_cast<const MaxPool2d*>(&module)) {
      auto& node = g_.node("MaxPool", {x}, path);
      pool_attributes(node, pool->kernel_size(), pool->stride(), pool->padding());
      return path;
    }
    if (auto* pool = dynamic_cast<const AvgPool2d*>(&module)) {
      auto& node = g_.node("AveragePool", {x}, path);
      pool_attributes(node, pool->kernel_size(), pool->stride(), pool->padding());
      GraphBuilder::attribute(node, "count_include_pad", int64_t{pool->count_include_pad()});
      return path;
    }
    if (auto* pool = dynamic_cast<const AdaptiveAvgPool2d*>(&module);
        pool && pool->output_size().h == 1 && pool->output_size().w == 1)
      return g_.node("GlobalAveragePool", {x}, path).output(0);
    if (auto* flatten = dynamic_cast<const Flatten*>(&module); flatten && flatten->end_dim() == -1) {
      GraphBuilder::attribute(g_.node("Flatten", {x}, path), "axis", flatten->start_dim());
      return path;
    }
    if (auto* linear = dynamic_cast<const Linear*>(&module)) {
      const std::string flat = g_.node("Flatten", {x}, path + ".input").output(0);  // [N, ...] -> [N, in]
      std::vector<std::string> inputs = {flat, g_.weight(join(path, "weight"), linear->weight())};
      if (linear->bias().defined()) inputs.push_back(g_.weight(join(path, "bias"), linear->bias()));
      GraphBuilder::attribute(g_.node("Gemm", inputs, path), "transB", int64_t{1});
      return path;
    }
    throw ValueError(fmt::format("ONNX export: layer {} ({}) is not supported",
                                 path.empty() ? "<model>" : path, module.describe()));
  }

 private:
  static void pool_attributes(onnx::NodeProto& node, Size2 kernel, Size2 stride, Size2 padding) {
    GraphBuilder::attribute(node, "kernel_shape", {kernel.h, kernel.w});
    GraphBuilder::attribute(node, "strides", {stride.h, stride.w});
    GraphBuilder::attribute(node, "pads", {padding.h, padding.w, padding.h, padding.w});
  }

  std::string emit_conv(const Conv2d& conv, const std::string& path, const std::string& x) {
    const Conv2dOptions& o = conv.options();
    std::vector<std::string> inputs = {x, g_.weight(join(path, "weight"), conv.weight())};
    if (conv.bias().defined()) inputs.push_back(g_.weight(join(path, "bias"), conv.bias()));
    auto& node = g_.node("Conv", inputs, path);
    pool_attributes(node, {conv.weight().size(2), conv.weight().size(3)}, o.stride, o.padding);
    GraphBuilder::attribute(node, "dilations", {o.dilation.h, o.dilation.w});
    GraphBuilder::attribute(node, "group", o.groups);
    return path;
  }

  std::string emit_batchnorm(const BatchNorm2d& bn, const std::string& path, const std::string& x) {
    auto& node =
        g_.node("BatchNormalization",
                {x, g_.weight(join(path, "weight"), bn.weight()), g_.weight(join(path, "bias"), bn.bias()),
                 g_.weight(join(path, "running_mean"), bn.running_mean()),
                 g_.weight(join(path, "running_var"), bn.running_var())},
                path);
    GraphBuilder::attribute(node, "epsilon", static_cast<float>(bn.eps()));
    return path;
  }

  // relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut x[:, :, ::s, ::s] with zero
  // channels on both sides where the width grows (as CifarBasicBlock::forward).
  std::string emit_cifar_block(const CifarBasicBlock& block, const std::string& path, const std::string& x) {
    std::string out = x;
    for (const char* stage : {"1", "2"}) {
      out = emit(block.child(std::string("conv") + stage), join(path, std::string("conv") + stage), out);
      out = emit(block.child(std::string("bn") + stage), join(path, std::string("bn") + stage), out);
      if (stage[0] == '1') out = g_.node("Relu", {out}, join(path, "relu1")).output(0);
    }
    const auto& conv1 = dynamic_cast<const Conv2d&>(block.child("conv1"));
    const int64_t stride = conv1.options().stride.h, in_planes = conv1.weight().size(1);
    const int64_t planes = conv1.weight().size(0), before = (planes - in_planes) / 2;
    std::string shortcut = x;
    if (stride != 1) {
      const int64_t end = std::numeric_limits<int64_t>::max();
      shortcut = g_.node("Slice",
                         {x, g_.ints(join(path, "shortcut.starts"), {0, 0}),
                          g_.ints(join(path, "shortcut.ends"), {end, end}),
                          g_.ints(join(path, "shortcut.axes"), {2, 3}),
                          g_.ints(join(path, "shortcut.steps"), {stride, stride})},
                         join(path, "shortcut.subsample"))
                     .output(0);
    }
    if (planes != in_planes)
      shortcut = g_.node("Pad",
                         {shortcut, g_.ints(join(path, "shortcut.pads"),
                                            {0, before, 0, 0, 0, planes - in_planes - before, 0, 0})},
                         join(path, "shortcut"))
                     .output(0);
    const std::string sum = g_.node("Add", {out, shortcut}, join(path, "add")).output(0);
    return g_.node("Relu", {sum}, path).output(0);
  }

  // conv-bn(-relu) stages, then relu(out + downsample(x) or x), as ResidualBlock::forward.
  std::string emit_residual_block(const ResidualBlock& block, const std::string& path, const std::string& x) {
    const int stages = block.describe() == "Bottleneck" ? 3 : 2;
    std::string out = x;
    for (int i = 1; i <= stages; ++i) {
      const std::string conv = fmt::format("conv{}", i), bn = fmt::format("bn{}", i);
      out = emit(block.child(bn), join(path, bn), emit(block.child(conv), join(path, conv), out));
      if (i < stages) out = g_.node("Relu", {out}, join(path, fmt::format("relu{}", i))).output(0);
    }
    std::string shortcut = x;
    for (const auto& [name, child] : block.children())
      if (name == "downsample") shortcut = emit(*child, join(path, name), x);
    const std::string sum = g_.node("Add", {out, shortcut}, join(path, "add")).output(0);
    return g_.node("Relu", {sum}, path).output(0);
  }

  GraphBuilder g_;
};

void add_value_info(onnx::ValueInfoProto& value, const std::string& name,
                    const std::vector<std::string>& dims) {
  value.set_name(name);
  auto* tensor_type = value.mutable_type()->mutable_tensor_type();
  tensor_type->set_elem_type(onnx::TensorProto::FLOAT);
  for (const auto& d : dims) {
    auto* dim = tensor_type->mutable_shape()->add_dim();
    if (d.empty() || !std::isdigit(static_cast<unsigned char>(d[0])))
      dim->set_dim_param(d);
    else
      dim->set_dim_value(std::stoll(d));
  }
}

}  // namespace

std::string export_onnx(const Module& model, const OnnxExportOptions& options) {
  onnx::ModelProto proto;
  proto.set_ir_version(onnx::IR_VERSION);
  proto.set_producer_name("kindling");
  proto.set_producer_version(KINDLING_VERSION);
  onnx::OperatorSetIdProto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  onnx::GraphProto& graph = *proto.mutable_graph();
  graph.set_name(options.graph_name);

  Exporter exporter(graph);
  const std::string output = exporter.emit(model, "", "input");
  // The last node's output is renamed "logits" (the graph's output name).
  for (auto& node : *graph.mutable_node())
    for (auto& out : *node.mutable_output())
      if (out == output) out = "logits";
  for (auto& node : *graph.mutable_node())
    for (auto& in : *node.mutable_input())
      if (in == output) in = "logits";
  add_value_info(
      *graph.add_input(), "input",
      {"N", std::to_string(options.channels), std::to_string(options.height), std::to_string(options.width)});
  add_value_info(*graph.add_output(), "logits", {"N", "classes"});
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    throw Error(fmt::format("ONNX export: the ONNX checker refuses the model: {}", e.what()));
  }
  return proto.SerializeAsString();
}

}  // namespace kindling::app

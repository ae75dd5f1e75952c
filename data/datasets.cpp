// Dataset registry: names to files, layouts and normalisation constants, and the file search.
#include "data/datasets.h"

#include "core/error.h"
#include "data/class_names.h"

#include <cstdlib>
#include <optional>

namespace kindling::data {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kEmnistSplits = {"byclass", "bymerge", "balanced",
                                                "letters", "digits",  "mnist"};

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += separator;
    text += items[i];
  }
  return text;
}

DatasetInfo idx_info(const std::string& name, int64_t num_classes, float mean, float std,
                     std::vector<std::string> class_names, std::vector<std::string> folders,
                     std::string how_to_get) {
  DatasetInfo info;
  info.name = name;
  info.idx_layout.num_classes = num_classes;
  info.mean = {mean};
  info.std = {std};
  info.class_names = std::move(class_names);
  info.folders = std::move(folders);
  info.how_to_get = std::move(how_to_get);
  return info;
}

DatasetInfo cifar_info(const std::string& name, CifarFormat format, std::vector<float> mean,
                       std::vector<float> std, std::vector<std::string> class_names,
                       std::vector<std::string> folders, std::string how_to_get) {
  DatasetInfo info;
  info.name = name;
  info.is_cifar = true;
  info.cifar_format = format;
  info.mean = std::move(mean);
  info.std = std::move(std);
  info.augment_by_default = true;
  info.class_names = std::move(class_names);
  info.folders = std::move(folders);
  info.how_to_get = std::move(how_to_get);
  return info;
}

// First of `dir/file` and `dir/file.gz` that exists.
std::optional<fs::path> find_file(const fs::path& dir, const std::string& file) {
  std::error_code ec;
  for (const fs::path& candidate : {dir / file, dir / (file + ".gz")})
    if (fs::is_regular_file(candidate, ec)) return candidate;
  return std::nullopt;
}

}  // namespace

std::vector<std::string> dataset_names() {
  std::vector<std::string> names = {"fashion-mnist", "mnist"};
  for (const auto& split : kEmnistSplits) names.push_back("emnist-" + split);
  for (const char* name : {"cifar10", "cifar100", "cifar100-coarse"}) names.emplace_back(name);
  return names;
}

DatasetInfo dataset_info(const std::string& name) {
  // Normalisation constants are the mean and std of pixel / 255 over each training set.
  if (name == "fashion-mnist") {
    return idx_info(name, 10, 0.2860f, 0.3530f, fashion_mnist_class_names(), {"fashion-mnist"},
                    "install the Debian package dataset-fashion-mnist (apt install dataset-fashion-mnist), "
                    "or place train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                    "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
                    "https://github.com/zalandoresearch/fashion-mnist in a folder given with --data-dir");
  }
  if (name == "mnist") {
    return idx_info(name, 10, 0.1307f, 0.3081f, digit_class_names(), {"mnist"},
                    "place train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                    "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (the MNIST files of "
                    "http://yann.lecun.com/exdb/mnist/) in a folder given with --data-dir");
  }
  if (name.starts_with("emnist-")) {
    const std::string split = name.substr(7);
    for (const auto& known : kEmnistSplits) {
      if (split != known) continue;
      const std::vector<std::string> classes = emnist_class_names(split);
      // The constants of the balanced split; the other splits differ in the third decimal.
      DatasetInfo info =
          idx_info(name, static_cast<int64_t>(classes.size()), 0.1751f, 0.3332f, classes,
                   {"emnist", "gzip", "emnist/gzip"},
                   "download the EMNIST binary archive (gzip.zip) from "
                   "https://www.nist.gov/itl/products-and-services/emnist-dataset, unzip it and "
                   "give its gzip folder, which holds emnist-" +
                       split + "-train-images-idx3-ubyte.gz and the other files, with --data-dir");
      info.idx_prefix = "emnist-" + split + "-";
      info.idx_layout.transposed = true;
      info.idx_layout.first_label = split == "letters" ? 1 : 0;
      return info;
    }
  }
  if (name == "cifar10") {
    return cifar_info(name, CifarFormat::cifar10, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f},
                      cifar10_class_names(), {"cifar10", "cifar-10-batches-bin"},
                      "download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, "
                      "extract it and give the folder holding data_batch_1.bin .. data_batch_5.bin and "
                      "test_batch.bin (or its parent) with --data-dir");
  }
  if (name == "cifar100" || name == "cifar100-coarse") {
    const bool coarse = name == "cifar100-coarse";
    return cifar_info(name, coarse ? CifarFormat::cifar100_coarse : CifarFormat::cifar100_fine,
                      {0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f},
                      coarse ? cifar100_coarse_class_names() : cifar100_fine_class_names(),
                      {"cifar100", "cifar-100-binary"},
                      "download cifar-100-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, "
                      "extract it and give the folder holding train.bin and test.bin (or its parent) "
                      "with --data-dir");
  }
  throw ValueError(
      fmt::format("unknown dataset '{}': expected one of {}", name, join(dataset_names(), ", ")));
}

std::vector<std::string> dataset_file_names(const DatasetInfo& info, bool train) {
  if (info.is_cifar && info.cifar_format == CifarFormat::cifar10) {
    if (!train) return {"test_batch.bin"};
    return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
            "data_batch_5.bin"};
  }
  if (info.is_cifar) return {train ? "train.bin" : "test.bin"};
  // MNIST names its test files t10k-*; EMNIST uses test-*.
  const std::string split = train ? "train" : (info.idx_prefix.empty() ? "t10k" : "test");
  return {info.idx_prefix + split + "-images-idx3-ubyte", info.idx_prefix + split + "-labels-idx1-ubyte"};
}

std::vector<fs::path> dataset_search_dirs(const DatasetInfo& info, const std::string& data_dir) {
  std::vector<fs::path> roots;
  std::vector<fs::path> dirs;
  if (!data_dir.empty()) {
    roots.emplace_back(data_dir);
  } else {
    if (info.name == "fashion-mnist") dirs.emplace_back(kDebianFashionMnistDir);
    if (const char* env = std::getenv("KINDLING_DATA_DIR"); env && *env) roots.emplace_back(env);
    roots.emplace_back("data");
  }
  // An explicit data dir may hold the files directly; a default root only through the dataset's
  // own folders, because MNIST and Fashion-MNIST files have the same names.
  for (const auto& root : roots) {
    if (!data_dir.empty()) dirs.push_back(root);
    for (const auto& folder : info.folders) dirs.push_back(root / folder);
  }
  return dirs;
}

ImageDataset load_dataset(const std::string& name, bool train, const std::string& data_dir) {
  const DatasetInfo info = dataset_info(name);
  const std::vector<std::string> file_names = dataset_file_names(info, train);
  const std::vector<fs::path> dirs = dataset_search_dirs(info, data_dir);
  std::vector<fs::path> files;
  for (const auto& dir : dirs) {
    std::vector<std::string> missing;
    files.clear();
    for (const auto& file_name : file_names) {
      if (auto file = find_file(dir, file_name))
        files.push_back(*file);
      else
        missing.push_back(file_name);
    }
    if (missing.empty()) break;
    // A folder with some of the files is a broken copy: say so rather than look elsewhere.
    KINDLING_CHECK(files.empty(), FileError, "{} ({}): {} holds {} but not {}[.gz]", name,
                   train ? "train" : "test", dir.string(), files.front().filename().string(),
                   join(missing, ", "));
  }
  if (files.empty()) {
    std::vector<std::string> searched;
    for (const auto& dir : dirs) searched.push_back(dir.string());
    throw FileError(fmt::format("{} ({}): cannot find {}[.gz]; looked in {}. To get it, {}", name,
                                train ? "train" : "test", file_names.front(), join(searched, ", "),
                                info.how_to_get));
  }

  ImageDataset dataset = info.is_cifar ? read_cifar_dataset(files, info.cifar_format)
                                       : read_idx_dataset(files[0], files[1], info.idx_layout);
  dataset.name = info.name;
  dataset.train = train;
  dataset.class_names = info.class_names;
  dataset.mean = info.mean;
  dataset.std = info.std;
  dataset.augment_by_default = info.augment_by_default;
  check_consistent(dataset);
  return dataset;
}

}  // namespace kindling::data

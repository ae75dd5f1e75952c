// The dataset registry: the names every command accepts, where each dataset's files are looked
// for, and the metadata (classes, normalisation constants, default augmentation) that goes with it.
//   fashion-mnist, mnist, emnist-<split> (byclass, bymerge, balanced, letters, digits, mnist),
//   cifar10, cifar100 (fine labels), cifar100-coarse (the 20 superclasses).
#pragma once
#include "data/cifar.h"
#include "data/idx.h"
#include "data/image_dataset.h"

#include <filesystem>
#include <string>
#include <vector>

namespace kindling::data {

// Where the Debian package dataset-fashion-mnist installs its files.
inline constexpr const char* kDebianFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct DatasetInfo {
  std::string name;                                 // canonical registry name
  bool is_cifar = false;                            // CIFAR binary records, else an IDX image/label pair
  IdxLayout idx_layout;                             // IDX datasets
  std::string idx_prefix;                           // "" or "emnist-<split>-" before train-images-idx3-ubyte
  CifarFormat cifar_format = CifarFormat::cifar10;  // CIFAR datasets
  std::vector<float> mean, std;                     // per channel, of pixel / 255
  bool augment_by_default = false;
  std::vector<std::string> class_names;
  std::vector<std::string> folders;  // sub-folders of a data dir that may hold the files
  std::string how_to_get;            // one sentence for the "not found" error
};

std::vector<std::string> dataset_names();
// Throws ValueError naming the accepted names when `name` is unknown.
DatasetInfo dataset_info(const std::string& name);

// The published file names of one split, without any ".gz" (either form is accepted on disk).
std::vector<std::string> dataset_file_names(const DatasetInfo& info, bool train);

// Directories searched, in order: with a data_dir, the dir itself then dir/<folder> for each of the
// dataset's folders; without one, the system location (Fashion-MNIST only), then <root>/<folder>
// for the roots $KINDLING_DATA_DIR and ./data.
std::vector<std::filesystem::path> dataset_search_dirs(const DatasetInfo& info, const std::string& data_dir);

// Loads the training or test split. Throws FileError when the files are missing (naming the
// directories searched and how to get the data) or malformed (naming the file and the fault).
ImageDataset load_dataset(const std::string& name, bool train, const std::string& data_dir = "");

}  // namespace kindling::data

// Class names of the supported datasets, in label order, as published with each dataset.
#pragma once
#include <string>
#include <vector>

namespace kindling::data {

std::vector<std::string> fashion_mnist_class_names();  // 10: "T-shirt/top" .. "Ankle boot"
std::vector<std::string> digit_class_names();          // 10: "0" .. "9"
// EMNIST: byclass 62 (digits, A-Z, a-z); bymerge and balanced 47 (digits, A-Z and the 11 lower-case
// letters whose shape differs from upper case); letters 26 (A-Z, both cases merged); digits, mnist 10.
std::vector<std::string> emnist_class_names(const std::string& split);
std::vector<std::string> cifar10_class_names();          // 10: "airplane" .. "truck"
std::vector<std::string> cifar100_fine_class_names();    // 100, alphabetical: "apple" .. "worm"
std::vector<std::string> cifar100_coarse_class_names();  // 20: "aquatic_mammals" .. "vehicles_2"

}  // namespace kindling::data

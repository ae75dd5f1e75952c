// core/safetensors: round trips (bit-identical), atomic writes, every corrupt-file case with its
// message, and a standard-library Python reader (tests/reference/read_checkpoint.py) reading a
// kindling checkpoint.
#include "core/autograd.h"
#include "core/backend.h"
#include "core/checkpoint.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/test_checkpoint_util.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

using namespace kindling;
using namespace kindling::checkpoint_test;
namespace fs = std::filesystem;

TEST_CASE("safetensors round trip is bit-identical for every dtype and odd shapes") {
  const std::string dir = scratch("round_trip");
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  NamedTensors tensors = {
      {"weights", from_vector<float>({1.5f, -0.0f, nan, inf, -inf, 1e-40f, 3.4e38f, 0.1f}, {2, 4})},
      {"labels", from_vector<int64_t>({0, -1, int64_t(1) << 62}, {3})},
      {"pixels", from_vector<uint8_t>({0, 127, 255}, {3, 1})},
      {"scalar", from_vector<float>({42.0f}, {})},
      {"empty", zeros({0, 3})},
      {"strided", arange(12).reshape({3, 4}).t()}};  // written in logical (row-major) order
  const std::map<std::string, std::string> metadata = {{"note", "héllo \"quoted\""}, {"epoch", "3"}};
  const std::string path = dir + "/round.safetensors";
  write_safetensors(path, tensors, metadata);
  CHECK(temporaries_in(dir).empty());

  const SafetensorsFile file = SafetensorsFile::read(path);
  CHECK(file.metadata() == metadata);
  REQUIRE(file.entries().size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, tensor] = tensors[i];
    INFO(name);
    CHECK(file.entries()[i].name == name);  // data order is the order written
    const Tensor back = file.tensor(name);
    CHECK(back.dtype() == tensor.dtype());
    CHECK(back.shape() == tensor.shape());
    CHECK(bytes_of(back) == bytes_of(tensor));
  }
  CHECK(file.tensor("strided").to_vector<float>() ==
        std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  // Header length is a multiple of 8, so the data is aligned.
  uint64_t header_size = 0;
  std::memcpy(&header_size, slurp(path).data(), 8);
  CHECK(header_size % 8 == 0);
  // Writing it again gives the same bytes.
  const std::string again = dir + "/again.safetensors";
  write_safetensors(again, tensors, metadata);
  CHECK(slurp(again) == slurp(path));
  CHECK(error_text([&] {
          write_safetensors(again, {{"a", zeros({1})}, {"a", zeros({1})}}, {});
        }) == "checkpoint " + again + ": tensor name 'a' is empty, reserved or repeated");
}

TEST_CASE("two writers of one path use distinct temporaries, and the last commit wins whole") {
  const std::string dir = scratch("two-writers");
  const std::string path = dir + "/last.safetensors";
  AtomicFile first(path), second(path);
  CHECK(first.temporary_path() != second.temporary_path());
  CHECK(is_atomic_temporary(fs::path(first.temporary_path()).filename().string()));
  for (const char* other : {"last.safetensors", "last.safetensors.tmp", "x.tmp.12", "x.tmp.1.b", ".tmp.1.2"})
    CHECK_MESSAGE(!is_atomic_temporary(other), other);
  first.write("first");
  second.write("second");
  first.commit();
  second.commit();
  CHECK(slurp(path) == "second");
  CHECK(temporaries_in(dir).empty());
}

TEST_CASE("a failed write leaves the old checkpoint intact and no temporary file") {
  const std::string dir = scratch("atomic");
  const std::string path = dir + "/last.safetensors";
  write_safetensors(path, {{"w", full({4}, 1.0)}}, {{"version", "old"}});
  const std::string old_bytes = slurp(path);

  SUBCASE("the disk fills up mid-write") {
    // A file-size limit makes the writes fail part-way (EFBIG), as a full disk would.
    struct rlimit saved;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    auto* previous_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved;
    small.rlim_cur = 4096;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    const std::string message = error_text([&] {
      write_safetensors(path, {{"w", zeros({1 << 16})}}, {{"version", "new"}});
    });
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, previous_handler);
    CHECK(message.find("checkpoint " + path + ": ") == 0);
    CHECK(message.find(".tmp") != std::string::npos);
  }
  SUBCASE("the rename fails") {
    const std::string directory_path = dir + "/occupied";
    fs::create_directories(directory_path + "/child");  // rename(file, non-empty dir) fails
    const std::string message = error_text([&] {
      write_safetensors(directory_path, {{"w", zeros({4})}}, {});
    });
    CHECK(message.find("checkpoint " + directory_path + ": cannot rename " + directory_path + ".tmp.") == 0);
    CHECK(message.find(" over it") != std::string::npos);
    CHECK(fs::is_directory(directory_path));
  }
  SUBCASE("the temporary file cannot be created") {
    const std::string missing = dir + "/no/such/dir/last.safetensors";
    CHECK(error_text([&] {
            write_safetensors(missing, {{"w", zeros({4})}}, {});
          }).find("checkpoint " + missing + ": cannot create " + missing + ".tmp") == 0);
  }
  CHECK(slurp(path) == old_bytes);
  CHECK(temporaries_in(dir).empty());
  CHECK(SafetensorsFile::read(path).metadata().at("version") == "old");
}

TEST_CASE("every corrupt file is refused with a message naming the problem") {
  const std::string dir = scratch("corrupt");
  const std::string path = dir + "/bad.safetensors";
  const std::string good_header = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  const std::string data(16, '\0');
  auto message = [&](const std::string& bytes) {
    spit(path, bytes);
    return error_text([&] { SafetensorsFile::read(path); });
  };
  const std::string prefix = "checkpoint " + path + ": ";
  REQUIRE(message(file_bytes(good_header, data)) == "(no error)");

  CHECK(message("") == prefix + "file is 0 bytes, too short for the 8-byte header length");
  CHECK(message(std::string("\x10\x00\x00", 3)) ==
        prefix + "file is 3 bytes, too short for the 8-byte header length");
  CHECK(message(file_bytes(good_header, data, 1000)) ==
        prefix + "header length 1000 exceeds the " + std::to_string(good_header.size() + 16) +
            " bytes that follow it (truncated or not a safetensors file)");
  CHECK(message(file_bytes(good_header, data, ~uint64_t(0)))
            .find("header length 18446744073709551615 exceeds") != std::string::npos);
  CHECK(message(file_bytes(R"({"a":{"dtype":"F32",)", data)).find(prefix + "header is not valid JSON (") ==
        0);
  CHECK(message(file_bytes("[1,2]", "")) == prefix + "header is not a JSON object");
  CHECK(message(file_bytes(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,400]}})", data)) ==
        prefix + "tensor a has data_offsets [0,400] outside the 16 bytes of data");
  CHECK(message(file_bytes(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[8,4]}})", data)) ==
        prefix + "tensor a has data_offsets [8,4] outside the 16 bytes of data");
  CHECK(message(file_bytes(good_header, std::string(10, '\0'))) ==
        prefix + "tensor a has data_offsets [0,16] outside the 10 bytes of data");  // truncated data
  CHECK(message(file_bytes(R"({"a":{"dtype":"F16","shape":[2,4],"data_offsets":[0,16]}})", data)) ==
        prefix + "tensor a has dtype F16; kindling reads F32, I64, U8 and BF16");
  CHECK(message(file_bytes(R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", data)) ==
        prefix + "tensor a (F32[2,3]) needs 24 bytes but data_offsets [0,16] hold 16");
  CHECK(message(file_bytes(R"({"a":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]}})", data)) ==
        prefix + "tensor a has a shape entry -2 that is not a size");
  CHECK(message(file_bytes(R"({"a":{"shape":[4],"data_offsets":[0,16]}})", data)) ==
        prefix + "tensor a has no dtype string");
  CHECK(message(file_bytes(R"({"a":{"dtype":"F32","shape":[4]}})", data)) ==
        prefix + "tensor a has no data_offsets [begin, end] of two byte offsets");
  CHECK(message(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           data)) ==
        prefix +
            "tensor b starts at byte 4 of the data, expected 8 (tensors must not overlap or leave gaps)");
  CHECK(message(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data)) ==
        prefix + "8 bytes of data follow the last tensor (the file is not a valid safetensors file)");
  CHECK(message(file_bytes(
            R"({"__metadata__":{"epoch":3},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})",
            data)) == prefix + "__metadata__ value of epoch is not a string");
  CHECK(error_text([&] {
          SafetensorsFile::read(dir + "/absent.safetensors");
        }).find("checkpoint " + dir + "/absent.safetensors: cannot open for reading") == 0);
}

TEST_CASE("a Python script with only json and struct reads a kindling checkpoint") {
  if (std::system("python3 -c 'import json, struct' > /dev/null 2>&1") != 0) {
    MESSAGE("python3 is not available: skipping the standard-library reader check");
    return;
  }
  const std::string dir = scratch("python");
  const std::string path = dir + "/model.safetensors";
  Generator g(3);
  auto model = make_model("resnet20", 3, 10, 32, g);
  Sgd sgd(model->named_parameters(), {0.1, 0.9, 0, 0, false});
  CheckpointInfo info;
  info.model = "resnet20";
  info.epoch = 2;
  save_checkpoint(path, model->state_dict(), sgd.state_dict(), info);

  // What the script must find: metadata, and the dtype, shape and leading values of a few tensors.
  nlohmann::json expect;
  expect["metadata"] = {
      {"model", "resnet20"}, {"epoch", "2"}, {"format", "kindling"}, {"format_version", "1"}};
  const NamedTensors state = model->state_dict();
  for (const char* name : {"conv1.weight", "layer2.0.bn1.running_var", "fc.bias"}) {
    const Tensor t = *find_tensor(state, name);
    std::vector<float> values = t.to_vector<float>();
    values.resize(std::min<size_t>(values.size(), 5));
    expect["tensors"][name] = {{"dtype", "F32"}, {"shape", t.shape()}, {"values", values}};
  }
  expect["tensors"]["layer3.2.bn2.num_batches_tracked"] = {
      {"dtype", "I64"}, {"shape", Shape{}}, {"values", {0}}};
  expect["tensors"]["optimizer.fc.weight.step"] = {{"dtype", "I64"}, {"shape", Shape{}}, {"values", {0}}};
  expect["tensors"]["optimizer.fc.weight.momentum_buffer"] = {
      {"dtype", "F32"}, {"shape", {10, 64}}, {"values", {0.0}}};
  const std::string expect_path = dir + "/expect.json";
  spit(expect_path, expect.dump());

  const std::string script = std::string(KINDLING_SOURCE_DIR) + "/tests/reference/read_checkpoint.py";
  CHECK(std::system(("python3 " + script + " " + path + " " + expect_path).c_str()) == 0);
  // The check can fail: a wrong expectation is reported.
  expect["tensors"]["fc.bias"]["shape"] = {11};
  spit(expect_path, expect.dump());
  CHECK(std::system(("python3 " + script + " " + path + " " + expect_path + " > /dev/null").c_str()) != 0);
}

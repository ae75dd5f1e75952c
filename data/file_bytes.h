// Reading a data file whole, raw or gzip-compressed. Compression is detected by the gzip magic
// (1f 8b), never by the file name, so `train-images-idx3-ubyte` that is secretly gzip still loads.
// Every failure is a FileError that names the file and says what was expected and what was found.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace kindling::data {

// Largest decompressed file we accept. The biggest published file (EMNIST byclass training
// images) is 547 MB; the cap stops a small corrupt or hostile gzip from exhausting memory.
constexpr size_t kMaxDecompressedBytes = size_t(2) << 30;

bool is_gzip(std::span<const uint8_t> bytes);

// Inflates a complete gzip stream (several concatenated members are allowed, as gzip(1) writes
// them). Requires: bytes start with the gzip magic. Ensures: the CRC and length of every member were
// checked by zlib. Throws FileError naming `name` on corrupt data, truncation, trailing garbage or
// an output larger than max_bytes.
std::vector<uint8_t> gunzip(const std::string& name, std::span<const uint8_t> compressed,
                            size_t max_bytes = kMaxDecompressedBytes);

// Returns the bytes as stored when they are not gzip, else their decompressed content.
std::vector<uint8_t> decode_file_bytes(const std::string& name, std::vector<uint8_t> bytes,
                                       size_t max_bytes = kMaxDecompressedBytes);

// Reads the whole file and decodes it as above. Throws FileError when it cannot be opened or read.
std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path,
                                     size_t max_bytes = kMaxDecompressedBytes);

}  // namespace kindling::data

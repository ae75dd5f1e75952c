// Whole-file reads with in-memory gzip inflation (zlib's inflate with gzip framing).
#include "data/file_bytes.h"

#include "core/error.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>

namespace kindling::data {

bool is_gzip(std::span<const uint8_t> bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

namespace {

// Owns a z_stream so that every exit path, exceptions included, calls inflateEnd.
struct Inflater {
  z_stream stream{};
  explicit Inflater(const std::string& name) {
    // 16 + MAX_WBITS: expect the gzip wrapper and check its CRC-32 and length trailer.
    int status = inflateInit2(&stream, 16 + MAX_WBITS);
    KINDLING_CHECK(status == Z_OK, FileError, "{}: cannot start gzip decompression (zlib error {})", name,
                   status);
  }
  ~Inflater() { inflateEnd(&stream); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
};

}  // namespace

std::vector<uint8_t> gunzip(const std::string& name, std::span<const uint8_t> compressed, size_t max_bytes) {
  KINDLING_CHECK(is_gzip(compressed), FileError,
                 "{}: not a gzip stream: expected magic 1f 8b, found {} bytes that do not start with it",
                 name, compressed.size());
  Inflater inflater(name);
  z_stream& zs = inflater.stream;
  // The output grows by doubling from a guess; the size the trailer declares is not trusted.
  std::vector<uint8_t> out(std::min(max_bytes, compressed.size() * 2 + 65536));
  size_t in_pos = 0, out_pos = 0;
  size_t members = 1;
  for (;;) {
    if (out_pos == out.size()) {
      KINDLING_CHECK(out.size() < max_bytes, FileError,
                     "{}: gzip data decompresses to more than the {} bytes allowed for a data file", name,
                     max_bytes);
      out.resize(std::min(max_bytes, out.size() * 2));
    }
    // zlib counts in 32-bit uInt, so huge buffers are fed in slices.
    size_t in_avail = std::min<size_t>(compressed.size() - in_pos, UINT_MAX);
    size_t out_avail = std::min<size_t>(out.size() - out_pos, UINT_MAX);
    zs.next_in = const_cast<Bytef*>(compressed.data() + in_pos);
    zs.avail_in = static_cast<uInt>(in_avail);
    zs.next_out = out.data() + out_pos;
    zs.avail_out = static_cast<uInt>(out_avail);
    int status = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_avail - zs.avail_in;
    out_pos += out_avail - zs.avail_out;
    if (status == Z_STREAM_END) {
      if (in_pos == compressed.size()) break;
      // Concatenated members are valid gzip; anything else after the end is not.
      KINDLING_CHECK(is_gzip(compressed.subspan(in_pos)), FileError,
                     "{}: corrupt gzip data: expected end of file after gzip member {}, found {} "
                     "trailing bytes",
                     name, members, compressed.size() - in_pos);
      KINDLING_CHECK(inflateReset(&zs) == Z_OK, FileError, "{}: cannot restart gzip decompression", name);
      ++members;
      continue;
    }
    if (status == Z_OK) continue;
    if (status == Z_BUF_ERROR && zs.avail_out == 0) continue;  // only needs more output space
    if (status == Z_BUF_ERROR && in_pos == compressed.size()) {
      throw FileError(
          fmt::format("{}: truncated gzip data: the stream ended after {} compressed bytes without its end "
                      "marker and checksum (expected more data)",
                      name, compressed.size()));
    }
    throw FileError(fmt::format("{}: corrupt gzip data at compressed byte {}: {} (zlib error {})", name,
                                in_pos, zs.msg ? zs.msg : "invalid stream", status));
  }
  out.resize(out_pos);
  out.shrink_to_fit();
  return out;
}

std::vector<uint8_t> decode_file_bytes(const std::string& name, std::vector<uint8_t> bytes,
                                       size_t max_bytes) {
  if (!is_gzip(bytes)) return bytes;
  return gunzip(name, bytes, max_bytes);
}

std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path, size_t max_bytes) {
  const std::string name = path.string();
  std::error_code ec;
  KINDLING_CHECK(!std::filesystem::is_directory(path, ec), FileError,
                 "{}: expected a data file, found a directory", name);
  std::ifstream file(path, std::ios::binary);
  KINDLING_CHECK(file.is_open(), FileError, "{}: cannot open file: {}", name, std::strerror(errno));
  file.seekg(0, std::ios::end);
  const std::streamoff size = file.tellg();
  KINDLING_CHECK(size >= 0, FileError, "{}: cannot determine the file size", name);
  KINDLING_CHECK(static_cast<uint64_t>(size) <= max_bytes, FileError,
                 "{}: file is {} bytes, more than the {} bytes allowed for a data file", name, size,
                 max_bytes);
  file.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  file.read(reinterpret_cast<char*>(bytes.data()), size);
  KINDLING_CHECK(file.gcount() == size, FileError, "{}: read error: expected {} bytes, read {}", name, size,
                 file.gcount());
  return decode_file_bytes(name, std::move(bytes), max_bytes);
}

}  // namespace kindling::data

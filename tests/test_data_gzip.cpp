// gzip decoding of dataset files: detected by the magic bytes, concatenated members, and corrupt,
// truncated or oversized streams reported as FileErrors naming the file.
#include "data/file_bytes.h"
#include "tests/test_data_files.h"

#include <doctest/doctest.h>

#include <numeric>

using namespace kindling;
using namespace kindling::data;
using namespace kindling::test;

TEST_CASE("gzip is detected by its magic bytes, not by the file name") {
  TempDir dir;
  const auto raw = idx_bytes({3}, {1, 2, 3});
  write_bytes(dir / "plain.gz", raw);            // raw bytes behind a .gz name
  write_bytes(dir / "packed", gzip_bytes(raw));  // gzip behind a plain name
  CHECK(read_file_bytes(dir / "plain.gz") == raw);
  CHECK(read_file_bytes(dir / "packed") == raw);
  CHECK_FALSE(is_gzip(raw));
  CHECK(is_gzip(gzip_bytes(raw)));
}

TEST_CASE("gzip: concatenated members decompress to the concatenation, empty content is allowed") {
  const std::vector<uint8_t> first = {1, 2, 3}, second = {4, 5};
  auto both = gzip_bytes(first);
  const auto tail = gzip_bytes(second);
  both.insert(both.end(), tail.begin(), tail.end());
  CHECK(gunzip("two.gz", both) == std::vector<uint8_t>{1, 2, 3, 4, 5});
  CHECK(gunzip("empty.gz", gzip_bytes({})).empty());
  // A large, highly compressible payload exercises output growth.
  std::vector<uint8_t> big(5'000'000);
  std::iota(big.begin(), big.end(), uint8_t{0});
  CHECK(gunzip("big.gz", gzip_bytes(big)) == big);
}

TEST_CASE("gzip: corrupt, truncated and oversized streams are FileErrors naming the file") {
  std::vector<uint8_t> payload(20000);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  const auto gz = gzip_bytes(payload);
  REQUIRE(gz.size() > 100);
  SUBCASE("truncated at several points") {
    for (size_t keep : {size_t(2), size_t(10), gz.size() / 2, gz.size() - 8, gz.size() - 1}) {
      CAPTURE(keep);
      const std::vector<uint8_t> cut(gz.begin(), gz.begin() + keep);
      const std::string text = error_text([&] { gunzip("cut.gz", cut); });
      CHECK(contains(text, "cut.gz"));
      CHECK(contains(text, "truncated gzip data"));
    }
  }
  SUBCASE("a flipped byte inside the deflate data") {
    auto bad = gz;
    bad[gz.size() / 2] ^= 0xff;
    const std::string text = error_text([&] { gunzip("flip.gz", bad); });
    CHECK(contains(text, "flip.gz"));
    CHECK(contains(text, "gzip data"));
  }
  SUBCASE("a wrong CRC in the trailer") {
    auto bad = gz;
    bad[gz.size() - 8] ^= 0x01;
    const std::string text = error_text([&] { gunzip("crc.gz", bad); });
    CHECK(contains(text, "crc.gz"));
    CHECK(contains(text, "corrupt gzip data"));
    CHECK(contains(text, "incorrect data check"));
  }
  SUBCASE("a bad header (unknown compression method)") {
    auto bad = gz;
    bad[2] = 0x07;
    CHECK(contains(error_text([&] { gunzip("hdr.gz", bad); }), "corrupt gzip data"));
  }
  SUBCASE("trailing garbage after the stream") {
    auto bad = gz;
    bad.push_back(0x00);
    bad.push_back(0x42);
    const std::string text = error_text([&] { gunzip("tail.gz", bad); });
    CHECK(contains(text, "tail.gz"));
    CHECK(contains(text, "2 trailing bytes"));
  }
  SUBCASE("more output than the cap allows") {
    const std::string text = error_text([&] { gunzip("bomb.gz", gz, 1000); });
    CHECK(contains(text, "bomb.gz"));
    CHECK(contains(text, "more than the 1000 bytes"));
  }
  SUBCASE("a gzip IDX file on disk that is truncated") {
    TempDir dir;
    write_bytes(dir / "train-images-idx3-ubyte.gz", std::vector<uint8_t>(gz.begin(), gz.begin() + 50));
    const std::string text = error_text([&] { read_file_bytes(dir / "train-images-idx3-ubyte.gz"); });
    CHECK(contains(text, "train-images-idx3-ubyte.gz"));
    CHECK(contains(text, "truncated"));
  }
}

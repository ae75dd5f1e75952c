// Core: factories, metadata, views and storage sharing, contiguous(), size-0 / size-1 / stride-0
// geometry, the caching allocator, printing, the generator and the thread pool.
#include "core/allocator.h"
#include "core/autograd.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "core/spec.h"
#include "ops/ops.h"

#include "tests/test_util.h"

#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace {
using namespace kindling;

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

using kindling::test::error_text;

// ---- factories and metadata ----
TEST_CASE("factories fill the values they promise") {
  CHECK(values(zeros({2, 2})) == std::vector<float>{0, 0, 0, 0});
  CHECK(values(ones({3})) == std::vector<float>{1, 1, 1});
  CHECK(values(full({2}, 2.5)) == std::vector<float>{2.5f, 2.5f});
  CHECK(values(arange(4)) == std::vector<float>{0, 1, 2, 3});
  CHECK(values(arange(1.0, 2.0, 0.25)) == std::vector<float>{1.0f, 1.25f, 1.5f, 1.75f});
  Tensor labels = arange(3, TensorOptions{}.with_dtype(DType::i64));
  CHECK(labels.dtype() == DType::i64);
  CHECK(labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2});
  Tensor t = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.strides() == Shape{3, 1});
  CHECK(t.describe() == "f32[2,3] on cpu");
  CHECK(error_text([] { empty({2, -1}); }) == "empty: negative dimension in shape [2,-1]");
  CHECK(error_text([] {
          from_vector<float>({1, 2, 3}, {2, 2});
        }) == "from_vector: 3 values do not fill shape [2,2] (4 elements)");
  CHECK(error_text([] { zeros({2}).item<float>(); }) == "item(): tensor [2] has 2 elements, expected 1");
  CHECK(error_text([] { zeros({2}).data<int64_t>(); }) == "data<i64>() called on a f32 tensor");
}

TEST_CASE("devices and dims are parsed and checked with clear errors") {
  CHECK(Device::parse("cpu").is_cpu());
  CHECK(Device::parse("cuda:1").index == 1);
  CHECK(error_text([] { Device::parse("tpu"); }) == "unknown device 'tpu': expected cpu, cuda or cuda:N");
  CHECK(wrap_dim(-1, 3, "op") == 2);
  CHECK(error_text([] { wrap_dim(3, 3, "sum"); }) == "sum: dim 3 is out of range for a tensor with 3 dims");
}

// ---- views ----
TEST_CASE("views share storage and see each other's writes") {
  Tensor base = arange(12).reshape({3, 4});
  Tensor t = base.t();
  Tensor row = base.select(0, 1);
  Tensor every_other = base.slice(1, 0, 4, 2);
  Tensor flat = base.view({12});
  for (const Tensor* v : {&t, &row, &every_other, &flat}) CHECK(v->storage() == base.storage());
  CHECK(t.strides() == Shape{1, 4});
  CHECK(row.offset() == 4);
  CHECK(every_other.strides() == Shape{4, 2});
  CHECK(values(every_other) == std::vector<float>{0, 2, 4, 6, 8, 10});
  row.fill_(-1.0);  // writes through the view into base
  CHECK(values(base.select(0, 1)) == std::vector<float>{-1, -1, -1, -1});
  CHECK(values(t.select(0, 2)) == std::vector<float>{2, -1, 10});
  CHECK(values(flat.narrow(0, 3, 3)) == std::vector<float>{3, -1, -1});
}

TEST_CASE("contiguous() copies only when it must") {
  Tensor base = arange(6).reshape({2, 3});
  CHECK(base.contiguous().is_same(base));
  Tensor t = base.t();
  CHECK_FALSE(t.is_contiguous());
  Tensor dense = t.contiguous();
  CHECK(dense.is_contiguous());
  CHECK(dense.storage() != base.storage());
  CHECK(values(dense) == std::vector<float>{0, 3, 1, 4, 2, 5});
  // Size-1 dims never break contiguity, whatever their stride.
  Tensor column = as_strided(base, {3, 1}, {1, 99}, 0);
  CHECK(column.is_contiguous());
  CHECK(column.contiguous().is_same(column));
}

TEST_CASE("reshape views when it can and copies when it must, and view refuses to copy") {
  Tensor base = arange(24).reshape({2, 3, 4});
  Tensor merged = base.reshape({6, 4});
  CHECK(merged.storage() == base.storage());
  Tensor split_transposed = base.transpose(1, 2).reshape({2, 2, 2, 3});  // splits dim 1 (size 4)
  CHECK(split_transposed.storage() == base.storage());
  Tensor copied = base.transpose(1, 2).reshape({24});
  CHECK(copied.storage() != base.storage());
  CHECK(values(copied)[1] == 4.0f);
  CHECK(base.view({-1, 12}).shape() == Shape{2, 12});
  CHECK(error_text([&] { base.transpose(1, 2).view({24}); }) ==
        "view: cannot view f32[2,4,3] on cpu with strides [12,1,4] as [24] without a copy; use reshape");
  CHECK(error_text([&] {
          base.view({5, -1});
        }) == "view: shape [5,-1] is invalid for a tensor of 24 elements");
  CHECK(error_text([&] { base.view({-1, -1}); }) == "view: only one dim can be -1, got [-1,-1]");
}

TEST_CASE("size-0 dims flow through views, reductions, cat and matmul") {
  Tensor e = zeros({0, 3});
  CHECK(e.numel() == 0);
  CHECK(e.reshape({3, 0}).shape() == Shape{3, 0});
  CHECK(e.t().shape() == Shape{3, 0});
  CHECK(values(sum(e, 0)) == std::vector<float>{0, 0, 0});
  CHECK(sum(e, 1).shape() == Shape{0});
  CHECK(std::isnan(mean(e).item<float>()));
  CHECK(add(e, ones({3})).shape() == Shape{0, 3});
  CHECK(ones({4}).slice(0, 2, 2).numel() == 0);
  CHECK(values(cat({ones({1, 3}), e, zeros({1, 3})}, 0)) == std::vector<float>{1, 1, 1, 0, 0, 0});
  CHECK(values(matmul(zeros({2, 0}), zeros({0, 2}))) == std::vector<float>{0, 0, 0, 0});
  CHECK(matmul(zeros({0, 3}), ones({3, 2})).shape() == Shape{0, 2});
  CHECK(error_text([&] { max(e, 0); }) == "max: cannot reduce over an empty dim of f32[0,3] on cpu");
  CHECK(e.str() == "tensor([], shape=[0,3], dtype=f32)");
}

TEST_CASE("size-1 dims: squeeze, unsqueeze, broadcasting") {
  Tensor t = arange(3).reshape({1, 3, 1});
  CHECK(t.squeeze().shape() == Shape{3});
  CHECK(t.squeeze(0).shape() == Shape{3, 1});
  CHECK(t.squeeze(1).shape() == Shape{1, 3, 1});  // not size 1: unchanged
  CHECK(t.unsqueeze(-1).shape() == Shape{1, 3, 1, 1});
  CHECK(t.unsqueeze(0).storage() == t.storage());
  CHECK(t.flatten().shape() == Shape{3});
  CHECK(zeros({}).flatten().shape() == Shape{1});
  CHECK(add(t, ones({2, 1, 1, 4})).shape() == Shape{2, 1, 3, 4});
}

TEST_CASE("expand makes stride-0 views, and contiguous materialises them") {
  Tensor column = from_vector<float>({1, 2, 3}, {3, 1});
  Tensor wide = column.expand({2, 3, 4});
  CHECK(wide.strides() == Shape{0, 1, 0});
  CHECK(wide.storage() == column.storage());
  CHECK(column.expand({-1, 2}).shape() == Shape{3, 2});
  Tensor dense = wide.contiguous();
  CHECK(dense.strides() == Shape{12, 4, 1});
  CHECK(values(dense.select(0, 1).select(0, 2)) == std::vector<float>{3, 3, 3, 3});
  CHECK(sum(wide).item<float>() == doctest::Approx(48.0));
  CHECK(error_text([&] { column.expand({2, 4}); }) == "expand: cannot expand [3,1] to [2,4] (dim 0: 3 vs 2)");
}

TEST_CASE("strided copy_ and in-place updates work on non-contiguous destinations") {
  Tensor base = zeros({3, 4});
  Tensor t = base.t();
  t.copy_(arange(3));  // broadcast [3] over t's rows
  CHECK(values(base.select(1, 0)) == std::vector<float>{0, 1, 2});
  t.add_(ones({4, 3}), 2.0);
  t.mul_(10.0);
  CHECK(values(base.select(0, 2)) == std::vector<float>{40, 40, 40, 40});
}

// ---- allocator ----
TEST_CASE("the CPU allocator reuses blocks of the same size class") {
  Allocator& allocator = cpu_allocator();
  { Tensor warm = empty({1000}); }
  const AllocatorStats before = allocator.stats();
  for (int i = 0; i < 50; ++i) {
    Tensor a = empty({1000});
    Tensor b = empty({999});  // same size class as 1000 floats
    CHECK(reinterpret_cast<uintptr_t>(a.data_ptr()) % 64 == 0);
  }
  const AllocatorStats after = allocator.stats();
  CHECK(after.num_system_allocs <= before.num_system_allocs + 1);
  CHECK(after.num_allocs == before.num_allocs + 100);
  CHECK(after.allocated_bytes == before.allocated_bytes);
}

// ---- printing ----
TEST_CASE("tensors print readably") {
  CHECK(arange(6).reshape({2, 3}).str() ==
        "tensor([[0.0000, 1.0000, 2.0000],\n        [3.0000, 4.0000, 5.0000]], shape=[2,3], dtype=f32)");
  CHECK(full({}, 1.5).str() == "tensor(1.5000, shape=[], dtype=f32)");
  CHECK(arange(3, TensorOptions{}.with_dtype(DType::i64)).str() == "tensor([0, 1, 2], shape=[3], dtype=i64)");
  CHECK(arange(20).str() ==
        "tensor([0.0000, 1.0000, 2.0000, ..., 17.0000, 18.0000, 19.0000], shape=[20], dtype=f32)");
  Tensor leaf = ones({1});
  leaf.set_requires_grad(true);
  CHECK(leaf.str() == "tensor([1.0000], shape=[1], dtype=f32, requires_grad)");
  CHECK(Tensor().str() == "tensor(undefined)");
}

// ---- random numbers ----
TEST_CASE("the generator is deterministic and its state restores") {
  Generator a(42), b(42), c(43);
  std::vector<uint64_t> from_a, from_b;
  for (int i = 0; i < 5; ++i) from_a.push_back(a.next_u64()), from_b.push_back(b.next_u64());
  CHECK(from_a == from_b);
  CHECK(c.next_u64() != from_a[0]);

  Generator g(7);
  g.uniform();
  const GeneratorState saved = g.state();
  const double u = g.uniform(), n = g.normal();
  g.normal();  // leaves a spare normal behind; set_state must drop it
  g.set_state(saved);
  CHECK(g.uniform() == u);
  CHECK(g.normal() == n);

  manual_seed(3);
  const std::vector<float> first = values(randn({16}));
  manual_seed(3);
  CHECK(values(randn({16})) == first);
  for (float v : values(rand({100}, {}, &g, -2.0, -1.0))) CHECK((v >= -2.0f && v < -1.0f));
  for (int i = 0; i < 100; ++i) {
    const int64_t k = g.randint(3);
    CHECK((k >= 0 && k < 3));
  }
}

// ---- thread pool ----
TEST_CASE("parallel_for covers every index exactly once") {
  for (int64_t grain : {1, 7, 1000}) {
    std::vector<std::atomic<int>> hits(1000);
    parallel_for(0, 1000, grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) hits[size_t(i)]++;
    });
    int wrong = 0;
    for (auto& h : hits) wrong += h.load() != 1;
    CHECK_MESSAGE(wrong == 0, "grain ", grain);
  }
  int calls = 0;
  parallel_for(5, 5, 1, [&](int64_t, int64_t) { ++calls; });
  CHECK(calls == 0);
}

TEST_CASE("parallel_for rethrows a worker's exception and nests serially") {
  CHECK_THROWS_WITH_AS(parallel_for(0, 100, 1,
                                    [](int64_t begin, int64_t end) {
                                      if (begin <= 99 && 99 < end) throw ValueError("chunk with 99 failed");
                                    }),
                       "chunk with 99 failed", ValueError);
  if (num_threads() > 1) {  // with one thread there is no pool region to nest in
    std::atomic<int> nested_serial{0}, in_region{0};
    parallel_for(0, 4, 1, [&](int64_t, int64_t) {
      in_region += in_parallel_region();
      parallel_for(0, 10, 1, [&](int64_t begin, int64_t end) { nested_serial += begin == 0 && end == 10; });
    });
    CHECK(nested_serial.load() >= 2);
    CHECK(in_region.load() == nested_serial.load());
  }
  CHECK_FALSE(in_parallel_region());
  // The pool still works after an exception.
  std::atomic<int64_t> total{0};
  parallel_for(0, 100, 1, [&](int64_t begin, int64_t end) { total += end - begin; });
  CHECK(total.load() == 100);
}

}  // namespace

TEST_CASE("spec strings: name, options in order, lists, numbers, and the errors that name the spec") {
  const Spec spec = parse_spec(" focal : gamma = 2 ,, alpha=0.25 ", "loss focal");
  CHECK(spec.name == "focal");
  REQUIRE(spec.options.size() == 2);
  CHECK(spec.options[0] == std::pair<std::string, std::string>{"gamma", "2"});
  CHECK(spec.options[1] == std::pair<std::string, std::string>{"alpha", "0.25"});
  CHECK(parse_spec("ce", "loss ce").options.empty());
  CHECK(split_list("0/ 0.5 /1") == std::vector<std::string>{"0", "0.5", "1"});
  CHECK(parse_finite("1e-3") == 1e-3);
  for (const char* bad : {"", "1x", "nan", "inf", "1 "}) CHECK_MESSAGE(!parse_finite(bad).has_value(), bad);
  CHECK_THROWS_WITH_AS(parse_spec("step:gamma", "schedule 'step:gamma'", " (keys: gamma)"),
                       "schedule 'step:gamma': expected key=value, got 'gamma' (keys: gamma)", ValueError);
  CHECK_THROWS_WITH_AS(parse_spec("step:=1", "schedule 'step:=1'"),
                       "schedule 'step:=1': expected key=value, got '=1'", ValueError);
  CHECK_THROWS_WITH_AS(parse_spec("step:gamma=1,gamma=2", "schedule"), "schedule: gamma is given twice",
                       ValueError);
}

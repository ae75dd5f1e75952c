// One seeded, counter-based generator: each draw hashes (seed, counter) with SplitMix64, so the
// whole state is two integers that a checkpoint can store and a GPU kernel can reproduce.
// Weights, shuffling and augmentation draw on the CPU, so a CPU run and a CUDA run see the same
// numbers.
#pragma once
#include <cstdint>

namespace kindling {

// SplitMix64 finaliser: a bijective 64-bit mix. Usable from host and device code.
#if defined(__CUDACC__)
__host__ __device__
#endif
    inline uint64_t
    mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
// The k-th 64-bit random value of stream `seed`.
#if defined(__CUDACC__)
__host__ __device__
#endif
    inline uint64_t
    random_bits(uint64_t seed, uint64_t k) {
  return mix64(mix64(seed) ^ k);
}
// Uniform float in [0, 1) with 24 random bits.
#if defined(__CUDACC__)
__host__ __device__
#endif
    inline float
    bits_to_unit_float(uint64_t bits) {
  return float(bits >> 40) * (1.0f / 16777216.0f);
}

struct GeneratorState {
  uint64_t seed = 0;
  uint64_t counter = 0;
};

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { state_.seed = seed; }
  void manual_seed(uint64_t seed) { state_ = {seed, 0}; }
  uint64_t next_u64() { return random_bits(state_.seed, state_.counter++); }
  double uniform();            // [0, 1), 53 bits
  double normal();             // standard normal (Box-Muller, both values used in turn)
  int64_t randint(int64_t n);  // [0, n), unbiased
  // Reserves `count` counter values for a kernel that generates them itself; returns the first.
  uint64_t reserve(uint64_t count) {
    uint64_t first = state_.counter;
    state_.counter += count;
    return first;
  }
  GeneratorState state() const { return state_; }
  void set_state(GeneratorState s) {
    state_ = s;
    has_spare_normal_ = false;
  }

 private:
  GeneratorState state_;
  bool has_spare_normal_ = false;
  double spare_normal_ = 0.0;
};

// The process-wide generator behind rand(), randn(), weight initialisation and shuffling.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace kindling

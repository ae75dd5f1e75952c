// `kindling info` and `kindling losses`.
#include "apps/commands.h"
#include "core/parallel.h"
#include "dist/communicator.h"
#include "losses/registry.h"
#include "ops/device_info.h"

#include <fmt/core.h>

namespace kindling::app {

namespace {
std::string version_text(long v, long major_div, long minor_div, long minor_mod) {
  return fmt::format("{}.{}", v / major_div, (v / minor_div) % minor_mod);
}
}  // namespace

Command add_info(CLI::App& app) {
  (void)app;
  return [] {
    fmt::print("kindling {}\n", KINDLING_VERSION);
#ifdef KINDLING_SANITIZE
    const char* sanitize = "on";
#else
    const char* sanitize = "off";
#endif
    fmt::print("build: {} ({}), sanitizers {}\n", KINDLING_BUILD_TYPE, KINDLING_CXX_COMPILER, sanitize);
    const BlasInfo blas = blas_info();
    fmt::print("cpu: {} threads (KINDLING_NUM_THREADS), OpenBLAS core {} ({} BLAS thread)\n", num_threads(),
               blas.core, blas.blas_threads);
    fmt::print("openblas: {}\n", blas.config);
    const dist::Communicator& world = dist::world();
    fmt::print("mpi: {}\nnccl: {}\n", dist::mpi_version(), dist::nccl_version());
    fmt::print("world: size {}, rank {} ({})\n", world.size(), world.rank(), world.name());
    const CudaInfo cuda = cuda_info();
    if (!cuda.compiled) {
      fmt::print("cuda: not compiled in\n");
      return 0;
    }
    fmt::print("cuda: runtime {}, driver {}\n", version_text(cuda.runtime_version, 1000, 10, 100),
               cuda.driver_version ? version_text(cuda.driver_version, 1000, 10, 100) : "none");
    fmt::print("cudnn: compiled {}.{}.{}, loaded {}.{}.{}\n", cuda.cudnn_compiled / 10000,
               (cuda.cudnn_compiled / 100) % 100, cuda.cudnn_compiled % 100, cuda.cudnn_loaded / 10000,
               (cuda.cudnn_loaded / 100) % 100, cuda.cudnn_loaded % 100);
    if (cuda.gpus.empty()) fmt::print("gpus: {}\n", cuda.error.empty() ? "no GPU" : cuda.error);
    for (size_t i = 0; i < cuda.gpus.size(); ++i) fmt::print("gpu {}: {}\n", i, cuda.gpus[i]);
    return 0;
  };
}

Command add_losses(CLI::App& app) {
  (void)app;
  return [] {
    fmt::print("{}", losses_help());
    return 0;
  };
}

}  // namespace kindling::app

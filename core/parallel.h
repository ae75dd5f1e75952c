// One thread pool for the CPU backend. Kernels split loops with parallel_for; loops smaller than
// their grain stay serial, and a parallel_for inside a pool thread runs serially, so there is only
// ever one level of threads. OpenBLAS is pinned to one thread for the same reason: kernels call
// sgemm from inside pool threads, never a threaded BLAS from several threads.
#pragma once
#include <cstdint>
#include <functional>

namespace kindling {

// KINDLING_NUM_THREADS, else the cores of this process's CPU affinity mask (mpirun binds each rank
// to its own). set_num_threads resizes the pool.
int num_threads();
void set_num_threads(int n);
// Calls fn(chunk_begin, chunk_end) over [begin, end) on up to num_threads() threads, the caller
// included; serial when end - begin <= grain or when already inside a pool thread. Exceptions thrown
// by fn are rethrown in the caller (the first one wins).
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);
bool in_parallel_region();

// For profiling on a shared machine, where wall time measures the neighbours: while enabled, each
// parallel_for adds how much longer its slowest chunk took than the caller's own chunk, in thread
// CPU time. The caller thread's CPU time plus this sum estimates the wall time on dedicated cores,
// load imbalance and serial sections included (bench/resnet_step reports it).
void set_parallel_wait_profiling(bool enabled);
int64_t parallel_wait_ns();  // summed since profiling was last enabled

}  // namespace kindling

// A fixed pool of worker threads that parallel_for hands equal chunks to. The caller runs one
// chunk itself and waits for the rest, so with n threads there are n-1 workers. Workers, and the
// caller waiting for them, spin for a short while (kSpin) before they sleep on a condition
// variable: a training step makes hundreds of parallel_for calls a few milliseconds apart, and a
// sleeping thread takes tens of microseconds to wake (more in a virtual machine), each time.
#include "core/parallel.h"

#include <cblas.h>

#include <sched.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kindling {
namespace {

thread_local bool tls_in_parallel = false;

// How long a thread polls for work (a worker) or for the workers' end (the caller) before it sleeps.
constexpr std::chrono::microseconds kSpin{100};

// Polls done() until it is true or kSpin has passed; says which.
template <typename Done>
bool spin_until(Done&& done) {
  const auto give_up = std::chrono::steady_clock::now() + kSpin;
  for (int polls = 0;; ++polls) {
    if (done()) return true;
    if ((polls & 63) == 63 && std::chrono::steady_clock::now() > give_up) return false;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
}
std::atomic<bool> profiling{false};
std::atomic<int64_t> wait_ns{0};

int64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int default_threads() {
  if (const char* env = std::getenv("KINDLING_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  // The cores this process may run on: mpirun (and taskset, srun) bind each rank to its own cores,
  // and a thread per core of the machine would then crowd them.
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) return std::max(1, CPU_COUNT(&allowed));
  return std::max(1u, std::thread::hardware_concurrency());
}

class ThreadPool {
 public:
  explicit ThreadPool(int threads) { resize(threads); }
  ~ThreadPool() { stop_workers(); }

  int size() const { return int(workers_.size()) + 1; }

  void resize(int threads) {
    if (threads == size() && !workers_.empty()) return;
    stop_workers();
    stopping_.store(false);
    // New workers start at the current generation: the last task ran already and is gone.
    for (int i = 0; i < threads - 1; ++i)
      workers_.emplace_back([this, i, start = generation_.load()] { worker_loop(i, start); });
  }

  void run(int64_t begin, int64_t end, int chunks, const std::function<void(int64_t, int64_t)>& fn) {
    std::unique_lock call_lock(call_mutex_);  // one parallel_for at a time from outside the pool
    const int64_t total = end - begin;
    auto chunk_range = [&](int c) {
      return std::pair{begin + total * c / chunks, begin + total * (c + 1) / chunks};
    };
    std::exception_ptr first_error;
    std::mutex error_mutex;
    const bool profile = profiling.load(std::memory_order_relaxed);
    std::vector<int64_t> chunk_cpu_ns(profile ? size_t(chunks) : 0);
    auto guarded = [&](int c) {
      auto [b, e] = chunk_range(c);
      const int64_t start = profile ? thread_cpu_ns() : 0;
      try {
        if (b < e) fn(b, e);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
      }
      if (profile) chunk_cpu_ns[size_t(c)] = thread_cpu_ns() - start;
    };
    const std::function<void(int)> task = guarded;
    {
      std::lock_guard lock(mutex_);
      task_ = &task;
      num_chunks_ = chunks;
      pending_ = chunks - 1;
      ++generation_;
    }
    wake_.notify_all();
    tls_in_parallel = true;
    guarded(0);
    tls_in_parallel = false;
    auto finished = [&] { return pending_.load(std::memory_order_acquire) == 0; };
    if (!spin_until(finished)) {
      std::unique_lock lock(mutex_);
      done_.wait(lock, finished);
    }
    if (profile) wait_ns += *std::max_element(chunk_cpu_ns.begin(), chunk_cpu_ns.end()) - chunk_cpu_ns[0];
    if (first_error) std::rethrow_exception(first_error);
  }

 private:
  // A worker polls the generation without the mutex, then reads the generation, the chunk count
  // and the task under it, as a sleeping one does: a worker with no chunk in one generation may
  // see the next one's, never a mixture.
  void worker_loop(int index, uint64_t seen) {
    tls_in_parallel = true;
    for (;;) {
      auto woken = [&] {
        return stopping_.load(std::memory_order_acquire) ||
               generation_.load(std::memory_order_acquire) != seen;
      };
      spin_until(woken);
      const std::function<void(int)>* task;
      const int chunk = index + 1;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, woken);
        if (stopping_) return;
        seen = generation_;
        if (chunk >= num_chunks_) continue;
        task = task_;
      }
      (*task)(chunk);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock(mutex_);  // the caller checks pending_ under it before it sleeps
        done_.notify_all();
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard lock(mutex_);
      stopping_.store(true, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex call_mutex_, mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* task_ = nullptr;  // the running parallel_for's, on its caller's stack
  int num_chunks_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
};

ThreadPool& pool() {
  static ThreadPool* instance = [] {
    openblas_set_num_threads(1);  // one level of threads: ours
    return new ThreadPool(default_threads());
  }();
  return *instance;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) { pool().resize(std::max(1, n)); }

bool in_parallel_region() { return tls_in_parallel; }

void set_parallel_wait_profiling(bool enabled) {
  wait_ns = 0;
  profiling = enabled;
}

int64_t parallel_wait_ns() { return wait_ns.load(); }

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t total = end - begin;
  if (total <= 0) return;
  if (tls_in_parallel || total <= std::max<int64_t>(grain, 1)) {
    fn(begin, end);
    return;
  }
  ThreadPool& p = pool();
  const int chunks = int(std::min<int64_t>(p.size(), (total + grain - 1) / std::max<int64_t>(grain, 1)));
  if (chunks <= 1) {
    fn(begin, end);
    return;
  }
  p.run(begin, end, chunks, fn);
}

}  // namespace kindling

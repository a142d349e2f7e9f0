// A fixed pool of worker threads for CPU kernels.
//
// parallel_for splits [0, n) into contiguous chunks and runs them on the pool plus the calling thread, returning when
// all are done. A call made from inside a worker runs serially, so nested parallel kernels cannot deadlock. The first
// exception thrown by a chunk is rethrown on the caller after every chunk has finished.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace showo2::cpu {

class ThreadPool {
 public:
  // num_threads <= 0 means "one per hardware thread" (default_thread_count()). Counts include the calling thread.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Runs fn(begin, end) over chunks covering [0, n). `grain` is the smallest chunk worth a thread.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t begin, int64_t end)>& fn);

  // SHOWO2_NUM_THREADS when set to a positive integer; otherwise the hardware threads available to this process
  // (respects CPU affinity masks). At least 1.
  static int default_thread_count();

 private:
  void worker_loop(int index);

  int num_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::mutex run_mutex_;  // serialises concurrent parallel_for callers on one pool
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_chunk_ = 0;
  int64_t next_chunk_ = 0;
  int64_t num_chunks_ = 0;
  int64_t chunks_done_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

}  // namespace showo2::cpu

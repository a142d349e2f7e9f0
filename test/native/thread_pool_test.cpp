// The thread pool: full coverage of the range, exception propagation, nesting, and concurrent callers.
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cpu/thread_pool.h"
#include "test_util.h"

using showo2::cpu::ThreadPool;

SHOWO2_TEST(covers_every_index_exactly_once) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    CHECK_EQ(pool.num_threads(), threads);
    for (int64_t n : {0, 1, 5, 64, 1000, 100003}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (auto& h : hits) h = 0;
      pool.parallel_for(n, 7, [&](int64_t b, int64_t e) {
        CHECK(0 <= b && b < e && e <= n);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (auto& h : hits) CHECK_EQ(h.load(), 1);
    }
  }
}

SHOWO2_TEST(rethrows_the_first_exception_after_all_chunks) {
  ThreadPool pool(4);
  std::atomic<int> ran{0};
  bool caught = false;
  try {
    pool.parallel_for(64, 1, [&](int64_t b, int64_t e) {
      ran++;
      if (b <= 5 && 5 < e) throw std::runtime_error("boom");
    });
  } catch (const std::runtime_error& e) {
    caught = std::string(e.what()) == "boom";
  }
  CHECK(caught);
  // The pool is still usable afterwards.
  std::atomic<int64_t> sum{0};
  pool.parallel_for(100, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sum += i;
  });
  CHECK_EQ(sum.load(), 4950);
}

SHOWO2_TEST(nested_calls_run_serially_without_deadlock) {
  ThreadPool pool(4);
  std::atomic<int64_t> total{0};
  pool.parallel_for(8, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      pool.parallel_for(10, 1, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
  });
  CHECK_EQ(total.load(), 80);
}

SHOWO2_TEST(concurrent_callers_share_one_pool) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 50; ++rep)
        pool.parallel_for(1000, 10, [&](int64_t b, int64_t e) { total += e - b; });
    });
  for (auto& t : callers) t.join();
  CHECK_EQ(total.load(), 4 * 50 * 1000);
}

SHOWO2_TEST(default_thread_count_honours_the_environment) {
  unsetenv("SHOWO2_NUM_THREADS");
  int hardware = ThreadPool::default_thread_count();
  CHECK(hardware >= 1);
  setenv("SHOWO2_NUM_THREADS", "3", 1);
  CHECK_EQ(ThreadPool::default_thread_count(), 3);
  CHECK_EQ(ThreadPool(0).num_threads(), 3);
  for (const char* bad : {"0", "-2", "abc", "4x", ""}) {
    setenv("SHOWO2_NUM_THREADS", bad, 1);
    CHECK_EQ(ThreadPool::default_thread_count(), hardware);
  }
  unsetenv("SHOWO2_NUM_THREADS");
}

SHOWO2_TEST_MAIN()

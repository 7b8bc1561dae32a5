// Concurrent submitters on one Context with one reaper: every completion exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

constexpr int kThreads = 4;
constexpr int kPerThread = 200;
constexpr int kTotal = kThreads * kPerThread;

// Each submitter reads its own cached file (user data t * kPerThread + i) in batches of 8,
// resuming after partial submits and EAGAIN; one thread reaps.
void run_submitters_and_reaper(aio::Context& ctx, bool use_pgetevents) {
  std::vector<Requests> reqs;
  for (int t = 0; t < kThreads; ++t)
    reqs.push_back(Requests::file_reads(kPerThread, 16, static_cast<std::uint64_t>(t * kPerThread)));
  std::atomic<int> submit_errors{0};
  std::atomic<bool> go{false};
  std::vector<int> seen(kTotal, 0);
  std::size_t reaped = 0;
  int bad_res = 0;

  std::thread reaper([&] {
    std::vector<io_event> evs(64);
    const auto deadline = Clock::now() + 20s;
    while (reaped < static_cast<std::size_t>(kTotal) && Clock::now() < deadline) {
      auto g = use_pgetevents ? ctx.pgetevents(1, evs, 100ms, nullptr) : ctx.getevents(1, evs, 100ms);
      if (!g) continue;
      for (std::size_t i = 0; i < *g; ++i) {
        const auto id = aio::user_data(evs[i]);
        if (id < static_cast<std::uint64_t>(kTotal)) ++seen[static_cast<std::size_t>(id)];
        if (evs[i].res != 16) ++bad_res;
      }
      reaped += *g;
    }
  });
  std::vector<std::thread> submitters;
  for (int t = 0; t < kThreads; ++t) {
    submitters.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      const Requests& mine = reqs[static_cast<std::size_t>(t)];
      for (std::size_t i = 0; i < mine.size();) {
        auto r = ctx.submit(mine.batch(i, std::min<std::size_t>(8, mine.size() - i)));
        if (!r) {
          if (r.error() == std::errc::resource_unavailable_try_again) {
            std::this_thread::yield();
            continue;
          }
          ++submit_errors;
          return;
        }
        i += *r;  // a partial submit resumes at the first not accepted
      }
    });
  }
  go = true;
  for (auto& th : submitters) th.join();
  reaper.join();
  EXPECT_EQ(submit_errors.load(), 0);
  EXPECT_EQ(reaped, static_cast<std::size_t>(kTotal));
  EXPECT_EQ(bad_res, 0);
  int once = 0;
  for (int v : seen) once += v == 1;
  EXPECT_EQ(once, kTotal) << "some user_data seen zero or several times";
  for (const Requests& r : reqs) EXPECT_TRUE(r.data_ok());
  io_event extra[1];
  auto none = ctx.getevents(0, extra, 0ns);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, 0u);
}

TEST(ThreadSafety, FourSubmittersOneReaperEachCompletionExactlyOnce) {
  auto c = aio::Context::create(kTotal);
  ASSERT_TRUE(c);
  run_submitters_and_reaper(*c, false);
}

TEST(ThreadSafety, FourSubmittersOnePgeteventsReaperOnSmallRing) {
  // A ring far smaller than the total: submitters hit EAGAIN and partial submits and must
  // wait for the reaper, which keeps the kernel's accounting honest.
  auto c = aio::Context::create(16);
  ASSERT_TRUE(c);
  run_submitters_and_reaper(*c, true);
}

TEST(ThreadSafety, SyscallReapModeFourSubmittersOneReaper) {
  auto c = aio::Context::create(kTotal, aio::ReapMode::syscall);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->ring_reaping());
  run_submitters_and_reaper(*c, false);
}

}  // namespace

// aio::Observer's bookkeeping driven directly (through the library's private recording
// entry points, src/observer_access.hpp): the edges a
// Context in normal use rarely reaches — errno out of range, a full tuple table, a full
// latency table, hash collisions, tombstones, tiny latencies, a latency table that cannot
// be allocated, summary() with every kind of line.
#include <gtest/gtest.h>

#include <aio/observer.hpp>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstddef>
#include <string>
#include <vector>

#include "observer_access.hpp"

// The sanitizers' allocators abort on an impossible allocation unless told to answer
// nullptr like the real one (NoLatencyTableRecordsNothing asks for 2^47 bytes on purpose).
// Hooks the runtimes call at start-up; plain unused functions without a sanitizer.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }
extern "C" const char* __tsan_default_options() { return "allocator_may_return_null=1"; }

namespace {

using Rec = aio::detail::ObserverAccess;

aio::SyscallInfo info(aio::Syscall call, long nr, long min_nr, long long timeout_ns, bool sigmask, long result) {
  return aio::SyscallInfo{call, 1, nr, min_nr, timeout_ns, sigmask, result, {}};
}

TEST(ObserverPaths, SyscallNamesIncludingAnUnknownOne) {
  EXPECT_STREQ(aio::to_string(aio::Syscall::setup), "io_setup");
  EXPECT_STREQ(aio::to_string(aio::Syscall::destroy), "io_destroy");
  EXPECT_STREQ(aio::to_string(aio::Syscall::submit), "io_submit");
  EXPECT_STREQ(aio::to_string(aio::Syscall::cancel), "io_cancel");
  EXPECT_STREQ(aio::to_string(aio::Syscall::getevents), "io_getevents");
  EXPECT_STREQ(aio::to_string(aio::Syscall::pgetevents), "io_pgetevents");
  EXPECT_STREQ(aio::to_string(static_cast<aio::Syscall>(42)), "io_?");
}

TEST(ObserverPaths, ErrorsOutOfRangeAndCancelAccepted) {
  aio::Observer obs;
  Rec::syscall(obs, info(aio::Syscall::cancel, 0, 0, -1, false, -EINPROGRESS));  // accepted: no error
  Rec::syscall(obs, info(aio::Syscall::cancel, 0, 0, -1, false, -EINVAL));
  Rec::syscall(obs, info(aio::Syscall::getevents, 1, 1, -1, false, -500));  // beyond errno_slots
  Rec::syscall(obs, info(aio::Syscall::submit, 0, 0, -1, false, 0));  // empty batch: no bucket
  EXPECT_EQ(obs.errors(EINPROGRESS), 0U);
  EXPECT_EQ(obs.errors(EINVAL), 1U);
  EXPECT_EQ(obs.errors(0), 1U) << "larger errnos are counted under 0";
  EXPECT_EQ(obs.errors(-1), 0U);
  EXPECT_EQ(obs.errors(500), 0U);
  for (std::size_t b = 0; b < aio::Observer::batch_buckets; ++b) EXPECT_EQ(obs.batch_histogram(b), 0U);
  const std::string s = obs.summary();
  EXPECT_NE(s.find("submit batch sizes: none"), std::string::npos) << s;
  EXPECT_NE(s.find("errors: errno 0 x1 errno 22 x1"), std::string::npos) << s;
}

TEST(ObserverPaths, SummaryOfNothing) {
  const aio::Observer obs;
  const std::string s = obs.summary();
  EXPECT_EQ(s.find("most repeated"), std::string::npos) << s;
  EXPECT_EQ(s.find("latency"), std::string::npos) << s;
  EXPECT_EQ(s.find("errors"), std::string::npos) << s;
}

TEST(ObserverPaths, TupleTableOverflowAndTopCallsIntoASmallArray) {
  aio::Observer obs;
  // 64 slots; 100 distinct tuples (different nr) overflow it.
  for (long nr = 1; nr <= 100; ++nr) {
    for (long k = 0; k < nr % 7 + 1; ++k) Rec::syscall(obs, info(aio::Syscall::submit, nr, 0, -1, false, nr));
  }
  std::array<aio::CallCount, 3> top{};
  const std::size_t n = obs.top_calls(top);
  EXPECT_EQ(n, 3U);
  EXPECT_EQ(top[0].count, 7U);
  EXPECT_GE(top[0].count, top[1].count);
  EXPECT_GE(top[1].count, top[2].count);
  std::vector<aio::CallCount> all(80);
  EXPECT_EQ(obs.top_calls(all), 64U) << "every slot used, the rest overflowed";
  EXPECT_EQ(obs.top_calls(std::span<aio::CallCount>()), 0U);
}

TEST(ObserverPaths, SummaryShowsEveryKindOfLine) {
  aio::Observer obs(4);
  Rec::syscall(obs, info(aio::Syscall::getevents, 4, 1, -1, false, 1));
  Rec::syscall(obs, info(aio::Syscall::getevents, 4, 1, -1, false, 1));
  Rec::syscall(obs, info(aio::Syscall::pgetevents, 4, 1, 1000, true, 0));
  Rec::syscall(obs, info(aio::Syscall::submit, 3, 0, -1, false, 3));
  Rec::syscall(obs, info(aio::Syscall::setup, 8, 0, -1, false, -EAGAIN));
  iocb cb{};
  iocb* list[1] = {&cb};
  Rec::submitted(obs, list, 1000);
  io_event ev{};
  ev.obj = reinterpret_cast<std::uintptr_t>(&cb);
  Rec::reaped(obs, std::span<const io_event>(&ev, 1), false, 1003);  // 3 ns
  const std::string s = obs.summary();
  EXPECT_NE(s.find("io_getevents(nr=4, min_nr=1, timeout=none)"), std::string::npos) << s;
  EXPECT_NE(s.find("io_pgetevents(nr=4, min_nr=1, timeout=1000ns, sigmask)"), std::string::npos) << s;
  EXPECT_NE(s.find("io_submit(nr=3)"), std::string::npos) << s;
  EXPECT_NE(s.find("[2..3]x1"), std::string::npos) << s;
  EXPECT_NE(s.find("errors: errno 11 x1"), std::string::npos) << s;
  EXPECT_NE(s.find("latency (submit->reap, 1 requests)"), std::string::npos) << s;
  const aio::LatencySummary lat = obs.latency();
  EXPECT_EQ(lat.count, 1U);
  EXPECT_EQ(lat.p50.count(), 3) << "below 8 ns every nanosecond is its own bucket";
  EXPECT_EQ(lat.max.count(), 3);
}

TEST(ObserverPaths, LatencyTableFullCollisionsAndTombstones) {
  aio::Observer obs(1);  // 16 slots
  std::vector<iocb> cbs(20);
  std::vector<iocb*> list;
  for (auto& cb : cbs) list.push_back(&cb);
  Rec::submitted(obs, std::span<iocb* const>(list.data(), 16), 100);  // fills the table
  Rec::submitted(obs, std::span<iocb* const>(list.data() + 16, 4), 100);  // no room: untracked
  EXPECT_EQ(obs.latency().untracked, 4U);

  // Reap them in reverse order (probes walk past other keys), the untracked ones too
  // (their probe finds no key and gives up after a full round).
  std::vector<io_event> evs(20);
  for (std::size_t i = 0; i < 20; ++i) evs[i].obj = reinterpret_cast<std::uintptr_t>(list[19 - i]);
  Rec::reaped(obs, evs, true, 5000);
  aio::LatencySummary lat = obs.latency();
  EXPECT_EQ(lat.count, 16U);
  EXPECT_EQ(lat.max.count(), 4900);
  EXPECT_EQ(obs.events_via_ring(), 20U);

  // Every slot is a tombstone now: a new submission reuses one; a smaller latency does not
  // move the maximum.
  Rec::submitted(obs, std::span<iocb* const>(list.data(), 1), 6000);
  Rec::reaped(obs, std::span<const io_event>(&evs[19], 1), false, 6010);
  lat = obs.latency();
  EXPECT_EQ(lat.count, 17U);
  EXPECT_EQ(lat.max.count(), 4900);

  // An event whose key was never stored stops at the first empty slot.
  aio::Observer fresh(1);
  iocb other{};
  iocb* one[1] = {&other};
  Rec::submitted(fresh, one, 0);
  io_event stranger{};
  stranger.obj = 12345;
  Rec::reaped(fresh, std::span<const io_event>(&stranger, 1), false, 10);
  EXPECT_EQ(fresh.latency().count, 0U);
}

TEST(ObserverPaths, NoLatencyTableRecordsNothing) {
  aio::Observer off;  // capacity 0
  iocb cb{};
  iocb* list[1] = {&cb};
  Rec::submitted(off, list, 1);
  io_event ev{};
  ev.obj = reinterpret_cast<std::uintptr_t>(&cb);
  Rec::reaped(off, std::span<const io_event>(&ev, 1), false, 2);
  EXPECT_EQ(off.latency().count, 0U);
  EXPECT_EQ(off.events_via_syscall(), 1U);

  // The largest table: 2^43 slots of 16 bytes, the whole 47-bit user address space, cannot be
  // allocated, and that leaves latency tracking off instead of failing. (On ILP32 the
  // largest, 2^26 slots, is 1 GiB, which may well be mapped: not tried.)
  constexpr unsigned table_bits = sizeof(std::size_t) == 8 ? 43U : 26U;
  constexpr unsigned size_bits = sizeof(std::size_t) * 8U;
  if constexpr (sizeof(std::size_t) == 8) {
    aio::Observer huge(std::size_t{1} << (table_bits - 1U));
    EXPECT_FALSE(huge.latency_tracking());
  }
  // Capacities beyond that (up to SIZE_MAX, where the slot count or its byte size would
  // overflow: new[] would throw bad_array_new_length, the doubling would wrap) likewise.
  for (const std::size_t cap :
       {std::size_t{1} << (table_bits + 2U), std::size_t{1} << (size_bits - 5U), (SIZE_MAX / 4) + 1, SIZE_MAX}) {
    aio::Observer too_big(cap);
    EXPECT_FALSE(too_big.latency_tracking()) << cap;
  }
}

}  // namespace

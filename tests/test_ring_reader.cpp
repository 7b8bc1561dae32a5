// The pure ring reader (src/ring.hpp) against synthetic rings: layout checks, wrap-around at
// the ring's own size, never more than asked, never outside the ring.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "ring.hpp"

namespace {

using aio::detail::RingHeader;
using aio::detail::RingStatus;

// The count of a reader call that must have succeeded.
std::size_t count_of(aio::detail::RingCount r) {
  EXPECT_EQ(r.status, RingStatus::ok);
  return r.count;
}

// Reaps up to max with no minimum.
aio::detail::RingCount reap(RingHeader* h, std::uint32_t nr, io_event* out, std::size_t max) {
  return aio::detail::ring_reap_at_least(h, nr, out, max, 0);
}

// A ring laid out like fs/aio.c's struct aio_ring followed by nr io_events, with guard
// events before and after so a stray access shows up as a changed guard.
struct FakeRing {
  explicit FakeRing(std::uint32_t slots) : nr(slots), storage(2 + (sizeof(RingHeader) / sizeof(io_event)) + slots) {
    header()->nr = slots;
    header()->magic = aio::detail::ring_magic;
    header()->compat_features = 1;
    header()->incompat_features = 0;
    header()->header_length = sizeof(RingHeader);
    storage.front() = guard();
    storage.back() = guard();
    for (std::uint32_t i = 0; i < slots; ++i) events()[i] = io_event{i, 0, static_cast<std::int64_t>(i), 0};
  }
  static io_event guard() { return io_event{0xdeadbeef, 0xdeadbeef, -1, -1}; }
  RingHeader* header() { return reinterpret_cast<RingHeader*>(&storage[1]); }
  io_event* events() { return aio::detail::ring_events(header()); }
  bool guards_intact() const {
    return std::memcmp(&storage.front(), &storage.back(), sizeof(io_event)) == 0 &&
           storage.front().data == 0xdeadbeef;
  }
  std::uint32_t nr;
  std::vector<io_event> storage;
};

TEST(RingReader, ReadyCountsTailMinusHeadWithWrap) {
  FakeRing r(8);
  r.header()->head = 2;
  r.header()->tail = 5;
  EXPECT_EQ(count_of(aio::detail::ring_ready(r.header(), 8)), 3u);
  r.header()->head = 6;
  r.header()->tail = 1;  // wrapped: slots 6, 7, 0
  EXPECT_EQ(count_of(aio::detail::ring_ready(r.header(), 8)), 3u);
  r.header()->head = r.header()->tail = 4;
  EXPECT_EQ(count_of(aio::detail::ring_ready(r.header(), 8)), 0u);
}

TEST(RingReader, ReapCopiesAcrossTheWrapAndAdvancesHead) {
  FakeRing r(8);
  r.header()->head = 6;
  r.header()->tail = 3;  // ready: 6, 7, 0, 1, 2
  io_event out[8]{};
  ASSERT_EQ(count_of(reap(r.header(), 8, out, 8)), 5u);
  const std::uint64_t expect[] = {6, 7, 0, 1, 2};
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(out[i].data, expect[i]) << i;
  EXPECT_EQ(r.header()->head, 3u);
  EXPECT_TRUE(r.guards_intact());
}

TEST(RingReader, ReapNeverReturnsMoreThanAsked) {
  FakeRing r(8);
  r.header()->head = 7;
  r.header()->tail = 6;  // 7 ready
  io_event out[3]{};
  ASSERT_EQ(count_of(reap(r.header(), 8, out, 2)), 2u);
  EXPECT_EQ(out[0].data, 7u);
  EXPECT_EQ(out[1].data, 0u);
  EXPECT_EQ(out[2].data, 0u);  // untouched
  EXPECT_EQ(r.header()->head, 1u);
  EXPECT_EQ(count_of(reap(r.header(), 8, out, 0)), 0u);
  EXPECT_EQ(r.header()->head, 1u);
}

TEST(RingReader, EmptyRingReapsNothing) {
  FakeRing r(4);
  io_event out[4]{};
  EXPECT_EQ(count_of(reap(r.header(), 4, out, 4)), 0u);
  EXPECT_EQ(r.header()->head, 0u);
}

// Every way the header can be unexpected makes the reader refuse and touch nothing.
TEST(RingReader, UnexpectedHeaderIsRefusedUntouched) {
  struct Case {
    const char* what;
    void (*corrupt)(RingHeader*);
  };
  const Case cases[] = {
      {"bad magic", [](RingHeader* h) { h->magic = 0; }},
      {"incompat features", [](RingHeader* h) { h->incompat_features = 1; }},
      {"header length", [](RingHeader* h) { h->header_length = 64; }},
      {"nr differs from setup", [](RingHeader* h) { h->nr = 1000; }},
      {"head out of range", [](RingHeader* h) { h->head = 8; }},
      {"tail out of range", [](RingHeader* h) { h->tail = 0xffffffffU; }},
  };
  for (const auto& c : cases) {
    FakeRing r(8);
    r.header()->head = 1;
    r.header()->tail = 3;
    c.corrupt(r.header());
    const RingHeader before = *r.header();
    io_event out[8]{};
    EXPECT_EQ(aio::detail::ring_ready(r.header(), 8).status, RingStatus::not_usable) << c.what;
    EXPECT_EQ(reap(r.header(), 8, out, 8).status, RingStatus::not_usable) << c.what;
    EXPECT_EQ(std::memcmp(&before, r.header(), sizeof before), 0) << c.what;
    EXPECT_EQ(out[0].data, 0u) << c.what;
    EXPECT_TRUE(r.guards_intact()) << c.what;
  }
  EXPECT_FALSE(aio::detail::ring_header_ok(nullptr, 8));
  FakeRing ok(8);
  EXPECT_FALSE(aio::detail::ring_header_ok(ok.header(), 0));
}

}  // namespace

// iocb builders: exact field layout (everything else zero), the buffer forms they take,
// reading a request back, and round trips against real files, pipes and eventfds.
#include <aio/iocb.hpp>  // first: alone, it gives the typed flags, masks and accessors

namespace iocb_alone {
// Compiles only if iocb.hpp by itself declares everything named here.
[[maybe_unused]] inline iocb typed_request(int fd, std::span<std::byte> buf) noexcept {
  iocb cb = aio::make_pread(fd, buf, 0);
  aio::set_rw_flags(cb, aio::Rwf::nowait | aio::Rwf::dontcache);
  aio::add_rw_flags(cb, aio::Rwf::hipri);
  const bool seen = aio::any(aio::rw_flags(cb) & aio::Rwf::nowait) && !aio::buffer_of(cb).empty() &&
                    aio::iovecs_of(cb).empty() && aio::offset_of(cb) == 0 && aio::fd_of(cb) == fd &&
                    aio::opcode_of(cb) == aio::Opcode::pread;
  const io_event ev{};
  return seen && !aio::any(aio::poll_events(ev)) ? aio::make_poll(fd, aio::PollEvents::in | aio::PollEvents::rdhup)
                                                  : cb;
}
}  // namespace iocb_alone

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <list>
#include <string>
#include <string_view>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

iocb zeroed() {
  iocb cb;
  std::memset(&cb, 0, sizeof cb);
  return cb;
}

void expect_same_bytes(const iocb& got, const iocb& want) {
  EXPECT_EQ(std::memcmp(&got, &want, sizeof(iocb)), 0) << "iocb differs from the memset-0 reference";
}

// ---- Every builder sets only its own fields -------------------------------------------

TEST(BuilderLayout, ReadAndWriteSetOnlyOpcodeFdBufNbytesOffset) {
  char buf[37];
  const auto sp = std::as_writable_bytes(std::span(buf));
  for (int op : {IOCB_CMD_PREAD, IOCB_CMD_PWRITE}) {
    iocb want = zeroed();
    want.aio_lio_opcode = static_cast<std::uint16_t>(op);
    want.aio_fildes = 7;
    want.aio_buf = reinterpret_cast<std::uintptr_t>(buf);
    want.aio_nbytes = sizeof buf;
    want.aio_offset = 123456789012LL;
    const iocb got = op == IOCB_CMD_PREAD ? aio::make_pread(7, sp, 123456789012LL)
                                          : aio::make_pwrite(7, std::span<const std::byte>(sp), 123456789012LL);
    expect_same_bytes(got, want);
  }
}

TEST(BuilderLayout, VectoredSetIovecArrayAndCount) {
  iovec iov[3] = {};
  for (int op : {IOCB_CMD_PREADV, IOCB_CMD_PWRITEV}) {
    iocb want = zeroed();
    want.aio_lio_opcode = static_cast<std::uint16_t>(op);
    want.aio_fildes = 3;
    want.aio_buf = reinterpret_cast<std::uintptr_t>(iov);
    want.aio_nbytes = 3;
    want.aio_offset = 4096;
    const iocb got = op == IOCB_CMD_PREADV ? aio::make_preadv(3, iov, 4096) : aio::make_pwritev(3, iov, 4096);
    expect_same_bytes(got, want);
  }
}

TEST(BuilderLayout, FsyncAndFdsyncSetOnlyOpcodeAndFd) {
  iocb want = zeroed();
  want.aio_lio_opcode = IOCB_CMD_FSYNC;
  want.aio_fildes = 11;
  expect_same_bytes(aio::make_fsync(11), want);
  want.aio_lio_opcode = IOCB_CMD_FDSYNC;
  expect_same_bytes(aio::make_fdsync(11), want);
}

TEST(BuilderLayout, PollPutsSixteenBitMaskInBufWithoutSignExtension) {
  iocb want = zeroed();
  want.aio_lio_opcode = IOCB_CMD_POLL;
  want.aio_fildes = 5;
  want.aio_buf = POLLIN | POLLOUT;
  expect_same_bytes(aio::make_poll(5, POLLIN | POLLOUT), want);
  // A mask with the top bit set is a negative short; the kernel wants the 16 bits only.
  const auto high = static_cast<short>(0x8001);
  want.aio_buf = 0x8001;
  expect_same_bytes(aio::make_poll(5, high), want);
}

TEST(BuilderLayout, ModifiersSetOnlyTheirFields) {
  iocb base = aio::make_fsync(4);
  iocb want = base;
  want.aio_data = 0xdeadbeefcafef00dULL;
  want.aio_flags = IOCB_FLAG_RESFD | IOCB_FLAG_IOPRIO;
  want.aio_resfd = 9;
  want.aio_rw_flags = RWF_DSYNC;
  want.aio_reqprio = static_cast<std::int16_t>((2 << 13) | 4);
  iocb got = base;
  aio::set_priority(aio::set_rw_flags(aio::set_eventfd(aio::set_user_data(got, 0xdeadbeefcafef00dULL), 9), RWF_DSYNC),
                    aio::IoprioClass::best_effort, 4);
  expect_same_bytes(got, want);
  aio::clear_eventfd(got);
  want.aio_flags = IOCB_FLAG_IOPRIO;
  want.aio_resfd = 0;
  expect_same_bytes(got, want);
  static_assert(aio::ioprio_value(aio::IoprioClass::realtime, 0) == (1 << 13));
  static_assert(aio::ioprio_value(aio::IoprioClass::idle, 7) == ((3 << 13) | 7));
}

// ---- Any contiguous buffer ----------------------------------------------------------------

template <class B>
concept preadable = requires(B&& b) { aio::make_pread(0, std::forward<B>(b), 0); };
template <class B>
concept pwritable = requires(B&& b) { aio::make_pwrite(0, std::forward<B>(b), 0); };

// Every form the project's tests, tools, benchmarks and fuzzers pass, and the new ones.
static_assert(preadable<std::span<std::byte>> && preadable<std::span<std::byte>&>);
static_assert(preadable<const std::span<std::byte>&>);  // a const span of writable bytes
static_assert(preadable<std::array<std::byte, 64>&>);
static_assert(preadable<std::span<char>> && preadable<std::string&> && preadable<std::vector<unsigned char>&>);
static_assert(preadable<char (&)[16]> && preadable<std::array<int, 4>&> && preadable<aio::AlignedBuffer&>);
static_assert(pwritable<std::span<const std::byte>> && pwritable<std::span<std::byte>>);
static_assert(pwritable<const std::span<std::byte>&> && pwritable<std::array<std::byte, 64>&>);
static_assert(pwritable<const std::string&> && pwritable<std::string_view> && pwritable<std::span<const char>>);
static_assert(pwritable<const std::vector<std::uint32_t>&> && pwritable<char (&)[16]> && pwritable<const int (&)[4]>);
static_assert(pwritable<aio::AlignedBuffer&> && pwritable<const aio::AlignedBuffer&>);
// Reads need writable elements.
static_assert(!preadable<const std::string&> && !preadable<std::string_view> && !preadable<std::span<const std::byte>>);
static_assert(!preadable<const aio::AlignedBuffer&> && !preadable<const char (&)[6]>);
// A temporary owner would be destroyed before the kernel uses it.
static_assert(!preadable<std::string> && !preadable<std::vector<char>> && !preadable<aio::AlignedBuffer>);
static_assert(!pwritable<std::string> && !pwritable<std::vector<char>> && !pwritable<aio::AlignedBuffer>);
static_assert(!pwritable<std::array<std::byte, 8>>);
// A string literal would write its NUL too; std::string_view writes the characters.
static_assert(!pwritable<decltype("hello")> && !pwritable<decltype(L"hi")> && !pwritable<decltype(u8"hi")>);
static_assert(!pwritable<const char (&)[6]>);
// Not contiguous, not trivially copyable, or iovecs (that is make_preadv/make_pwritev).
static_assert(!preadable<std::list<char>&> && !pwritable<std::list<char>&>);
static_assert(!preadable<std::vector<std::string>&> && !pwritable<const std::vector<std::string>&>);
static_assert(!preadable<iovec (&)[2]> && !pwritable<std::vector<iovec>&>);
// No allocation, no exception: the standard containers' data()/size() cannot throw.
static_assert(noexcept(aio::make_pread(0, std::declval<std::vector<char>&>(), 0)));
static_assert(noexcept(aio::make_pwrite(0, std::declval<const std::string&>(), 0)));
static_assert(noexcept(aio::make_pread(0, std::declval<aio::AlignedBuffer&>(), 0)));
static_assert(noexcept(aio::make_pread(0, static_cast<void*>(nullptr), 0, 0)));
static_assert(noexcept(aio::make_pwrite(0, static_cast<const void*>(nullptr), 0, 0)));

TEST(BuilderForms, BracedAndEmptyFormsStillPickTheByteSpan) {
  std::byte raw[32] = {};
  std::byte* p = raw;
  const iocb r = aio::make_pread(3, {p, 8}, 5);  // aio-copy, aio-bench
  EXPECT_EQ(r.aio_buf, reinterpret_cast<std::uintptr_t>(raw));
  EXPECT_EQ(r.aio_nbytes, 8U);
  const iocb w = aio::make_pwrite(3, {p, 4}, 5);
  EXPECT_EQ(w.aio_nbytes, 4U);
  const iocb e = aio::make_pread(3, {}, 0);  // test_flags, test_nowait
  EXPECT_EQ(e.aio_buf, 0U);
  EXPECT_EQ(e.aio_nbytes, 0U);
}

TEST(BuilderForms, EveryContainerGivesItsAddressAndByteCount) {
  // The expected request: the byte-span form over the same memory.
  auto same_as_bytes = [](const iocb& got, const void* data, std::size_t nbytes, std::uint16_t op) {
    iocb want = zeroed();
    want.aio_lio_opcode = op;
    want.aio_fildes = 9;
    want.aio_buf = reinterpret_cast<std::uintptr_t>(data);
    want.aio_nbytes = nbytes;
    want.aio_offset = 77;
    expect_same_bytes(got, want);
  };
  std::string s(13, 'x');
  std::vector<unsigned char> v(21);
  std::array<std::uint32_t, 5> a{};
  char c[7] = {};
  const std::span<char> sp(s);
  same_as_bytes(aio::make_pread(9, s, 77), s.data(), 13, IOCB_CMD_PREAD);
  same_as_bytes(aio::make_pread(9, v, 77), v.data(), 21, IOCB_CMD_PREAD);
  same_as_bytes(aio::make_pread(9, a, 77), a.data(), 5 * sizeof(std::uint32_t), IOCB_CMD_PREAD);
  same_as_bytes(aio::make_pread(9, c, 77), c, sizeof c, IOCB_CMD_PREAD);
  same_as_bytes(aio::make_pread(9, sp, 77), s.data(), 13, IOCB_CMD_PREAD);
  same_as_bytes(aio::make_pread(9, std::as_writable_bytes(sp), 77), s.data(), 13, IOCB_CMD_PREAD);
  const std::string_view lit = "hello";
  same_as_bytes(aio::make_pwrite(9, lit, 77), lit.data(), 5, IOCB_CMD_PWRITE);
  const std::vector<unsigned char>& cv = v;
  same_as_bytes(aio::make_pwrite(9, cv, 77), v.data(), 21, IOCB_CMD_PWRITE);
  same_as_bytes(aio::make_pwrite(9, a, 77), a.data(), 20, IOCB_CMD_PWRITE);
  same_as_bytes(aio::make_pwrite(9, std::as_bytes(std::span(a)), 77), a.data(), 20, IOCB_CMD_PWRITE);
  // C-style pointer + length.
  same_as_bytes(aio::make_pread(9, static_cast<void*>(c), 3, 77), c, 3, IOCB_CMD_PREAD);
  same_as_bytes(aio::make_pwrite(9, static_cast<const void*>(c), 4, 77), c, 4, IOCB_CMD_PWRITE);
}

// ---- Reading a request back ---------------------------------------------------------------

TEST(Accessors, ReadBackWhatEachBuilderSet) {
  std::array<std::byte, 40> buf{};
  const iocb r = aio::make_pread(12, buf, -5);
  EXPECT_EQ(aio::opcode_of(r), aio::Opcode::pread);
  EXPECT_EQ(aio::fd_of(r), 12);
  EXPECT_EQ(aio::offset_of(r), -5);
  EXPECT_EQ(aio::buffer_of(r).data(), buf.data());
  EXPECT_EQ(aio::buffer_of(r).size(), buf.size());
  EXPECT_TRUE(aio::iovecs_of(r).empty());

  const std::string text = "abc";
  const iocb w = aio::make_pwrite(-1, text, std::int64_t{1} << 40);
  EXPECT_EQ(aio::opcode_of(w), aio::Opcode::pwrite);
  EXPECT_EQ(aio::fd_of(w), -1);  // the fd round-trips through the u32 field
  EXPECT_EQ(aio::offset_of(w), std::int64_t{1} << 40);
  EXPECT_EQ(static_cast<const void*>(aio::buffer_of(w).data()), static_cast<const void*>(text.data()));
  EXPECT_EQ(aio::buffer_of(w).size(), 3U);

  iovec iov[2] = {{buf.data(), 8}, {buf.data() + 8, 8}};
  for (const iocb& v : {aio::make_preadv(4, iov, 64), aio::make_pwritev(4, iov, 64)}) {
    EXPECT_TRUE(aio::buffer_of(v).empty()) << "vectored: the buffers are in iovecs_of()";
    ASSERT_EQ(aio::iovecs_of(v).size(), 2U);
    EXPECT_EQ(aio::iovecs_of(v).data(), iov);
    EXPECT_EQ(aio::offset_of(v), 64);
  }
  EXPECT_EQ(aio::opcode_of(aio::make_preadv(4, iov, 0)), aio::Opcode::preadv);
  EXPECT_EQ(aio::opcode_of(aio::make_pwritev(4, iov, 0)), aio::Opcode::pwritev);

  // Requests without a buffer: empty spans (a poll's aio_buf is its mask, not an address).
  for (const iocb& o : {aio::make_fsync(3), aio::make_fdsync(3), aio::make_poll(3, aio::PollEvents::in)}) {
    EXPECT_TRUE(aio::buffer_of(o).empty());
    EXPECT_TRUE(aio::iovecs_of(o).empty());
    EXPECT_EQ(aio::fd_of(o), 3);
  }
  EXPECT_EQ(aio::opcode_of(aio::make_fsync(3)), aio::Opcode::fsync);
  EXPECT_EQ(aio::opcode_of(aio::make_fdsync(3)), aio::Opcode::fdsync);
  EXPECT_EQ(aio::opcode_of(aio::make_poll(3, POLLIN)), aio::Opcode::poll);
  // A hand-made read with a null address and a length: empty, not a span over nullptr.
  iocb odd = zeroed();
  odd.aio_lio_opcode = IOCB_CMD_PREAD;
  odd.aio_nbytes = 100;
  EXPECT_TRUE(aio::buffer_of(odd).empty());
  static_assert(std::is_same_v<decltype(aio::buffer_of(r)), std::span<std::byte>>);
  static_assert(std::is_same_v<decltype(aio::iovecs_of(r)), std::span<const iovec>>);
  constexpr iocb blank{};
  static_assert(aio::offset_of(blank) == 0 && aio::fd_of(blank) == 0 && aio::opcode_of(blank) == aio::Opcode::pread);
}

// ---- Round trips against the kernel --------------------------------------------------

class BuilderIo : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir.ok());
    auto c = aio::Context::create(16);
    ASSERT_TRUE(c) << c.error().message();
    ctx = std::move(*c);
  }
  // Submits one request and returns its completion (res), checking obj.
  io_event run(iocb& cb) {
    const io_event ev = run_one(ctx, cb);
    if (ev.obj != 0) {
      EXPECT_EQ(aio::request_of(ev), &cb);
    }
    return ev;
  }
  TempDir dir;
  aio::Context ctx;
};

TEST_F(BuilderIo, PwriteThenPreadReturnsTheSameBytes) {
  Fd fd = dir.make_file("f", "");
  ASSERT_TRUE(fd.ok());
  const std::string data = pattern(3000, 'A');
  iocb w = aio::make_pwrite(fd.get(), cbytes(data), 100);
  EXPECT_EQ(run(w).res, 3000);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, 3100);
  std::string back(3000, '\0');
  iocb r = aio::make_pread(fd.get(), bytes(back), 100);
  EXPECT_EQ(run(r).res, 3000);
  EXPECT_EQ(back, data);
  std::string hole(100, 'x');
  iocb h = aio::make_pread(fd.get(), bytes(hole), 0);
  EXPECT_EQ(run(h).res, 100);
  EXPECT_EQ(hole, std::string(100, '\0'));
}

TEST_F(BuilderIo, PwritevGathersAndPreadvScattersMultipleIovecs) {
  Fd fd = dir.make_file("f", "");
  ASSERT_TRUE(fd.ok());
  std::string a = "alpha-", b = "beta--", c = "gamma!";
  const iovec out[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
  iocb w = aio::make_pwritev(fd.get(), out, 10);
  EXPECT_EQ(run(w).res, 18);
  std::string x(4, '\0'), y(10, '\0'), z(4, '\0');
  const iovec in[3] = {{x.data(), x.size()}, {y.data(), y.size()}, {z.data(), z.size()}};
  iocb r = aio::make_preadv(fd.get(), in, 10);
  EXPECT_EQ(run(r).res, 18);
  EXPECT_EQ(x + y + z, a + b + c);
  EXPECT_EQ(x, "alph");
  EXPECT_EQ(z, "mma!");
}

TEST_F(BuilderIo, FsyncAndFdsyncCompleteWithZero) {
  Fd fd = dir.make_file("f", pattern(512));
  ASSERT_TRUE(fd.ok());
  iocb s = aio::make_fsync(fd.get());
  EXPECT_EQ(run(s).res, 0);
  iocb d = aio::make_fdsync(fd.get());
  EXPECT_EQ(run(d).res, 0);
}

TEST_F(BuilderIo, ShortReadReturnsBytesUpToEof) {
  Fd fd = dir.make_file("f", pattern(100));
  ASSERT_TRUE(fd.ok());
  std::string buf(4096, '\0');
  iocb r = aio::make_pread(fd.get(), bytes(buf), 0);
  EXPECT_EQ(run(r).res, 100);
  EXPECT_EQ(buf.substr(0, 100), pattern(100));
  iocb mid = aio::make_pread(fd.get(), bytes(buf), 60);
  EXPECT_EQ(run(mid).res, 40);
}

TEST_F(BuilderIo, ReadAtOrPastEofReturnsZero) {
  Fd fd = dir.make_file("f", pattern(100));
  ASSERT_TRUE(fd.ok());
  std::string buf(64, '\0');
  iocb at = aio::make_pread(fd.get(), bytes(buf), 100);
  EXPECT_EQ(run(at).res, 0);
  iocb past = aio::make_pread(fd.get(), bytes(buf), 1 << 20);
  EXPECT_EQ(run(past).res, 0);
}

TEST_F(BuilderIo, ZeroLengthReadAndWriteReturnZero) {
  Fd fd = dir.make_file("f", pattern(100));
  ASSERT_TRUE(fd.ok());
  iocb r = aio::make_pread(fd.get(), std::span<std::byte>{}, 0);
  EXPECT_EQ(run(r).res, 0);
  iocb w = aio::make_pwrite(fd.get(), std::span<const std::byte>{}, 500);
  EXPECT_EQ(run(w).res, 0);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, 100);  // a zero-length write does not extend the file
}

TEST_F(BuilderIo, PollOnPipeCompletesWithPollinAfterAWrite) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  iocb cb = aio::make_poll(p.rd.get(), POLLIN);
  ASSERT_TRUE(submit_one(ctx, cb));
  io_event ev[1];
  auto none = ctx.getevents(0, ev, 20ms);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, 0u) << "an empty pipe must not be readable";
  ASSERT_EQ(::write(p.wr.get(), "data", 4), 4);
  auto evs = reap(ctx, 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(aio::request_of(evs[0]), &cb);
  auto mask = aio::result(evs[0]);
  ASSERT_TRUE(mask) << mask.error().message();
  EXPECT_NE(*mask & POLLIN, 0u);
  EXPECT_EQ(*mask & POLLOUT, 0u);  // only the requested events (plus ERR/HUP) are reported
}

TEST_F(BuilderIo, PollOnAlreadyReadyPipeCompletesAtOnce) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(::write(p.wr.get(), "x", 1), 1);
  iocb cb = aio::make_poll(p.rd.get(), POLLIN);
  EXPECT_NE(run(cb).res & POLLIN, 0);
}

TEST_F(BuilderIo, PollOnEventfdCompletesWithPollinAfterAWrite) {
  Fd efd = make_eventfd();
  ASSERT_TRUE(efd.ok());
  iocb cb = aio::make_poll(efd.get(), POLLIN);
  ASSERT_TRUE(submit_one(ctx, cb));
  io_event ev[1];
  auto none = ctx.getevents(0, ev, 20ms);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, 0u);
  const std::uint64_t one = 1;
  ASSERT_EQ(::write(efd.get(), &one, sizeof one), static_cast<ssize_t>(sizeof one));
  auto evs = reap(ctx, 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_NE(evs[0].res & POLLIN, 0);
}

TEST_F(BuilderIo, PollForPolloutOnEventfdIsReadyAtOnce) {
  Fd efd = make_eventfd();
  ASSERT_TRUE(efd.ok());
  iocb cb = aio::make_poll(efd.get(), POLLOUT);
  const auto res = run(cb).res;
  EXPECT_NE(res & POLLOUT, 0);
  EXPECT_EQ(res & POLLIN, 0);
}

TEST_F(BuilderIo, ContainersRoundTripThroughTheKernel) {
  Fd fd = dir.make_file("f", "");
  ASSERT_TRUE(fd.ok());
  const std::vector<std::uint32_t> words = {0xdeadbeef, 1, 2, 0x01020304};
  iocb w = aio::make_pwrite(fd.get(), words, 0);
  EXPECT_EQ(run(w).res, 16);
  iocb t = aio::make_pwrite(fd.get(), std::string_view("tail"), 16);
  EXPECT_EQ(run(t).res, 4) << "a string_view writes its characters, no NUL";

  std::array<std::uint32_t, 4> back{};
  iocb r = aio::make_pread(fd.get(), back, 0);
  EXPECT_EQ(run(r).res, 16);
  EXPECT_TRUE(std::equal(back.begin(), back.end(), words.begin()));
  char c[8] = {};
  iocb rc = aio::make_pread(fd.get(), c, 16);
  EXPECT_EQ(run(rc).res, 4) << "short read at EOF: the file is 20 bytes";
  EXPECT_EQ(std::string_view(c, 4), "tail");

  std::string s(6, '\0');
  iocb raw = aio::make_pread(fd.get(), static_cast<void*>(s.data()), 2, 17);
  EXPECT_EQ(run(raw).res, 2);
  EXPECT_EQ(s.substr(0, 2), "ai");
  const char tag[] = {'Z', 'Y'};
  iocb raww = aio::make_pwrite(fd.get(), static_cast<const void*>(tag), sizeof tag, 20);
  EXPECT_EQ(run(raww).res, 2);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, 22);
  EXPECT_EQ(aio::buffer_of(raww).size(), 2U);
  EXPECT_EQ(aio::offset_of(raww), 20);
}

}  // namespace

// iocb modifiers against the kernel: user data, eventfd notification, RWF_* flags, ioprio.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cstdlib>
#include <type_traits>
#include <utility>

#include "test_util.hpp"

namespace {

using namespace aiotest;

class Modifiers : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir.ok());
    fd = dir.make_file("f", pattern(4096));
    ASSERT_TRUE(fd.ok());
    auto c = aio::Context::create(16);
    ASSERT_TRUE(c) << c.error().message();
    ctx = std::move(*c);
  }
  io_event run(iocb& cb) { return run_one(ctx, cb); }
  TempDir dir;
  Fd fd;
  aio::Context ctx;
};

TEST_F(Modifiers, UserDataRoundTripsThroughTheKernel) {
  std::string buf(8, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  aio::set_user_data(cb, 0xfedcba9876543210ULL);
  const io_event ev = run(cb);
  EXPECT_EQ(aio::user_data(ev), 0xfedcba9876543210ULL);
  EXPECT_EQ(aio::request_of(ev), &cb);
}

TEST_F(Modifiers, UserPtrRoundTripsThroughTheKernel) {
  struct Op {
    std::string buf = std::string(16, '\0');
    int tag = 42;
  } op;
  iocb cb = aio::make_pread(fd.get(), bytes(op.buf), 16);
  aio::set_user_ptr(cb, &op);
  const io_event ev = run(cb);
  Op* back = aio::user_ptr<Op>(ev);
  ASSERT_EQ(back, &op);
  EXPECT_EQ(back->tag, 42);
  EXPECT_EQ(back->buf, pattern(4096).substr(16, 16));
}

// What user_ptr() and user_fn() give back, and what they refuse.
struct Tag {
  int value = 0;
};
static_assert(std::is_same_v<decltype(aio::user_ptr<const Tag>(std::declval<const io_event&>())), const Tag*>);
static_assert(std::is_same_v<decltype(aio::user_ptr<const Tag>(std::declval<const iocb&>())), const Tag*>);
static_assert(std::is_same_v<decltype(aio::user_ptr<void>(std::declval<const io_event&>())), void*>);
static_assert(std::is_same_v<decltype(aio::user_fn<int(int)>(std::declval<const io_event&>())), int (*)(int)>);
static_assert(std::is_same_v<decltype(aio::user_fn<void() noexcept>(std::declval<const iocb&>())), void (*)() noexcept>);
template <class T>
concept user_ptr_of = requires(const io_event& ev) { aio::user_ptr<T>(ev); };
template <class F>
concept user_fn_of = requires(const io_event& ev) { aio::user_fn<F>(ev); };
template <class P>
concept fn_storable = requires(iocb& cb, P p) { aio::set_user_fn(cb, p); };
template <class P>
concept ptr_storable = requires(iocb& cb, P p) { aio::set_user_ptr(cb, p); };
static_assert(user_ptr_of<Tag> && user_ptr_of<const Tag> && !user_ptr_of<void(int)>);
static_assert(user_fn_of<void(int)> && !user_fn_of<Tag> && !user_fn_of<void (*)(int)>);
static_assert(fn_storable<void (*)(int)> && fn_storable<int (*)() noexcept> && !fn_storable<Tag*> && !fn_storable<void*>);
static_assert(ptr_storable<const Tag*> && ptr_storable<Tag*> && !ptr_storable<void (*)(int)>);

TEST_F(Modifiers, ConstUserPtrComesBackConstFromTheEventAndTheRequest) {
  const Tag tag{7};
  std::string buf(8, '\0');
  iocb cb = aio::make_pread(fd.get(), buf, 0);
  aio::set_user_ptr(cb, &tag);
  EXPECT_EQ(aio::user_ptr<const Tag>(cb), &tag);
  EXPECT_EQ(aio::user_data(cb), reinterpret_cast<std::uintptr_t>(&tag));
  const io_event ev = run(cb);
  const Tag* back = aio::user_ptr<const Tag>(ev);
  ASSERT_EQ(back, &tag);
  EXPECT_EQ(back->value, 7);
  EXPECT_EQ(aio::user_ptr<const Tag>(*aio::request_of(ev)), &tag);
  EXPECT_EQ(aio::user_data(cb), aio::user_data(ev));
}

int g_calls = 0;
void count_bytes(const io_event& ev) noexcept { g_calls += static_cast<int>(ev.res); }
int twice(int x) { return 2 * x; }

TEST_F(Modifiers, FunctionPointerRoundTripsThroughTheKernelWithoutCasts) {
  std::string buf(5, '\0');
  iocb cb = aio::make_pread(fd.get(), buf, 0);
  aio::set_user_fn(cb, &count_bytes);
  EXPECT_EQ(aio::user_fn<void(const io_event&) noexcept>(cb), &count_bytes);
  g_calls = 0;
  const io_event ev = run(cb);
  auto* fn = aio::user_fn<void(const io_event&) noexcept>(ev);
  ASSERT_EQ(fn, &count_bytes);
  fn(ev);
  EXPECT_EQ(g_calls, 5);

  // A function name decays; a capture-less lambda needs a unary + or F named.
  aio::set_user_fn(cb, twice);
  EXPECT_EQ(aio::user_fn<int(int)>(cb)(21), 42);
  aio::set_user_fn(cb, +[](int x) { return x + 1; });
  EXPECT_EQ(aio::user_fn<int(int)>(cb)(1), 2);
  aio::set_user_fn<int(int)>(cb, [](int x) { return x - 1; });
  EXPECT_EQ(aio::user_fn<int(int)>(cb)(1), 0);
}

TEST_F(Modifiers, RequestOfIdentifiesEachRequestOfABatch) {
  std::string bufs[4];
  iocb cbs[4];
  iocb* list[4];
  for (int i = 0; i < 4; ++i) {
    bufs[i].assign(4, '\0');
    cbs[i] = aio::make_pread(fd.get(), bytes(bufs[i]), i * 4);
    list[i] = &cbs[i];
  }
  auto n = ctx.submit(list);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 4u);
  auto evs = reap(ctx, 4);
  ASSERT_EQ(evs.size(), 4u);
  bool seen[4] = {};
  for (const auto& ev : evs) {
    iocb* cb = aio::request_of(ev);
    ASSERT_GE(cb, &cbs[0]);
    ASSERT_LE(cb, &cbs[3]);
    seen[cb - cbs] = true;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(cb), static_cast<std::uintptr_t>(ev.obj));
  }
  for (bool s : seen) EXPECT_TRUE(s);
}

TEST_F(Modifiers, EventfdCounterEqualsNumberOfCompletions) {
  Fd efd = make_eventfd();
  ASSERT_TRUE(efd.ok());
  std::string bufs[3];
  iocb cbs[3];
  iocb* list[3];
  for (int i = 0; i < 3; ++i) {
    bufs[i].assign(32, '\0');
    cbs[i] = aio::make_pread(fd.get(), bytes(bufs[i]), i * 32);
    aio::set_eventfd(cbs[i], efd.get());
    list[i] = &cbs[i];
  }
  ASSERT_EQ(ctx.submit(list).value_or(0), 3u);
  EXPECT_EQ(reap(ctx, 3).size(), 3u);
  EXPECT_EQ(read_eventfd(efd.get()), std::optional<std::uint64_t>(3));
  // Without the flag the counter is left alone.
  iocb plain = aio::make_pread(fd.get(), bytes(bufs[0]), 0);
  aio::set_eventfd(plain, efd.get());
  aio::clear_eventfd(plain);
  EXPECT_EQ(run(plain).res, 32);
  EXPECT_EQ(read_eventfd(efd.get()), std::nullopt);
}

TEST_F(Modifiers, EventfdOnNonEventfdDescriptorIsEinvalAtSubmit) {
  std::string buf(8, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  aio::set_eventfd(cb, fd.get());  // a regular file, not an eventfd
  auto n = submit_one(ctx, cb);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::invalid_argument);
}

TEST_F(Modifiers, RwfDsyncWriteIsAcceptedAndDataIsWritten) {
  const std::string data = "durable";
  iocb w = aio::make_pwrite(fd.get(), cbytes(data), 10);
  aio::set_rw_flags(w, RWF_DSYNC);
  EXPECT_EQ(run(w).res, 7);
  std::string back(7, '\0');
  ASSERT_EQ(::pread(fd.get(), back.data(), back.size(), 10), 7);
  EXPECT_EQ(back, data);
}

// RWF_NOWAIT on ext4: an O_DIRECT overwrite of allocated blocks with nothing in the page
// cache needs no blocking, so it completes in full (ext4 refuses buffered NOWAIT writes
// with -EOPNOTSUPP in the completion, which is why the test uses O_DIRECT).
TEST_F(Modifiers, RwfNowaitODirectOverwriteOfAllocatedBlocksCompletes) {
  const std::string path = dir.file("direct");
  Fd dfd(::open(path.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600));
  if (!dfd.ok() && errno == EINVAL) GTEST_SKIP() << "no O_DIRECT on this filesystem";
  ASSERT_TRUE(dfd.ok());
  void* mem = nullptr;
  ASSERT_EQ(::posix_memalign(&mem, 4096, 8192), 0);
  std::memset(mem, 'q', 8192);
  ASSERT_EQ(::pwrite(dfd.get(), mem, 8192, 0), 8192);
  ASSERT_EQ(::fsync(dfd.get()), 0);
  std::memset(mem, 'n', 4096);
  iocb w = aio::make_pwrite(dfd.get(), std::span(static_cast<const std::byte*>(mem), 4096), 4096);
  aio::set_rw_flags(w, RWF_NOWAIT);
  const io_event ev = run(w);
  std::free(mem);
  EXPECT_EQ(ev.res, 4096);
}

TEST_F(Modifiers, RwfNowaitBufferedReadOfCachedDataCompletes) {
  std::string buf(4096, '\0');
  iocb warm = aio::make_pread(fd.get(), bytes(buf), 0);
  ASSERT_EQ(run(warm).res, 4096);  // now in the page cache
  iocb r = aio::make_pread(fd.get(), bytes(buf), 0);
  aio::set_rw_flags(r, RWF_NOWAIT);
  EXPECT_EQ(run(r).res, 4096);
}

TEST_F(Modifiers, UnknownRwfFlagIsEopnotsuppAtSubmit) {
  const std::string data = "x";
  iocb w = aio::make_pwrite(fd.get(), cbytes(data), 0);
  aio::set_rw_flags(w, 1 << 30);
  auto n = submit_one(ctx, w);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::operation_not_supported);
}

TEST_F(Modifiers, RwFlagsOnFsyncAreEinval) {
  iocb s = aio::make_fsync(fd.get());
  aio::set_rw_flags(s, RWF_DSYNC);
  auto n = submit_one(ctx, s);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::invalid_argument);
}

TEST_F(Modifiers, BestEffortPriorityOnReadIsAccepted) {
  std::string buf(100, '\0');
  iocb r = aio::make_pread(fd.get(), bytes(buf), 0);
  aio::set_priority(r, aio::IoprioClass::best_effort, 4);
  EXPECT_EQ(run(r).res, 100);
  EXPECT_EQ(buf, pattern(100));
}

TEST_F(Modifiers, IdlePriorityOnReadIsAccepted) {
  std::string buf(100, '\0');
  iocb r = aio::make_pread(fd.get(), bytes(buf), 0);
  aio::set_priority(r, aio::IoprioClass::idle, 0);
  EXPECT_EQ(run(r).res, 100);
}

// ioprio_check_cap(): the realtime class needs CAP_SYS_ADMIN or CAP_SYS_NICE. With them
// (we may run as root) it is accepted; a child that drops both from its effective set gets
// EPERM at submit. Fork keeps the test process's own capabilities intact.
bool has_effective_cap(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[cap / 32].effective & (1U << (cap % 32))) != 0;
}

bool drop_effective_caps(std::initializer_list<int> caps) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  for (int cap : caps) data[cap / 32].effective &= ~(1U << (cap % 32));
  return ::syscall(SYS_capset, &hdr, data) == 0;
}

TEST_F(Modifiers, RealtimePriorityAcceptedWithCapabilityAndEpermWithout) {
  std::string buf(100, '\0');
  iocb r = aio::make_pread(fd.get(), bytes(buf), 0);
  aio::set_priority(r, aio::IoprioClass::realtime, 0);
  if (has_effective_cap(CAP_SYS_ADMIN) || has_effective_cap(CAP_SYS_NICE)) {
    EXPECT_EQ(run(r).res, 100);
  } else {
    auto n = submit_one(ctx, r);
    ASSERT_FALSE(n);
    EXPECT_EQ(n.error(), std::errc::operation_not_permitted);
  }

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: no gtest asserts; the exit status says what went wrong.
    if (!drop_effective_caps({CAP_SYS_ADMIN, CAP_SYS_NICE})) ::_exit(10);
    if (has_effective_cap(CAP_SYS_ADMIN) || has_effective_cap(CAP_SYS_NICE)) ::_exit(11);
    auto c = aio::Context::create(4);
    if (!c) ::_exit(12);
    std::string b(100, '\0');
    iocb rt = aio::make_pread(fd.get(), bytes(b), 0);
    aio::set_priority(rt, aio::IoprioClass::realtime, 0);
    auto n = submit_one(*c, rt);
    if (n) ::_exit(13);
    if (n.error() != std::errc::operation_not_permitted) ::_exit(14);
    iocb be = aio::make_pread(fd.get(), bytes(b), 0);
    aio::set_priority(be, aio::IoprioClass::best_effort, 0);
    if (submit_one(*c, be).value_or(0) != 1) ::_exit(15);
    if (reap(*c, 1).size() != 1) ::_exit(16);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died: status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child failure code (see the test source)";
}

}  // namespace

// aio::AlignedBuffer (include/aio/buffer.hpp): alignment, zero fill, ownership, argument
// errors, the builders taking it, and a real O_DIRECT write + read through it.
#include <aio/buffer.hpp>  // first: the header must stand alone

namespace buffer_alone {
[[maybe_unused]] inline bool header_stands_alone() noexcept {
  auto b = aio::AlignedBuffer::create(512, 512);
  return b && b->span().size() == 512;
}
}  // namespace buffer_alone

#include <sys/statfs.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>
#include <memory>
#include <ranges>
#include <string>
#include <type_traits>
#include <vector>

#include "test_util.hpp"

// The sanitizers' allocators abort on an impossible allocation unless told to answer
// nullptr like the real one (HugeSizeIsNotEnoughMemory asks for 2^60 bytes on purpose).
// Hooks the runtimes call at start-up; plain unused functions without a sanitizer.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }
extern "C" const char* __tsan_default_options() { return "allocator_may_return_null=1"; }

namespace {

using namespace aiotest;
using aio::AlignedBuffer;

bool aligned_to(const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a == 0; }

// ---- The type -------------------------------------------------------------------------------

static_assert(!std::is_copy_constructible_v<AlignedBuffer> && !std::is_copy_assignable_v<AlignedBuffer>);
static_assert(std::is_nothrow_move_constructible_v<AlignedBuffer> && std::is_nothrow_move_assignable_v<AlignedBuffer>);
static_assert(std::is_nothrow_default_constructible_v<AlignedBuffer> && std::is_nothrow_destructible_v<AlignedBuffer>);
static_assert(noexcept(AlignedBuffer::create(1, 1)));
static_assert(std::ranges::contiguous_range<AlignedBuffer> && std::ranges::sized_range<AlignedBuffer>);
static_assert(std::ranges::contiguous_range<const AlignedBuffer>);
static_assert(std::is_same_v<std::ranges::range_reference_t<AlignedBuffer>, std::byte&>);
static_assert(std::is_same_v<std::ranges::range_reference_t<const AlignedBuffer>, const std::byte&>);
// An lvalue converts to spans (a const one only to a const span); a temporary does not: the
// span would outlive the memory.
static_assert(std::is_convertible_v<AlignedBuffer&, std::span<std::byte>>);
static_assert(std::is_convertible_v<AlignedBuffer&, std::span<const std::byte>>);
static_assert(std::is_convertible_v<const AlignedBuffer&, std::span<const std::byte>>);
static_assert(!std::is_convertible_v<const AlignedBuffer&, std::span<std::byte>>);
static_assert(!std::is_convertible_v<AlignedBuffer, std::span<std::byte>>);

TEST(AlignedBuffer, DefaultConstructedIsEmpty) {
  const AlignedBuffer b;
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.size(), 0U);
  EXPECT_EQ(b.alignment(), 0U);
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(b.span().empty());
  EXPECT_EQ(b.begin(), b.end());
}

TEST(AlignedBuffer, AlignmentIsHonouredForSeveralPowersOfTwo) {
  for (const std::size_t a : {std::size_t{1}, std::size_t{2}, std::size_t{8}, std::size_t{64}, std::size_t{512},
                              std::size_t{4096}, std::size_t{65536}, std::size_t{1} << 21}) {
    for (const std::size_t n : {std::size_t{1}, std::size_t{1000}, a, a + 1}) {
      auto b = AlignedBuffer::create(n, a);
      ASSERT_TRUE(b) << "size " << n << " alignment " << a << ": " << b.error().message();
      EXPECT_TRUE(aligned_to(b->data(), a)) << "alignment " << a;
      EXPECT_EQ(b->size(), n) << "size() is what was asked, not the rounded allocation";
      EXPECT_EQ(b->alignment(), a);
      EXPECT_FALSE(b->empty());
      EXPECT_EQ(b->span().data(), b->data());
      EXPECT_EQ(b->span().size(), n);
      EXPECT_EQ(b->end() - b->begin(), static_cast<std::ptrdiff_t>(n));
    }
  }
  auto dflt = AlignedBuffer::create(100);
  ASSERT_TRUE(dflt);
  EXPECT_EQ(dflt->alignment(), 4096U);
  EXPECT_TRUE(aligned_to(dflt->data(), 4096));
}

TEST(AlignedBuffer, MemoryIsZeroFilledAndWritable) {
  // Several buffers in a row, each written before being freed: a reused allocation must
  // come back zeroed too.
  for (int round = 0; round < 4; ++round) {
    auto b = AlignedBuffer::create(3 * 4096 + 5, 4096);
    ASSERT_TRUE(b);
    for (const std::byte x : *b) ASSERT_EQ(x, std::byte{0});
    std::memset(b->data(), 0xa5, b->size());
    EXPECT_EQ((*b).span().back(), std::byte{0xa5});
  }
}

TEST(AlignedBuffer, BadArgumentsAreInvalidArgument) {
  for (const std::size_t a : {std::size_t{0}, std::size_t{3}, std::size_t{6}, std::size_t{4095},
                              std::size_t{4097}, std::numeric_limits<std::size_t>::max()}) {
    auto b = AlignedBuffer::create(4096, a);
    ASSERT_FALSE(b) << "alignment " << a;
    EXPECT_EQ(b.error(), std::errc::invalid_argument) << "alignment " << a;
  }
  auto zero = AlignedBuffer::create(0, 4096);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error(), std::errc::invalid_argument);
}

TEST(AlignedBuffer, HugeSizeIsNotEnoughMemoryWithoutThrowing) {
  constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
  // 2^60 on LP64; on ILP32 every size below PTRDIFF_MAX may well be mapped.
  constexpr std::size_t beyond_memory = sizeof(std::size_t) == 8 ? static_cast<std::size_t>(1ULL << 60) : max;
  const std::size_t sizes[] = {max, max - 4095, static_cast<std::size_t>(PTRDIFF_MAX) + 1,
                               static_cast<std::size_t>(PTRDIFF_MAX) - 100,  // rounds up past PTRDIFF_MAX
                               beyond_memory};                               // refused by the allocator
  for (const std::size_t n : sizes) {
    auto b = AlignedBuffer::create(n, 4096);
    ASSERT_FALSE(b) << "size " << n;
    EXPECT_EQ(b.error(), std::errc::not_enough_memory) << "size " << n;
  }
}

TEST(AlignedBuffer, MoveTransfersOwnershipAndEmptiesTheSource) {
  auto made = AlignedBuffer::create(8192, 512);
  ASSERT_TRUE(made);
  std::byte* const mem = made->data();
  mem[0] = std::byte{7};

  AlignedBuffer a(std::move(*made));
  EXPECT_EQ(a.data(), mem);
  EXPECT_EQ(a.size(), 8192U);
  EXPECT_EQ(a.alignment(), 512U);
  EXPECT_TRUE(made->empty());
  EXPECT_EQ(made->data(), nullptr);
  EXPECT_EQ(made->alignment(), 0U);

  auto other = AlignedBuffer::create(100, 64);
  ASSERT_TRUE(other);
  AlignedBuffer b = std::move(*other);
  b = std::move(a);  // frees b's old memory (the leak checkers would say otherwise)
  EXPECT_EQ(b.data(), mem);
  EXPECT_EQ(b.size(), 8192U);
  EXPECT_EQ(b.data()[0], std::byte{7});
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified

  AlignedBuffer& alias = b;
  b = std::move(alias);  // self-move: unchanged
  EXPECT_EQ(b.data(), mem);
  EXPECT_EQ(b.size(), 8192U);
  EXPECT_EQ(b.alignment(), 512U);

  a = std::move(b);  // into a moved-from buffer
  EXPECT_EQ(a.data(), mem);
  AlignedBuffer empty;
  a = std::move(empty);  // an empty one frees the memory and leaves a empty
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.data(), nullptr);
}

TEST(AlignedBuffer, BuildersTakeItDirectly) {
  auto b = AlignedBuffer::create(4096 + 512, 4096);
  ASSERT_TRUE(b);
  const iocb r = aio::make_pread(7, *b, 4096);
  EXPECT_EQ(r.aio_lio_opcode, IOCB_CMD_PREAD);
  EXPECT_EQ(r.aio_buf, reinterpret_cast<std::uintptr_t>(b->data()));
  EXPECT_EQ(r.aio_nbytes, 4096U + 512U);
  const AlignedBuffer& cb = *b;
  const iocb w = aio::make_pwrite(7, cb, 0);
  EXPECT_EQ(w.aio_lio_opcode, IOCB_CMD_PWRITE);
  EXPECT_EQ(w.aio_buf, reinterpret_cast<std::uintptr_t>(b->data()));
  EXPECT_EQ(w.aio_nbytes, 4096U + 512U);
  // Through the span conversions too.
  const std::span<std::byte> sp = *b;
  const iocb via_span = aio::make_pread(7, sp, 4096);
  EXPECT_EQ(std::memcmp(&r, &via_span, sizeof r), 0);
  EXPECT_EQ(aio::buffer_of(r).data(), b->data());
  EXPECT_EQ(aio::buffer_of(r).size(), b->size());
}

// ---- A real O_DIRECT round trip -------------------------------------------------------------

/// The first of $TMPDIR, /var/tmp, /tmp and the working directory where a file opens with
/// O_DIRECT and probe_fd() gives a usable alignment; nullptr (and why) when none does.
struct DirectDir {
  std::unique_ptr<TempDir> dir;
  std::size_t mem_align = 0;
  std::size_t off_align = 0;
  std::string tried;
};

DirectDir find_direct_dir() {
  DirectDir d;
  std::vector<std::string> candidates;
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') candidates.emplace_back(t);
  candidates.emplace_back("/var/tmp");
  candidates.emplace_back("/tmp");
  std::error_code ec;
  if (auto cwd = std::filesystem::current_path(ec); !ec) candidates.push_back(cwd.string());
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  for (const auto& base : candidates) {
    auto dir = std::make_unique<TempDir>(base.c_str());
    if (!dir->ok()) {
      d.tried += "\n  " + base + ": mkdtemp failed";
      continue;
    }
    Fd fd(::open(dir->file("probe").c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600));
    if (!fd.ok()) {
      d.tried += "\n  " + base + ": open(O_DIRECT): " + std::error_code(errno, std::generic_category()).message();
      continue;
    }
    auto caps = aio::probe_fd(fd.get());
    if (!caps || caps->dio_mem_align.value_or(1) == 0 || caps->dio_offset_align.value_or(1) == 0) {
      d.tried += "\n  " + base + ": the file system says no O_DIRECT for files here";
      continue;
    }
    d.mem_align = caps->dio_mem_align.value_or(page);  // unknown: the page size (buffer.hpp)
    d.off_align = caps->dio_offset_align.value_or(page);
    d.dir = std::move(dir);
    return d;
  }
  return d;
}

TEST(AlignedBuffer, ODirectWriteThenReadRoundTrip) {
  DirectDir d = find_direct_dir();
  if (!d.dir) GTEST_SKIP() << "no candidate directory takes O_DIRECT:" << d.tried;
  Fd fd(::open(d.dir->file("data").c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd.ok()) << std::strerror(errno);
  auto ctx = aio::Context::create(4);
  ASSERT_TRUE(ctx) << ctx.error().message();

  const std::size_t len = std::max<std::size_t>(d.off_align, 4096) * 4;
  auto out = AlignedBuffer::create(len, d.mem_align);
  auto in = AlignedBuffer::create(len, d.mem_align);
  ASSERT_TRUE(out && in);
  const std::string text = pattern(len, 'K');
  std::memcpy(out->data(), text.data(), len);

  const auto off = static_cast<std::int64_t>(d.off_align * 3);
  iocb w = aio::make_pwrite(fd.get(), *out, off);
  const io_event we = run_one(*ctx, w);
  ASSERT_EQ(we.res, static_cast<std::int64_t>(len)) << "O_DIRECT write: " << std::strerror(static_cast<int>(-we.res));
  iocb r = aio::make_pread(fd.get(), *in, off);
  const io_event re = run_one(*ctx, r);
  ASSERT_EQ(re.res, static_cast<std::int64_t>(len)) << "O_DIRECT read: " << std::strerror(static_cast<int>(-re.res));
  EXPECT_EQ(std::memcmp(in->data(), text.data(), len), 0);

  // The bytes are on the file, not only in the buffers: a buffered read sees them, and the
  // range before the write reads as a hole.
  Fd plain(::open(d.dir->file("data").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(plain.ok());
  std::string back(len + static_cast<std::size_t>(off), 'x');
  ASSERT_EQ(::pread(plain.get(), back.data(), back.size(), 0), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back.substr(0, static_cast<std::size_t>(off)), std::string(static_cast<std::size_t>(off), '\0'));
  EXPECT_EQ(back.substr(static_cast<std::size_t>(off)), text);
}

}  // namespace

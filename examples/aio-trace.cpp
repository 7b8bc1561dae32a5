// aio-trace — run a command with libaiopp-trace.so preloaded and report its Linux AIO:
// syscalls by kind with their durations, time blocked in io_submit, request latency by
// opcode and by file, the in-flight high-water mark, errors, the most repeated calls and
// requests, per process (forked and exec'd children included).
//
//   aio-trace [OPTIONS] -- COMMAND [ARGS...]
//
// Each traced process writes its record into a file of a private directory (the
// interposer's AIOPP_TRACE_DIR); the records are read once COMMAND has exited, so processes
// that leave through _exit() or a signal are reported too. Exit status: COMMAND's.
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <string>
#include <tuple>
#include <vector>

#include "common.hpp"
#include "trace/record.hpp"

namespace {

using aio::trace::Record;

/// The name of IOCB_CMD_<op> ("pread", ...) for op in 0..8.
const char* opcode_name(std::size_t op) {
  constexpr std::array<const char*, aio::trace::opcodes> names{"pread", "pwrite", "fsync", "fdsync", "op4",
                                                               "poll",  "noop",   "preadv", "pwritev"};
  return names.at(op);
}

constexpr const char* usage_text =
    "Usage: aio-trace [OPTIONS] -- COMMAND [ARGS...]\n"
    "Run COMMAND with libaiopp-trace.so preloaded (a libaio replacement that also sees\n"
    "syscall(SYS_io_*)) and report each process's Linux AIO when it has exited: syscalls by\n"
    "kind (count, total, p50/p99/max duration), io_submit blocking time, request latency\n"
    "p50/p99/p99.9/max by opcode and by file, in-flight high-water mark, errors by errno\n"
    "and the most repeated calls and requests (same file, opcode, offset, length). The report\n"
    "goes to stderr unless -o is given.\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE     write the text report to FILE\n"
    "      --json FILE       write the report as JSON to FILE\n"
    "  -i, --interval S      also print a snapshot to stderr every S seconds\n"
    "      --lib PATH        the interposer (default: $AIOPP_TRACE_LIB, then next to this\n"
    "                        program, then ../lib, then the build tree's)\n"
    "  -h, --help            show this help and exit\n"
    "      --version         show the version and exit\n"
    "\n"
    "Exit status: COMMAND's (128+N when killed by signal N); 127 when COMMAND is not found,\n"
    "126 when it cannot be run, 1/2 for aio-trace's own runtime/usage errors.\n"
    "Signals: aio-trace ignores SIGINT/SIGQUIT (they reach COMMAND from the terminal) and passes\n"
    "SIGTERM/SIGHUP on to COMMAND; the report comes once COMMAND has ended.\n"
    "Not traced: static binaries and set-user-ID programs (the dynamic loader ignores the\n"
    "preload there); the report says so.\n";

struct Options {
  std::string text_path;
  std::string json_path;
  double interval = 0;
  std::string lib;
  std::vector<char*> command;  // null-terminated
};

// ---- formatting -------------------------------------------------------------------------

// NOLINTBEGIN(cppcoreguidelines-pro-type-vararg,cppcoreguidelines-pro-bounds-array-to-pointer-decay)
__attribute__((format(printf, 2, 3))) void addf(std::string& out, const char* format, ...) {
  std::array<char, 512> line{};
  va_list ap;
  va_list again;
  va_start(ap, format);
  va_copy(again, ap);
  const int n = std::vsnprintf(line.data(), line.size(), format, ap);
  va_end(ap);
  if (n > 0 && static_cast<std::size_t>(n) < line.size()) {
    out.append(line.data(), static_cast<std::size_t>(n));
  } else if (n > 0) {  // longer than the line: format again into the string itself
    const std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(n) + 1);
    std::vsnprintf(&out[at], static_cast<std::size_t>(n) + 1, format, again);
    out.resize(at + static_cast<std::size_t>(n));
  }
  va_end(again);
}
// NOLINTEND(cppcoreguidelines-pro-type-vararg,cppcoreguidelines-pro-bounds-array-to-pointer-decay)

std::string dur(std::int64_t ns) {
  std::string s;
  const auto v = static_cast<double>(ns);
  if (ns < 10'000) {
    addf(s, "%lldns", static_cast<long long>(ns));
  } else if (ns < 10'000'000) {
    addf(s, "%.1fus", v / 1e3);
  } else if (ns < 10'000'000'000LL) {
    addf(s, "%.1fms", v / 1e6);
  } else {
    addf(s, "%.2fs", v / 1e9);
  }
  return s;
}

std::string errno_name(std::size_t e) {
  if (e == 0) return "errno>=134";
  const char* name = ::strerrorname_np(static_cast<int>(e));
  return name != nullptr ? name : "errno " + std::to_string(e);
}

std::string json_str(const char* s) {
  std::string out = "\"";
  for (; *s != '\0'; ++s) {
    const auto c = static_cast<unsigned char>(*s);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      addf(out, "\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// ---- one process's record ---------------------------------------------------------------

struct Mapped {
  const Record* rec = nullptr;
  std::string file;
};

std::vector<Mapped> load_records(const std::string& dir) {
  std::vector<Mapped> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() < 5 || name.substr(name.size() - 4) != ".rec") continue;
    const std::string path = dir + "/" + name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    void* mem = MAP_FAILED;
    if (::fstat(fd, &st) == 0 && static_cast<std::size_t>(st.st_size) == sizeof(Record))
      mem = ::mmap(nullptr, sizeof(Record), PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (mem == MAP_FAILED) continue;
    const auto* rec = static_cast<const Record*>(mem);
    if (rec->magic != aio::trace::record_magic || rec->version != aio::trace::record_version ||
        rec->size != sizeof(Record)) {
      ::munmap(mem, sizeof(Record));
      continue;
    }
    out.push_back(Mapped{rec, path});
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const Mapped& a, const Mapped& b) { return a.rec->start_ns < b.rec->start_ns; });
  return out;
}

void unload(std::vector<Mapped>& recs) {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): munmap takes void*
  for (auto& m : recs) ::munmap(const_cast<Record*>(m.rec), sizeof(Record));
  recs.clear();
}

/// Requests still in the table: never seen completing before the process ended.
std::uint64_t still_in_flight(const Record& r) {
  std::uint64_t n = 0;
  for (const auto& slot : r.table)
    if (slot.key.load(std::memory_order_relaxed) > aio::trace::slot_busy) ++n;
  return n;
}

/// Every matched completion's latency: the sum of the per-opcode histograms.
/// Returns a pointer: the histogram holds atomics and is neither copied nor moved.
std::unique_ptr<aio::LatencyHistogram> all_latency(const Record& r) {
  auto all = std::make_unique<aio::LatencyHistogram>();
  for (const auto& h : r.latency_by_op) all->merge(h);
  return all;
}

/// Completions of requests never seen submitted (the parked ones never claimed included).
std::uint64_t unmatched(const Record& r) { return r.unmatched.load() + r.early_count.load(); }

std::uint64_t total_calls(const Record& r) { return r.observer.total_syscalls() + r.empty_polls.load(); }

std::string process_title(const Record& r) {
  std::string s;
  addf(s, "pid %d (ppid %d) %s", r.pid, r.ppid, r.cmdline[0] != '\0' ? r.cmdline.data() : r.exe.data());
  return s;
}

// ---- the text report --------------------------------------------------------------------

void text_latency_row(std::string& out, const char* label, const aio::LatencyHistogram& h, std::uint64_t errors) {
  const auto s = h.summary();
  if (s.count == 0 && errors == 0) return;
  addf(out, "    %-28.28s %10" PRIu64 " %9s %9s %9s %9s %7" PRIu64 "\n", label, s.count, dur(s.p50.count()).c_str(),
       dur(s.p99.count()).c_str(), dur(s.p999.count()).c_str(), dur(s.max.count()).c_str(), errors);
}

void text_syscalls(std::string& out, const Record& r) {
  addf(out, "  %-19s %10s %7s %9s %9s %9s %9s\n", "syscalls", "count", "errors", "total", "p50", "p99", "max");
  for (std::size_t k = 0; k < aio::syscall_kinds; ++k) {
    const auto call = static_cast<aio::Syscall>(k);
    const auto s = r.duration[k].summary();
    if (s.count == 0) continue;
    std::uint64_t errs = 0;
    for (const auto& e : r.call_errors[k]) errs += e.load();
    addf(out, "    %-17s %10" PRIu64 " %7" PRIu64 " %9s %9s %9s %9s\n", aio::to_string(call), s.count, errs,
         dur(r.duration[k].total().count()).c_str(), dur(s.p50.count()).c_str(), dur(s.p99.count()).c_str(),
         dur(s.max.count()).c_str());
  }
  if (const auto polls = r.empty_polls.load(); polls != 0)
    addf(out, "    (%" PRIu64 " io_getevents with a zero timeout answered from the empty ring, no syscall)\n", polls);
}

void text_blocking(std::string& out, const Record& r) {
  const auto& sub = r.duration[static_cast<std::size_t>(aio::Syscall::submit)];
  if (sub.count() == 0) return;
  const std::int64_t span = r.last_call_ns.load() - r.first_call_ns.load();
  const std::int64_t blocked = sub.total().count();
  addf(out, "  io_submit blocked: %s in %" PRIu64 " calls", dur(blocked).c_str(), sub.count());
  if (span > 0)
    addf(out, " (%.1f%% of the %s from the first AIO call to the last)", 100.0 * static_cast<double>(blocked) /
                                                                            static_cast<double>(span),
         dur(span).c_str());
  out += "\n";
}

void text_requests(std::string& out, const Record& r) {
  std::uint64_t failed = 0;
  for (const auto& e : r.request_errors) failed += e.load();
  addf(out, "  requests: %" PRIu64 " submitted, %" PRIu64 " seen completing (%" PRIu64 " with an error); in-flight high-water mark %lld\n",
       r.submitted.load(), r.completed.load(), failed, static_cast<long long>(r.inflight_hwm.load()));
  const auto at_exit = still_in_flight(r);
  const auto destroyed = r.destroyed_unseen.load();
  if (at_exit != 0 || destroyed != 0)
    addf(out, "  never seen completing: %" PRIu64 " (%" PRIu64 " still there at io_destroy, %" PRIu64
              " in flight or unreaped when the process ended); reaped from the ring by the program itself, or never reaped\n",
         at_exit + destroyed, destroyed, at_exit);
  if (const auto u = r.untracked.load(); u != 0) addf(out, "  untimed (table crowded): %" PRIu64 "\n", u);
  if (const auto u = unmatched(r); u != 0)
    addf(out, "  completions of requests not seen submitted: %" PRIu64 "\n", u);
}

void text_latency(std::string& out, const Record& r) {
  const auto all = all_latency(r);
  if (all->count() == 0) return;
  addf(out, "  %-30s %10s %9s %9s %9s %9s %7s\n", "latency, submit -> reaped", "count", "p50", "p99", "p99.9", "max", "errors");
  std::uint64_t errs = 0;
  for (const auto& e : r.errors_by_op) errs += e.load();
  text_latency_row(out, "all", *all, errs);
  for (std::size_t op = 0; op < aio::trace::opcodes; ++op)
    text_latency_row(out, opcode_name(op), r.latency_by_op[op], r.errors_by_op[op].load());
  const std::uint32_t nfiles = r.file_count.load();
  for (std::uint32_t f = 0; f <= aio::trace::max_files; ++f) {
    if (f < aio::trace::max_files && f >= nfiles) continue;
    const auto& fs = r.files[f];
    std::string label = f == aio::trace::max_files ? std::string("(other files)") : std::string(fs.path.data());
    if (label.size() > 28) label = "..." + label.substr(label.size() - 25);
    text_latency_row(out, label.c_str(), fs.latency, fs.errors.load());
  }
}

void text_errors(std::string& out, const Record& r) {
  std::string calls;
  for (std::size_t k = 0; k < aio::syscall_kinds; ++k)
    for (std::size_t e = 0; e < aio::trace::errno_slots; ++e)
      if (const auto n = r.call_errors[k][e].load(); n != 0)
        addf(calls, " %s %s x%" PRIu64 ";", aio::to_string(static_cast<aio::Syscall>(k)), errno_name(e).c_str(), n);
  std::string reqs;
  for (std::size_t e = 0; e < aio::trace::errno_slots; ++e)
    if (const auto n = r.request_errors[e].load(); n != 0) addf(reqs, " %s x%" PRIu64 ";", errno_name(e).c_str(), n);
  if (!calls.empty()) out += "  call errors:" + calls + "\n";
  if (!reqs.empty()) out += "  request errors (completions):" + reqs + "\n";
}

void text_top(std::string& out, const Record& r) {
  std::array<aio::CallCount, 5> top{};
  const std::size_t n = r.observer.top_calls(top);
  if (n == 0) return;
  out += "  most repeated calls:\n";
  for (std::size_t i = 0; i < n; ++i) {
    const auto& c = top[i];
    addf(out, "    %10" PRIu64 "x %s(nr=%ld", c.count, aio::to_string(c.call), c.nr);
    if (c.call == aio::Syscall::getevents || c.call == aio::Syscall::pgetevents) {
      addf(out, ", min_nr=%ld, timeout=%s", c.min_nr, c.timeout_ns < 0 ? "none" : dur(c.timeout_ns).c_str());
      if (c.sigmask) out += ", sigmask";
    }
    out += ")\n";
  }
}

/// The most repeated request tuples (submitted at least twice), most frequent first.
struct RepeatedRequest {
  std::string file;
  const char* op = "";
  std::int64_t offset = 0;
  std::uint64_t nbytes = 0;
  std::uint64_t count = 0;
};

std::vector<RepeatedRequest> repeated_requests(const Record& r, std::size_t most) {
  std::vector<RepeatedRequest> out;
  for (const auto& t : r.request_tuples) {
    const std::uint64_t n = t.count.load(std::memory_order_acquire);
    if (n < 2) continue;
    const std::uint32_t meta = t.meta.load();
    const std::uint32_t op = meta >> 8U;
    const std::uint32_t file = meta & 0xffU;
    out.push_back(RepeatedRequest{
        file < r.file_count.load() ? std::string(r.files[file].path.data()) : std::string("(other files)"),
        op < aio::trace::opcodes ? opcode_name(op) : "op?", t.offset.load(), t.nbytes.load(), n});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.count != b.count ? a.count > b.count : std::tie(a.file, a.offset) < std::tie(b.file, b.offset);
  });
  if (out.size() > most) out.resize(most);
  return out;
}

/// Distinct request tuples counted.
std::uint64_t distinct_requests(const Record& r) {
  return static_cast<std::uint64_t>(std::count_if(r.request_tuples.begin(), r.request_tuples.end(),
                                                  [](const auto& t) { return t.count.load() != 0; }));
}

void text_repeated_requests(std::string& out, const Record& r) {
  const auto reps = repeated_requests(r, 5);
  if (reps.empty()) return;
  addf(out, "  most repeated requests (same file, opcode, offset, length; %" PRIu64 " distinct):\n",
       distinct_requests(r));
  for (const auto& q : reps)
    addf(out, "    %10" PRIu64 "x %s %s offset=%lld len=%" PRIu64 "\n", q.count, q.op, q.file.c_str(),
         static_cast<long long>(q.offset), q.nbytes);
  if (const auto d = r.request_tuples_dropped.load(); d != 0)
    addf(out, "    (%" PRIu64 " requests of tuples first seen after the table was full: not counted)\n", d);
}

std::string text_report(const std::vector<Mapped>& recs, const std::vector<std::string>& notes) {
  std::string out;
  std::size_t with_aio = 0;
  std::string quiet;  // the processes that made no AIO call, on one line
  for (const auto& m : recs) {
    const Record& r = *m.rec;
    if (total_calls(r) == 0) {
      const std::string exe = r.exe.data();
      addf(quiet, "%s%d (%s)", quiet.empty() ? "" : ", ", r.pid, exe.substr(exe.rfind('/') + 1).c_str());
      continue;
    }
    ++with_aio;
    out += process_title(r) + (r.exited.load() != 0 ? "" : " [ended without exit(): _exit, exec or a signal]") + "\n";
    text_syscalls(out, r);
    text_blocking(out, r);
    text_requests(out, r);
    text_latency(out, r);
    text_errors(out, r);
    text_top(out, r);
    text_repeated_requests(out, r);
  }
  if (!quiet.empty()) out += "no AIO calls: pid " + quiet + "\n";
  addf(out, "aio-trace: %zu process%s traced, %zu made AIO calls\n", recs.size(), recs.size() == 1 ? "" : "es", with_aio);
  for (const auto& n : notes) out += "aio-trace: " + n + "\n";
  return out;
}

// ---- the JSON report --------------------------------------------------------------------

std::string json_summary(const aio::LatencySummary& s) {
  std::string o;
  addf(o, "{\"count\":%" PRIu64 ",\"p50_ns\":%lld,\"p99_ns\":%lld,\"p999_ns\":%lld,\"max_ns\":%lld}", s.count,
       static_cast<long long>(s.p50.count()), static_cast<long long>(s.p99.count()),
       static_cast<long long>(s.p999.count()), static_cast<long long>(s.max.count()));
  return o;
}

std::string json_process(const Record& r) {
  std::string o = "{";
  addf(o, "\"pid\":%d,\"ppid\":%d,\"exe\":%s,\"cmdline\":%s,\"exited\":%s,", r.pid, r.ppid, json_str(r.exe.data()).c_str(),
       json_str(r.cmdline.data()).c_str(), r.exited.load() != 0 ? "true" : "false");
  o += "\"syscalls\":{";
  for (std::size_t k = 0; k < aio::syscall_kinds; ++k) {
    std::uint64_t errs = 0;
    for (const auto& e : r.call_errors[k]) errs += e.load();
    addf(o, "%s\"%s\":{\"errors\":%" PRIu64 ",\"total_ns\":%lld,\"duration\":%s}", k == 0 ? "" : ",",
         aio::to_string(static_cast<aio::Syscall>(k)), errs, static_cast<long long>(r.duration[k].total().count()),
         json_summary(r.duration[k].summary()).c_str());
  }
  addf(o, "},\"empty_ring_polls\":%" PRIu64 ",", r.empty_polls.load());
  const auto& sub = r.duration[static_cast<std::size_t>(aio::Syscall::submit)];
  addf(o, "\"io_submit_blocked_ns\":%lld,\"active_ns\":%lld,", static_cast<long long>(sub.total().count()),
       static_cast<long long>(r.last_call_ns.load() - r.first_call_ns.load()));
  addf(o,
       "\"requests\":{\"submitted\":%" PRIu64 ",\"completed\":%" PRIu64 ",\"never_seen_completing\":%" PRIu64
       ",\"unseen_at_destroy\":%" PRIu64 ",\"unseen_at_exit\":%" PRIu64 ",\"untracked\":%" PRIu64
       ",\"unmatched_completions\":%" PRIu64 ",\"inflight_high_water\":%lld},",
       r.submitted.load(), r.completed.load(), r.destroyed_unseen.load() + still_in_flight(r), r.destroyed_unseen.load(),
       still_in_flight(r), r.untracked.load(), unmatched(r), static_cast<long long>(r.inflight_hwm.load()));
  addf(o, "\"latency\":%s,\"latency_by_opcode\":{", json_summary(all_latency(r)->summary()).c_str());
  bool first = true;
  for (std::size_t op = 0; op < aio::trace::opcodes; ++op) {
    if (r.requests_by_op[op].load() == 0) continue;
    addf(o, "%s\"%s\":{\"requests\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"latency\":%s}", first ? "" : ",",
         opcode_name(op), r.requests_by_op[op].load(), r.errors_by_op[op].load(),
         json_summary(r.latency_by_op[op].summary()).c_str());
    first = false;
  }
  o += "},\"latency_by_file\":[";
  first = true;
  for (std::uint32_t f = 0; f <= aio::trace::max_files; ++f) {
    const auto& fs = r.files[f];
    if (fs.requests.load() == 0) continue;
    addf(o, "%s{\"file\":%s,\"requests\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"latency\":%s}", first ? "" : ",",
         f == aio::trace::max_files ? "null" : json_str(fs.path.data()).c_str(), fs.requests.load(), fs.errors.load(),
         json_summary(fs.latency.summary()).c_str());
    first = false;
  }
  o += "],\"call_errors\":[";
  first = true;
  for (std::size_t k = 0; k < aio::syscall_kinds; ++k)
    for (std::size_t e = 0; e < aio::trace::errno_slots; ++e)
      if (const auto n = r.call_errors[k][e].load(); n != 0) {
        addf(o, "%s{\"call\":\"%s\",\"errno\":%zu,\"name\":\"%s\",\"count\":%" PRIu64 "}", first ? "" : ",",
             aio::to_string(static_cast<aio::Syscall>(k)), e, errno_name(e).c_str(), n);
        first = false;
      }
  o += "],\"request_errors\":[";
  first = true;
  for (std::size_t e = 0; e < aio::trace::errno_slots; ++e)
    if (const auto n = r.request_errors[e].load(); n != 0) {
      addf(o, "%s{\"errno\":%zu,\"name\":\"%s\",\"count\":%" PRIu64 "}", first ? "" : ",", e, errno_name(e).c_str(), n);
      first = false;
    }
  o += "],\"top_calls\":[";
  std::array<aio::CallCount, 10> top{};
  const std::size_t n = r.observer.top_calls(top);
  for (std::size_t i = 0; i < n; ++i)
    addf(o, "%s{\"call\":\"%s\",\"nr\":%ld,\"min_nr\":%ld,\"timeout_ns\":%lld,\"sigmask\":%s,\"count\":%" PRIu64 "}",
         i == 0 ? "" : ",", aio::to_string(top[i].call), top[i].nr, top[i].min_nr, top[i].timeout_ns,
         top[i].sigmask ? "true" : "false", top[i].count);
  o += "],\"top_requests\":[";
  const auto reps = repeated_requests(r, 10);
  for (std::size_t i = 0; i < reps.size(); ++i)
    addf(o, "%s{\"file\":%s,\"opcode\":\"%s\",\"offset\":%lld,\"nbytes\":%" PRIu64 ",\"count\":%" PRIu64 "}",
         i == 0 ? "" : ",", json_str(reps[i].file.c_str()).c_str(), reps[i].op, static_cast<long long>(reps[i].offset),
         reps[i].nbytes, reps[i].count);
  addf(o, "],\"distinct_requests\":%" PRIu64 ",\"requests_not_in_tuples\":%" PRIu64, distinct_requests(r),
       r.request_tuples_dropped.load());
  return o + "}";
}

std::string json_report(const std::vector<Mapped>& recs, const std::vector<std::string>& notes, int status) {
  std::string o = "{\"tool\":\"aio-trace\",\"version\":\"" AIOPP_VERSION_STRING "\",";
  addf(o, "\"exit_status\":%d,\"notes\":[", status);
  for (std::size_t i = 0; i < notes.size(); ++i) o += (i == 0 ? "" : ",") + json_str(notes[i].c_str());
  o += "],\"processes\":[";
  for (std::size_t i = 0; i < recs.size(); ++i) o += (i == 0 ? "" : ",") + json_process(*recs[i].rec);
  return o + "]}\n";
}

// ---- running the command ----------------------------------------------------------------

Options parse_options(int argc, char** argv) {
  Options o;
  int i = 1;
  auto value = [&](const std::string& name) -> std::string {
    if (i + 1 >= argc) cli::usage_error("option '" + name + "' requires an argument");
    return argv[++i];
  };
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.empty() || a[0] != '-') break;
    if (a == "-h" || a == "--help") {
      std::fputs(usage_text, stdout);
      throw cli::Exit{0};
    }
    if (a == "--version") cli::print_version();
    if (a == "-o" || a == "--output") {
      o.text_path = value(a);
    } else if (a.rfind("--output=", 0) == 0) {
      o.text_path = a.substr(9);
    } else if (a == "--json") {
      o.json_path = value(a);
    } else if (a.rfind("--json=", 0) == 0) {
      o.json_path = a.substr(7);
    } else if (a == "-i" || a == "--interval") {
      const std::string v = value(a);
      char* end = nullptr;
      o.interval = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(o.interval > 0) || o.interval > 1e6)
        cli::usage_error("invalid interval '" + v + "'");
    } else if (a == "--lib") {
      o.lib = value(a);
    } else {
      cli::usage_error("unrecognized option '" + a + "' (try --help)");
    }
  }
  if (i >= argc) cli::usage_error("no command given (usage: aio-trace [OPTIONS] -- COMMAND [ARGS...])");
  for (; i < argc; ++i) o.command.push_back(argv[i]);
  o.command.push_back(nullptr);
  return o;
}

bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string self_dir() {
  std::array<char, 4096> buf{};
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return ".";
  std::string p(buf.data(), static_cast<std::size_t>(n));
  return p.substr(0, p.rfind('/'));
}

std::string find_lib(const Options& o) {
  if (!o.lib.empty()) {
    if (!is_file(o.lib)) cli::fail("interposer " + o.lib, ENOENT);
    return o.lib;
  }
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("AIOPP_TRACE_LIB")) candidates.emplace_back(env);
  const std::string dir = self_dir();
  candidates.push_back(dir + "/libaiopp-trace.so");
  candidates.push_back(dir + "/../lib/libaiopp-trace.so");
  candidates.push_back(dir + "/../" CMAKE_INSTALL_LIBDIR_STR "/libaiopp-trace.so");
#ifdef AIOPP_TRACE_BUILD_LIB
  candidates.emplace_back(AIOPP_TRACE_BUILD_LIB);
#endif
  for (const auto& c : candidates) {
    if (!is_file(c)) continue;
    std::array<char, 4096> real{};
    return ::realpath(c.c_str(), real.data()) != nullptr ? std::string(real.data()) : c;
  }
  cli::fail("libaiopp-trace.so not found (give --lib PATH or AIOPP_TRACE_LIB)");
}

/// COMMAND's path as execvp would find it; empty when not found.
std::string resolve_command(const char* cmd) {
  const std::string c = cmd;
  if (c.find('/') != std::string::npos) return ::access(c.c_str(), F_OK) == 0 ? c : std::string();
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string d = end > start ? dirs.substr(start, end - start) : ".";
    const std::string full = d + "/" + c;
    if (is_file(full) && ::access(full.c_str(), X_OK) == 0) return full;
    start = end + 1;
  }
  return {};
}

/// Why the preload cannot reach `path`'s process, or empty: a static ELF or set-ID program.
std::string preload_obstacle(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  if (((st.st_mode & S_ISUID) != 0 && st.st_uid != ::geteuid()) || ((st.st_mode & S_ISGID) != 0 && st.st_gid != ::getegid()))
    return path + " is set-user/group-ID: the dynamic loader ignores the preload, its AIO is not traced";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  Elf64_Ehdr eh{};
  std::string why;
  if (::pread(fd, &eh, sizeof eh, 0) == static_cast<ssize_t>(sizeof eh) && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
      eh.e_ident[EI_CLASS] == ELFCLASS64) {
    bool interp = false;
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
      Elf64_Phdr ph{};
      const auto off = static_cast<off_t>(eh.e_phoff + std::uint64_t{i} * eh.e_phentsize);
      if (::pread(fd, &ph, sizeof ph, off) != static_cast<ssize_t>(sizeof ph)) break;
      if (ph.p_type == PT_INTERP) interp = true;
    }
    if (!interp) why = path + " is statically linked: nothing can be preloaded into it, its AIO is not traced";
  }
  ::close(fd);
  return why;
}

std::FILE* open_output(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) cli::fail("cannot write " + path, errno);
  return f;
}

void write_and_close(std::FILE* f, const std::string& text, const std::string& path) {
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) cli::fail("writing " + path, errno);
}

// Records live in memory when /dev/shm is there (no writeback of the shared pages), else TMPDIR or /tmp.
std::string make_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  if (::access("/dev/shm", W_OK | X_OK) == 0) base = "/dev/shm";
  std::string templ = base + "/aio-trace.XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) cli::fail("creating a directory in " + templ.substr(0, templ.rfind('/')), errno);
  return templ;
}

void remove_dir(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ::unlink((dir + "/" + e->d_name).c_str());
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}

void set_environment(const std::string& lib, const std::string& dir) {
  const char* old = std::getenv("LD_PRELOAD");
  const std::string preload = old != nullptr && *old != '\0' ? lib + ":" + old : lib;
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  ::setenv(aio::trace::env_dir, dir.c_str(), 1);
}

// The command's pid, for the handler that passes SIGTERM/SIGHUP on to it.
volatile sig_atomic_t g_child = 0;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

extern "C" void pass_on(int sig) {
  if (g_child > 0) ::kill(static_cast<pid_t>(g_child), sig);
}

/// SIGTERM and SIGHUP go to the command, which ends; then the report comes as usual.
void forward_signals() {
  struct sigaction sa {};
  sa.sa_handler = pass_on;
  ::sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
}

/// Forks and execs the command; the exec's errno comes back through a close-on-exec pipe.
pid_t spawn(const Options& o, int& exec_errno) {
  std::array<int, 2> p{};
  if (::pipe2(p.data(), O_CLOEXEC) != 0) cli::fail("pipe", errno);
  const pid_t pid = ::fork();
  if (pid < 0) cli::fail("fork", errno);
  if (pid == 0) {
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGQUIT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGHUP, SIG_DFL);
    ::execvp(o.command[0], o.command.data());
    const int err = errno;
    (void)!::write(p[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(p[1]);
  g_child = pid;
  exec_errno = 0;
  ssize_t n = 0;
  do {
    n = ::read(p[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof exec_errno)) exec_errno = 0;
  ::close(p[0]);
  return pid;
}

void print_snapshot(const std::string& dir, double elapsed) {
  auto recs = load_records(dir);
  for (const auto& m : recs) {
    const Record& r = *m.rec;
    if (total_calls(r) == 0) continue;
    const auto lat = all_latency(r)->summary();
    std::fprintf(stderr,
                 "aio-trace: [%.1fs] pid %d: %" PRIu64 " syscalls, %" PRIu64 " requests submitted, %" PRIu64
                 " completed, %lld in flight (high-water %lld), latency p50 %s p99 %s\n",
                 elapsed, r.pid, r.observer.total_syscalls(), r.submitted.load(), r.completed.load(),
                 static_cast<long long>(r.inflight.load()), static_cast<long long>(r.inflight_hwm.load()),
                 dur(lat.p50.count()).c_str(), dur(lat.p99.count()).c_str());
  }
  unload(recs);
}

int wait_for(pid_t pid, const Options& o, const std::string& dir) {
  int st = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto next = t0 + std::chrono::duration<double>(o.interval);
  for (;;) {
    const pid_t r = ::waitpid(pid, &st, o.interval > 0 ? WNOHANG : 0);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) cli::fail("waitpid", errno);
    if (o.interval > 0 && r == 0) {
      ::usleep(20'000);
      const auto now = std::chrono::steady_clock::now();
      if (now >= next) {
        print_snapshot(dir, std::chrono::duration<double>(now - t0).count());
        next += std::chrono::duration<double>(o.interval);
      }
    }
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

int trace_main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  const std::string lib = find_lib(o);
  const std::string path = resolve_command(o.command[0]);
  if (path.empty()) {
    std::fprintf(stderr, "aio-trace: %s: command not found\n", o.command[0]);
    return 127;
  }
  std::vector<std::string> notes;
  if (auto why = preload_obstacle(path); !why.empty()) notes.push_back(why);
  std::FILE* text = o.text_path.empty() ? nullptr : open_output(o.text_path);
  std::FILE* json = o.json_path.empty() ? nullptr : open_output(o.json_path);
  const std::string dir = make_dir();
  set_environment(lib, dir);
  ::signal(SIGINT, SIG_IGN);  // the command gets the terminal's signals; the report still comes
  ::signal(SIGQUIT, SIG_IGN);
  int exec_errno = 0;
  forward_signals();
  const pid_t pid = spawn(o, exec_errno);
  const int status = wait_for(pid, o, dir);
  if (exec_errno != 0) {
    remove_dir(dir);
    std::fprintf(stderr, "aio-trace: %s: %s\n", o.command[0], std::strerror(exec_errno));
    return exec_errno == ENOENT ? 127 : 126;
  }
  auto recs = load_records(dir);
  if (recs.empty() && notes.empty())
    notes.emplace_back("no traced process: the command (and its children) ran without the interposer (static or set-ID?)");
  const std::string report = text_report(recs, notes);
  const std::string js = json != nullptr ? json_report(recs, notes, status) : std::string();
  unload(recs);
  remove_dir(dir);
  if (text != nullptr) {
    write_and_close(text, report, o.text_path);
  } else {
    std::fputs(report.c_str(), stderr);
  }
  if (json != nullptr) write_and_close(json, js, o.json_path);
  return status;
}

}  // namespace

int main(int argc, char** argv) { return cli::run_main("aio-trace", argc, argv, trace_main); }

// process_* metrics, read from /proc at scrape time with the names, help texts and order of the
// Prometheus Python client's ProcessCollector, so dashboards built for vLLM/LiteLLM processes work
// unchanged. A figure that cannot be read (no /proc) is left out, as that client does.
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "common/metrics/registry.h"

namespace ondol::metrics {
namespace {

// /proc/self/stat after the ")" that closes the command name; 0-based indices into the fields
// that follow it (field N of proc(5) is index N - 3).
constexpr int kStatUtime = 11;      // field 14, clock ticks
constexpr int kStatStime = 12;      // field 15, clock ticks
constexpr int kStatStartTime = 19;  // field 22, clock ticks since boot
constexpr int kStatVsize = 20;      // field 23, bytes
constexpr int kStatRss = 21;        // field 24, pages
constexpr int kStatFieldsNeeded = kStatRss + 1;
// /proc/self/stat is one line of a few hundred bytes; /proc/stat grows with the CPU count.
constexpr size_t kReadChunkBytes = 4096;

std::optional<std::string> read_file(const char* path) {
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return std::nullopt;
  std::string text;
  char buf[kReadChunkBytes];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  std::fclose(f);
  return text;
}

struct ProcStat {
  double utime_ticks = 0;
  double stime_ticks = 0;
  double start_ticks = 0;
  double vsize_bytes = 0;
  double rss_pages = 0;
};

std::optional<ProcStat> read_proc_stat() {
  std::optional<std::string> text = read_file("/proc/self/stat");
  if (!text) return std::nullopt;
  // The command name may itself contain spaces and ')', so split after the last ')'.
  size_t paren = text->rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  double fields[kStatFieldsNeeded] = {};
  const char* p = text->c_str() + paren + 1;
  while (*p == ' ') ++p;
  while (*p != ' ' && *p != '\0') ++p;  // index 0 is the state letter, not a number
  for (int i = 1; i < kStatFieldsNeeded; ++i) {
    char* end = nullptr;
    fields[i] = std::strtod(p, &end);
    if (end == p) return std::nullopt;
    p = end;
  }
  return ProcStat{.utime_ticks = fields[kStatUtime],
                  .stime_ticks = fields[kStatStime],
                  .start_ticks = fields[kStatStartTime],
                  .vsize_bytes = fields[kStatVsize],
                  .rss_pages = fields[kStatRss]};
}

// Seconds since the epoch at boot: the "btime" line of /proc/stat. It never changes, so it is
// read once.
std::optional<double> boot_time_seconds() {
  static const std::optional<double> btime = []() -> std::optional<double> {
    std::optional<std::string> text = read_file("/proc/stat");
    if (!text) return std::nullopt;
    constexpr std::string_view kKey = "\nbtime ";
    size_t pos = text->find(kKey);
    if (pos == std::string::npos) return std::nullopt;
    return std::strtod(text->c_str() + pos + kKey.size(), nullptr);
  }();
  return btime;
}

// Entries of /proc/self/fd, including the one this scan opens (as Python's os.listdir counts it).
std::optional<double> open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  double n = 0;
  while (dirent* e = readdir(dir)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") ++n;
  }
  closedir(dir);
  return n;
}

}  // namespace

void collect_process_metrics(std::string& out) {
  // A scratch registry renders the figures, so they share the exposition code byte for byte.
  Registry r;
  if (std::optional<ProcStat> stat = read_proc_stat()) {
    double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));
    double page_bytes = static_cast<double>(sysconf(_SC_PAGESIZE));
    r.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
        .with({})
        ->set(stat->vsize_bytes);
    r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
        .with({})
        ->set(stat->rss_pages * page_bytes);
    if (std::optional<double> btime = boot_time_seconds()) {
      r.gauge("process_start_time_seconds",
              "Start time of the process since unix epoch in seconds.")
          .with({})
          ->set(*btime + stat->start_ticks / ticks_per_second);
    }
    r.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
        .with({})
        ->inc((stat->utime_ticks + stat->stime_ticks) / ticks_per_second);
  }
  if (std::optional<double> fds = open_fds()) {
    r.gauge("process_open_fds", "Number of open file descriptors.").with({})->set(*fds);
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    r.gauge("process_max_fds", "Maximum number of open file descriptors.")
        .with({})
        ->set(static_cast<double>(limit.rlim_cur));
  }
  out.append(r.render());
}

}  // namespace ondol::metrics

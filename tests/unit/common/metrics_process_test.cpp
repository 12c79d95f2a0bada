// process_* metrics: the HELP/TYPE lines of the Prometheus Python client, and values that agree
// with what this test process can observe of itself.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/metrics/registry.h"

namespace ondol::metrics {
namespace {

struct Parsed {
  std::vector<std::string> comment_lines;  // "# HELP ..." and "# TYPE ..." in order
  std::map<std::string, double> samples;   // unlabelled samples by name
};

Parsed parse(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("#")) {
      p.comment_lines.push_back(line);
      continue;
    }
    size_t space = line.find(' ');
    p.samples[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return p;
}

Parsed collect() {
  std::string text;
  collect_process_metrics(text);
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  return parse(text);
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

TEST(MetricsProcess, HelpAndTypeAsThePythonClientWritesThem) {
  Parsed p = collect();
  EXPECT_EQ(p.comment_lines,
            (std::vector<std::string>{
                "# HELP process_virtual_memory_bytes Virtual memory size in bytes.",
                "# TYPE process_virtual_memory_bytes gauge",
                "# HELP process_resident_memory_bytes Resident memory size in bytes.",
                "# TYPE process_resident_memory_bytes gauge",
                "# HELP process_start_time_seconds Start time of the process since unix epoch in "
                "seconds.",
                "# TYPE process_start_time_seconds gauge",
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
                "# TYPE process_cpu_seconds_total counter",
                "# HELP process_open_fds Number of open file descriptors.",
                "# TYPE process_open_fds gauge",
                "# HELP process_max_fds Maximum number of open file descriptors.",
                "# TYPE process_max_fds gauge",
            }));
  EXPECT_EQ(p.samples.size(), 6u);
}

TEST(MetricsProcess, ValuesArePlausible) {
  Parsed p = collect();
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  constexpr double kOneHour = 3600;
  // btime has whole-second resolution, so the start time may read up to a second late.
  constexpr double kClockSlack = 2;
  EXPECT_GT(p.samples["process_start_time_seconds"], now - kOneHour);
  EXPECT_LT(p.samples["process_start_time_seconds"], now + kClockSlack);

  EXPECT_GT(p.samples["process_resident_memory_bytes"], 0);
  EXPECT_GE(p.samples["process_virtual_memory_bytes"], p.samples["process_resident_memory_bytes"]);
  EXPECT_GE(p.samples["process_cpu_seconds_total"], 0);

  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(p.samples["process_max_fds"], static_cast<double>(limit.rlim_cur));
  EXPECT_GE(p.samples["process_open_fds"], 1);
  EXPECT_LE(p.samples["process_open_fds"], p.samples["process_max_fds"]);
}

TEST(MetricsProcess, OpenFdsFollowsFilesOpened) {
  constexpr int kExtraFiles = 5;
  double before = collect().samples["process_open_fds"];
  std::vector<FILE*> files;
  for (int i = 0; i < kExtraFiles; ++i) files.push_back(std::fopen("/proc/self/stat", "r"));
  double during = collect().samples["process_open_fds"];
  for (FILE* f : files) std::fclose(f);
  EXPECT_EQ(during - before, kExtraFiles);
}

TEST(MetricsProcess, CpuSecondsFollowsWorkDone) {
  constexpr double kBurnSeconds = 0.3;
  // The kernel accounts CPU time in clock ticks (10 ms at the usual 100 Hz).
  constexpr double kTickSlack = 0.1;
  double before = collect().samples["process_cpu_seconds_total"];
  double start = process_cpu_seconds();
  volatile double sink = 0;
  while (process_cpu_seconds() - start < kBurnSeconds) sink = sink + 1;
  double after = collect().samples["process_cpu_seconds_total"];
  EXPECT_GT(after - before, kBurnSeconds - kTickSlack);
  EXPECT_LT(after - before, kBurnSeconds + 1);
}

TEST(MetricsProcess, ResidentMemoryFollowsTouchedPages) {
  constexpr size_t kBytes = 64 << 20;
  double before = collect().samples["process_resident_memory_bytes"];
  std::vector<unsigned char> block(kBytes, 1);  // writes, so every page becomes resident
  double during = collect().samples["process_resident_memory_bytes"];
  EXPECT_EQ(block[kBytes / 2], 1);
  EXPECT_GT(during - before, static_cast<double>(kBytes) / 2);
}

}  // namespace
}  // namespace ondol::metrics

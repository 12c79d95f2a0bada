#include "common/log.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

namespace ondol::log {
namespace {

constexpr auto kFlushInterval = std::chrono::milliseconds(20);
constexpr size_t kMaxBuffered = 8 << 20;  // beyond this a writer flushes inline (back-pressure)

struct Sink {
  std::mutex mu;
  std::condition_variable cv;
  std::string pending;
  std::mutex file_mu;  // one writer at a time, so a rotation never splits a batch
  FILE* out = nullptr;
  std::string path;     // of `out` when it is a file
  int64_t size = 0;     // bytes in the current file
  int64_t max_bytes = 0;
  int max_backups = 5;
  bool stop = false;
  bool json = true;
  std::thread flusher;
};

std::atomic<int> g_level{static_cast<int>(Level::Info)};
Sink* g_sink = nullptr;

const char* level_name(Level l) {
  switch (l) {
    case Level::Debug: return "debug";
    case Level::Info: return "info";
    case Level::Warn: return "warn";
    case Level::Error: return "error";
  }
  return "info";
}

void append_timestamp(std::string& out) {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
            1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ms);
}

void append_value(std::string& out, const Field& f, bool json) {
  std::visit(
      [&](auto&& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, std::string_view>) {
          if (json) append_json_string(out, v);
          else out.append(v);
        } else if constexpr (std::is_same_v<V, bool>) {
          out.append(v ? "true" : "false");
        } else if constexpr (std::is_same_v<V, double>) {
          if (!std::isfinite(v)) out.append(json ? "null" : "nan");  // JSON has no NaN/Inf
          else fmt::format_to(std::back_inserter(out), "{:.3f}", v);
        } else {
          fmt::format_to(std::back_inserter(out), "{}", v);
        }
      },
      f.value);
}

// FILE -> FILE.1 -> ... -> FILE.<max_backups> (dropped), then a fresh FILE. Under file_mu.
void rotate(Sink& s) {
  fclose(s.out);
  for (int k = s.max_backups; k >= 1; --k) {
    const std::string from = k == 1 ? s.path : fmt::format("{}.{}", s.path, k - 1);
    const std::string to = fmt::format("{}.{}", s.path, k);
    if (k == s.max_backups) std::remove(to.c_str());
    std::rename(from.c_str(), to.c_str());
  }
  if (s.max_backups == 0) std::remove(s.path.c_str());
  s.out = fopen(s.path.c_str(), "a");
  if (!s.out) {
    fprintf(stderr, "cannot reopen log file %s after rotating; logging to stdout\n", s.path.c_str());
    s.out = stdout;
    s.path.clear();
  }
  s.size = 0;
}

void flush_locked(Sink& s, std::unique_lock<std::mutex>& lock) {
  if (s.pending.empty()) return;
  std::string batch;
  batch.swap(s.pending);
  lock.unlock();
  {
    std::lock_guard file_lock(s.file_mu);
    fwrite(batch.data(), 1, batch.size(), s.out);
    fflush(s.out);
    s.size += static_cast<int64_t>(batch.size());
    if (!s.path.empty() && s.max_bytes > 0 && s.size >= s.max_bytes) rotate(s);
  }
  lock.lock();
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20) fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
        else out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

Level parse_level(std::string_view name, Level fallback) {
  if (name == "debug") return Level::Debug;
  if (name == "info") return Level::Info;
  if (name == "warn" || name == "warning") return Level::Warn;
  if (name == "error") return Level::Error;
  return fallback;
}

void init(const Options& options) {
  g_level.store(static_cast<int>(options.level));
  if (g_sink) return;
  auto* s = new Sink();
  s->json = options.json;
  s->out = stdout;
  if (!options.file.empty()) {
    s->out = fopen(options.file.c_str(), "a");
    if (!s->out) {
      fprintf(stderr, "cannot open log file %s; logging to stdout\n", options.file.c_str());
      s->out = stdout;
    } else {
      s->path = options.file;
      s->max_bytes = options.max_file_bytes;
      s->max_backups = std::max(0, options.max_backups);
      fseek(s->out, 0, SEEK_END);
      s->size = ftell(s->out);
    }
  }
  s->flusher = std::thread([s] {
    std::unique_lock lock(s->mu);
    while (!s->stop) {
      s->cv.wait_for(lock, kFlushInterval);
      flush_locked(*s, lock);
    }
    flush_locked(*s, lock);
  });
  g_sink = s;
}

void shutdown() {
  if (!g_sink) return;
  {
    std::lock_guard lock(g_sink->mu);
    g_sink->stop = true;
  }
  g_sink->cv.notify_all();
  g_sink->flusher.join();
  if (g_sink->out != stdout && g_sink->out != nullptr) fclose(g_sink->out);
  delete g_sink;
  g_sink = nullptr;
}

bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields) {
  thread_local std::string line;
  line.clear();
  bool json = g_sink ? g_sink->json : true;
  if (json) {
    line.append("{\"ts\":\"");
    append_timestamp(line);
    line.append("\",\"level\":\"").append(level_name(level)).append("\",\"component\":");
    append_json_string(line, component);
    line.append(",\"msg\":");
    append_json_string(line, message);
    for (const auto& f : fields) {
      line.push_back(',');
      append_json_string(line, f.key);
      line.push_back(':');
      append_value(line, f, true);
    }
    line.append("}\n");
  } else {
    append_timestamp(line);
    fmt::format_to(std::back_inserter(line), " {:5} {}: {}", level_name(level), component, message);
    for (const auto& f : fields) {
      line.push_back(' ');
      line.append(f.key).push_back('=');
      append_value(line, f, false);
    }
    line.push_back('\n');
  }
  if (!g_sink) {
    fwrite(line.data(), 1, line.size(), stderr);
    return;
  }
  std::unique_lock lock(g_sink->mu);
  g_sink->pending.append(line);
  if (g_sink->pending.size() > kMaxBuffered || level >= Level::Error) flush_locked(*g_sink, lock);
}

}  // namespace ondol::log

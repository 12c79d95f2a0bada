// Structured logging: one JSON object per line on stdout (or a file), with the component and,
// on the request path, the request id. Secrets never reach here: callers pass redacted values.
//
// Logging is off the hot path's critical section: lines are formatted on the calling thread into
// a thread-local buffer and appended to a shared buffer under a short lock; a background thread
// flushes every few milliseconds, so a burst of access-log lines costs no syscall per line.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace ondol::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

struct Field {
  std::string_view key;
  std::variant<std::string_view, int64_t, double, bool> value;

  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, int v) : key(k), value(int64_t{v}) {}
  Field(std::string_view k, int64_t v) : key(k), value(v) {}
  Field(std::string_view k, uint64_t v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
};

struct Options {
  Level level = Level::Info;
  std::string file;  // empty: stdout
  bool json = true;  // false: human-readable "LEVEL component: message k=v" lines
  // Size-based rotation of `file`: past max_file_bytes it becomes FILE.1 (FILE.1 becomes FILE.2,
  // ...; FILE.<max_backups> is dropped) and a new FILE starts. 0: never rotate.
  int64_t max_file_bytes = 0;
  int max_backups = 5;
};

// Starts the flusher thread. Safe to call once at startup; logging before init() writes
// synchronously to stderr so that early errors are never lost.
void init(const Options& options);
// Flushes what is buffered and stops the flusher; called at exit.
void shutdown();

bool enabled(Level level);
void write(Level level, std::string_view component, std::string_view message,
           std::initializer_list<Field> fields = {});

inline void debug(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::Debug)) write(Level::Debug, c, m, f);
}
inline void info(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::Info)) write(Level::Info, c, m, f);
}
inline void warn(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::Warn)) write(Level::Warn, c, m, f);
}
inline void error(std::string_view c, std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Error, c, m, f);
}

// Appends `s` to `out` as a JSON string literal (quotes included), escaping per RFC 8259.
void append_json_string(std::string& out, std::string_view s);

Level parse_level(std::string_view name, Level fallback);

}  // namespace ondol::log

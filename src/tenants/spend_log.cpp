#include "tenants/spend_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "common/log.h"

namespace ondol::tenants {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kComponent = "spend_log";
constexpr std::string_view kSegmentSuffix = ".seg";
constexpr int kNumFields = 14;

void append_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\\') out += "\\\\";
    else out.push_back(c);
  }
}

std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[++i];
      out.push_back(n == 't' ? '\t' : n == 'n' ? '\n' : n);
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

template <typename T>
bool parse_number(const std::string& s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::vector<fs::path> list_segments(const std::string& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == kSegmentSuffix) out.push_back(e.path());
  std::sort(out.begin(), out.end());  // names start with a zero-padded time and sequence
  return out;
}

}  // namespace

std::string encode_spend_record(const SpendRecord& r) {
  std::string out;
  const std::string_view texts[] = {r.id, r.request_id, r.key_hash, r.user_id,
                                    r.team_id, r.model, r.deployment};
  for (auto t : texts) {
    append_escaped(out, t);
    out.push_back('\t');
  }
  out += fmt::format("{}\t{}\t{:.17g}\t{:.17g}\t{}\t{}\t{}\n", r.prompt_tokens,
                     r.completion_tokens, r.cost, r.latency_ms, r.status, r.start_time_ms,
                     r.end_time_ms);
  return out;
}

std::optional<SpendRecord> decode_spend_record(std::string_view line) {
  std::vector<std::string> f;
  size_t begin = 0;
  while (begin <= line.size()) {
    size_t end = line.find('\t', begin);
    if (end == std::string_view::npos) end = line.size();
    f.push_back(unescape(line.substr(begin, end - begin)));
    begin = end + 1;
  }
  if (f.size() != kNumFields) return std::nullopt;
  SpendRecord r;
  r.id = f[0];
  r.request_id = f[1];
  r.key_hash = f[2];
  r.user_id = f[3];
  r.team_id = f[4];
  r.model = f[5];
  r.deployment = f[6];
  bool ok = parse_number(f[7], &r.prompt_tokens) && parse_number(f[8], &r.completion_tokens) &&
            parse_number(f[9], &r.cost) && parse_number(f[10], &r.latency_ms) &&
            parse_number(f[11], &r.status) && parse_number(f[12], &r.start_time_ms) &&
            parse_number(f[13], &r.end_time_ms);
  if (!ok || r.id.empty()) return std::nullopt;
  return r;
}

Result<std::unique_ptr<SpendLog>> SpendLog::start(std::unique_ptr<TenantStore> store,
                                                  SpendLogOptions options) {
  std::string dir = options.spool_dir;
  int fd = -1;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return make_error(fmt::format("spend log spool {}: {}", dir, ec.message()));
    fd = ::open((dir + "/lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return make_error(fmt::format("spend log spool {}: cannot open its lock", dir));
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    ::close(fd);
    fd = -1;
    log::warn(kComponent, "spool directory in use by another process; using a private one",
              {{"spool_dir", dir}});
    dir = fmt::format("{}-{}", options.spool_dir, ::getpid());
  }
  if (fd < 0) return make_error(fmt::format("spend log spool {}: locked", dir));
  options.spool_dir = dir;
  std::unique_ptr<SpendLog> log(new SpendLog(std::move(store), std::move(options), fd));
  log->thread_ = std::thread([p = log.get()] { p->run(); });
  return log;
}

SpendLog::SpendLog(std::unique_ptr<TenantStore> store, SpendLogOptions options, int lock_fd)
    : store_(std::move(store)), options_(std::move(options)), lock_fd_(lock_fd) {}

SpendLog::~SpendLog() {
  stop();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void SpendLog::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      if (!thread_.joinable()) return;
    }
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SpendLog::on_request_done(const gateway::Principal& principal,
                               const gateway::UsageReport& report) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  SpendRecord r;
  r.id = fmt::format("{:016x}{:016x}", rng(), rng());
  r.request_id = std::string(report.request_id);
  r.key_hash = principal.key_hash;
  r.user_id = principal.user_id;
  r.team_id = principal.team_id;
  r.model = std::string(report.model);
  r.deployment = std::string(report.deployment);
  r.prompt_tokens = report.prompt_tokens;
  r.completion_tokens = report.completion_tokens;
  r.cost = report.cost;
  r.latency_ms = report.latency_seconds * 1000;
  r.status = report.status;
  r.end_time_ms = now_ms();
  r.start_time_ms = r.end_time_ms - static_cast<int64_t>(r.latency_ms);
  record(std::move(r));
}

void SpendLog::record(SpendRecord r) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (pending_.size() >= options_.max_in_memory) {
      num_dropped_.fetch_add(1);
      if (auto* c = dropped_counter_.load()) c->inc();
      return;
    }
    pending_.push_back(std::move(r));
    wake = pending_.size() >= options_.max_batch;
  }
  if (wake) cv_.notify_one();
}

bool SpendLog::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  uint64_t target = cycles_done_ + 2;  // a whole cycle that started after this call
  flush_requested_ = true;
  cv_.notify_one();
  bool done = flushed_cv_.wait_for(lock, timeout, [&] { return cycles_done_ >= target; });
  return done && last_drain_complete_ && pending_.empty();
}

size_t SpendLog::num_segments() const { return list_segments(options_.spool_dir).size(); }

Status SpendLog::write_segment(const std::vector<SpendRecord>& batch) {
  std::string data;
  for (const auto& r : batch) data += encode_spend_record(r);
  std::string name = fmt::format("{}/{:020}-{:08}", options_.spool_dir, now_ms(), segment_seq_++);
  std::string tmp = name + ".tmp";
  int fd = ::open(tmp.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(fmt::format("cannot create {}", tmp));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return make_error(fmt::format("cannot write {}", tmp));
    }
    off += static_cast<size_t>(n);
  }
  ::fdatasync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), (name + std::string(kSegmentSuffix)).c_str()) != 0)
    return make_error(fmt::format("cannot rename {}", tmp));
  return Ok{};
}

bool SpendLog::drain() {
  for (const fs::path& segment : list_segments(options_.spool_dir)) {
    std::ifstream in(segment);
    std::vector<SpendRecord> batch;
    std::string line;
    while (std::getline(in, line)) {
      auto r = decode_spend_record(line);
      if (r) batch.push_back(std::move(*r));
      else log::warn(kComponent, "unreadable spool line skipped", {{"segment", segment.string()}});
    }
    auto written = store_->write_spend(batch);
    if (!written) {
      if (target_up_.exchange(false))
        log::error(kComponent, "database unavailable; spend records wait on disk",
                   {{"error", written.error().message}, {"spool_dir", options_.spool_dir}});
      return false;
    }
    if (!target_up_.exchange(true))
      log::info(kComponent, "database back; writing spooled spend records", {});
    num_written_.fetch_add(*written);
    if (auto* c = written_counter_.load()) c->inc(static_cast<double>(*written));
    std::error_code ec;
    fs::remove(segment, ec);
  }
  return true;
}

void SpendLog::run() {
  auto retry_delay = options_.retry_min;
  auto next_drain = std::chrono::steady_clock::now();
  // Left-over temporary files are segments that were never renamed: their records are also in
  // no database, but they may be partial; they were not acknowledged to anyone, so drop them.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.spool_dir, ec))
    if (e.path().extension() == ".tmp") fs::remove(e.path(), ec);
  for (;;) {
    std::vector<SpendRecord> batch;
    bool stopping;
    bool forced;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, options_.flush_interval, [this] {
        return stopping_ || flush_requested_ || pending_.size() >= options_.max_batch;
      });
      batch.swap(pending_);
      stopping = stopping_;
      forced = flush_requested_;
      flush_requested_ = false;
    }
    if (!batch.empty()) {
      if (Status st = write_segment(batch); !st) {
        log::error(kComponent, "cannot spool spend records; writing them directly",
                   {{"error", st.error().message}});
        auto written = store_->write_spend(batch);
        if (!written) {
          num_dropped_.fetch_add(static_cast<int64_t>(batch.size()));
          if (auto* c = dropped_counter_.load()) c->inc(static_cast<double>(batch.size()));
          log::error(kComponent, "spend records lost", {{"count", int64_t(batch.size())}});
        } else {
          num_written_.fetch_add(*written);
          if (auto* c = written_counter_.load()) c->inc(static_cast<double>(*written));
        }
      }
    }
    bool complete = true;
    auto now = std::chrono::steady_clock::now();
    if (now >= next_drain || forced || stopping) {
      complete = drain();
      if (complete) {
        retry_delay = options_.retry_min;
        next_drain = now;
      } else {
        next_drain = now + retry_delay;
        retry_delay = std::min(retry_delay * 2, options_.retry_max);
      }
    } else {
      complete = false;
    }
    {
      std::lock_guard lock(mu_);
      ++cycles_done_;
      last_drain_complete_ = complete;
    }
    flushed_cv_.notify_all();
    if (stopping) break;
  }
}

}  // namespace ondol::tenants

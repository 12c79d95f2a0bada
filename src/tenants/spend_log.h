// SpendLog: one record per finished request, written to the database in batches by a thread of
// its own, through a durable queue on disk, so that no record is lost while the database is
// away (a PostgreSQL restart) or when ondol stops before the database took them.
//
//   record()        any thread: appends to an in-memory list (a mutex, no I/O)
//   writer thread   every flush_interval (or max_batch records): the list becomes a segment file
//                   in spool_dir (written, fdatasync'ed, then renamed into place); then every
//                   segment, oldest first, is written in one transaction and deleted. A failure
//                   leaves the segment for the next try (backoff retry_min doubling to
//                   retry_max). A record stored twice (the commit landed but the delete did not)
//                   is skipped by its unique id.
//   start           segments left by a previous run are written first.
//   stop            the list is spooled, one last drain is tried, the rest waits on disk.
//
// The spool directory is locked (flock) by one process; a second process that finds it locked
// uses "<spool_dir>-<pid>" and says so.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics/registry.h"
#include "gateway/principal.h"
#include "tenants/records.h"
#include "tenants/store.h"

namespace ondol::tenants {

struct SpendLogOptions {
  std::string spool_dir;
  std::chrono::milliseconds flush_interval{200};
  size_t max_batch = 500;
  std::chrono::milliseconds retry_min{250};
  std::chrono::milliseconds retry_max{5000};
  size_t max_in_memory = 100000;  // beyond this, records are dropped (the disk is failing)
};

class SpendLog final : public gateway::UsageSink {
 public:
  static Result<std::unique_ptr<SpendLog>> start(std::unique_ptr<TenantStore> store,
                                                 SpendLogOptions options);
  ~SpendLog() override;  // stop(), if not done

  void record(SpendRecord r);
  // The proxy's report of a finished request → one record (UsageSink).
  void on_request_done(const gateway::Principal& principal,
                       const gateway::UsageReport& report) override;
  // Spools and drains now, waiting up to `timeout` until everything recorded before the call is
  // in the database. False when some remains (the database is away).
  bool flush(std::chrono::milliseconds timeout);
  void stop();

  bool target_up() const { return target_up_.load(); }
  // Also counted in these, when set (ondol_spend_log_records_total{outcome}).
  void set_counters(metrics::Counter* written, metrics::Counter* dropped) {
    written_counter_.store(written);
    dropped_counter_.store(dropped);
  }
  int64_t num_written() const { return num_written_.load(); }
  int64_t num_dropped() const { return num_dropped_.load(); }
  const std::string& spool_dir() const { return options_.spool_dir; }

  // For tests: segments waiting on disk.
  size_t num_segments() const;

 private:
  SpendLog(std::unique_ptr<TenantStore> store, SpendLogOptions options, int lock_fd);
  void run();
  Status write_segment(const std::vector<SpendRecord>& batch);
  bool drain();  // true when the spool is empty

  std::unique_ptr<TenantStore> store_;
  SpendLogOptions options_;
  int lock_fd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable flushed_cv_;
  std::atomic<metrics::Counter*> written_counter_{nullptr};
  std::atomic<metrics::Counter*> dropped_counter_{nullptr};
  std::vector<SpendRecord> pending_;  // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  bool flush_requested_ = false;      // guarded by mu_
  uint64_t cycles_done_ = 0;          // guarded by mu_: writer loops completed
  bool last_drain_complete_ = true;   // guarded by mu_
  uint64_t segment_seq_ = 0;
  std::atomic<bool> target_up_{true};
  std::atomic<int64_t> num_written_{0};
  std::atomic<int64_t> num_dropped_{0};
  std::thread thread_;
};

// A segment line <-> a record (tab-separated, with \t \n \\ escaped). Exposed for tests.
std::string encode_spend_record(const SpendRecord& r);
std::optional<SpendRecord> decode_spend_record(std::string_view line);

}  // namespace ondol::tenants

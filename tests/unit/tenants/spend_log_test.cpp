// The spend log's durability: records wait on disk while the database fails, survive a restart of
// the log itself, and reach the database exactly once.
#include "tenants/spend_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "postgres_server.h"
#include "tenants/sqlite_connection.h"

namespace ondol::tenants {
namespace {

using namespace std::chrono_literals;

// A connection whose database can be switched off (every statement fails, as when the server
// is gone). Commits fail too, so a batch in flight when it goes down is rolled back.
class FlakyConnection final : public SqlConnection {
 public:
  FlakyConnection(std::unique_ptr<SqlConnection> inner, std::atomic<bool>* down)
      : inner_(std::move(inner)), down_(down) {}
  using SqlConnection::exec;
  Result<SqlResult> exec(const std::string& sql, const std::vector<SqlValue>& params) override {
    if (down_->load()) {
      if (sql == "ROLLBACK") (void)inner_->exec(sql, params);
      return make_error("database down");
    }
    return inner_->exec(sql, params);
  }
  const char* dialect() const override { return inner_->dialect(); }

 private:
  std::unique_ptr<SqlConnection> inner_;
  std::atomic<bool>* down_;
};

struct Dir {
  Dir() {
    char tmpl[] = "/tmp/ondol-spend-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~Dir() { std::filesystem::remove_all(path); }
  std::string path;
};

SpendRecord record(int i) {
  return {.id = "id-" + std::to_string(i), .request_id = "req\t" + std::to_string(i),
          .key_hash = "k", .model = "m\nodd\\name", .prompt_tokens = i, .completion_tokens = 1,
          .cost = 0.001, .status = 200, .start_time_ms = i, .end_time_ms = i + 1};
}

TEST(SpendLog, EncodingRoundTripsAwkwardText) {
  SpendRecord r = record(7);
  auto back = decode_spend_record(encode_spend_record(r).substr(0, encode_spend_record(r).size() - 1));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->request_id, r.request_id);
  EXPECT_EQ(back->model, r.model);
  EXPECT_EQ(back->prompt_tokens, 7);
  EXPECT_DOUBLE_EQ(back->cost, 0.001);
  EXPECT_FALSE(decode_spend_record("garbage"));
}

TEST(SpendLog, NothingIsLostWhileTheDatabaseIsDown) {
  Dir dir;
  std::string db_path = dir.path + "/t.db";
  std::atomic<bool> down{false};
  {
    auto check = TenantStore::open(db_path);
    ASSERT_TRUE(check.ok() && (*check)->migrate().ok());
  }
  auto conn = SqliteConnection::open(db_path);
  ASSERT_TRUE(conn.ok());
  auto store = std::make_unique<TenantStore>(std::make_unique<FlakyConnection>(std::move(*conn), &down));
  auto log = SpendLog::start(std::move(store), {.spool_dir = dir.path + "/spool",
                                                .flush_interval = 5ms,
                                                .max_batch = 7,
                                                .retry_min = 5ms,
                                                .retry_max = 20ms});
  ASSERT_TRUE(log.ok()) << log.error().message;
  // The database goes away and comes back several times while records arrive.
  constexpr int kNumRecords = 2000;
  for (int i = 0; i < kNumRecords; ++i) {
    if (i % 300 == 100) down = true;
    if (i % 300 == 250) down = false;
    (*log)->record(record(i));
    if (i % 50 == 0) std::this_thread::sleep_for(1ms);
  }
  down = true;
  EXPECT_FALSE((*log)->flush(200ms));
  EXPECT_FALSE((*log)->target_up());
  EXPECT_GT((*log)->num_segments(), 0u);
  down = false;
  EXPECT_TRUE((*log)->flush(5s));
  EXPECT_TRUE((*log)->target_up());
  EXPECT_EQ((*log)->num_segments(), 0u);
  auto reader = TenantStore::open(db_path);
  EXPECT_EQ(*(*reader)->count_spend_logs(), kNumRecords);
  EXPECT_EQ((*log)->num_written(), kNumRecords);
}

TEST(SpendLog, RecordsSpooledAtStopAreWrittenByTheNextRun) {
  Dir dir;
  std::string db_path = dir.path + "/t.db";
  {
    auto s = TenantStore::open(db_path);
    ASSERT_TRUE((*s)->migrate().ok());
  }
  std::atomic<bool> down{true};
  {
    auto conn = SqliteConnection::open(db_path);
    auto store = std::make_unique<TenantStore>(std::make_unique<FlakyConnection>(std::move(*conn), &down));
    auto log = SpendLog::start(std::move(store), {.spool_dir = dir.path + "/spool"});
    for (int i = 0; i < 100; ++i) (*log)->record(record(i));
    (*log)->stop();  // the database is down: everything stays on disk
    EXPECT_GT((*log)->num_segments(), 0u);
  }
  auto store = TenantStore::open(db_path);
  auto log = SpendLog::start(std::move(*store), {.spool_dir = dir.path + "/spool"});
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE((*log)->flush(5s));
  auto reader = TenantStore::open(db_path);
  EXPECT_EQ(*(*reader)->count_spend_logs(), 100);
}

TEST(SpendLog, ASecondProcessGetsItsOwnSpool) {
  Dir dir;
  auto a = SpendLog::start(TenantStore::open(":memory:").value(), {.spool_dir = dir.path + "/spool"});
  auto b = SpendLog::start(TenantStore::open(":memory:").value(), {.spool_dir = dir.path + "/spool"});
  ASSERT_TRUE(a.ok() && b.ok());
  // flock is per open file description, so a second open in this process is refused too.
  EXPECT_NE((*a)->spool_dir(), (*b)->spool_dir());
}

TEST(SpendLog, PostgresKilledMidLoadLosesNothing) {
  testing::PostgresServer pg;
  ASSERT_TRUE(pg.start());
  Dir dir;
  {
    auto s = TenantStore::open(pg.url());
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_TRUE((*s)->migrate().ok());
  }
  auto store = TenantStore::open(pg.url());
  ASSERT_TRUE(store.ok());
  auto log = SpendLog::start(std::move(*store), {.spool_dir = dir.path + "/spool",
                                                 .flush_interval = 5ms,
                                                 .max_batch = 20,
                                                 .retry_min = 20ms,
                                                 .retry_max = 200ms});
  ASSERT_TRUE(log.ok());
  constexpr int kNumRecords = 3000;
  std::thread producer([&] {
    for (int i = 0; i < kNumRecords; ++i) {
      (*log)->record(record(i));
      if (i % 10 == 0) std::this_thread::sleep_for(1ms);
    }
  });
  std::this_thread::sleep_for(300ms);
  pg.kill();  // immediate shutdown: batches in flight are cut off
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(pg.start());
  producer.join();
  EXPECT_TRUE((*log)->flush(20s));
  auto reader = TenantStore::open(pg.url());
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(*(*reader)->count_spend_logs(), kNumRecords);
}

}  // namespace
}  // namespace ondol::tenants

#include "tenants/tenancy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "../limits/co_run.h"
#include "postgres_server.h"
#include "tenants/key_codec.h"

namespace ondol::tenants {
namespace {

using limits::testing::co_run;
using namespace std::chrono_literals;

TEST(BuildResolvedKey, CollectsKeyUserTeamAndTierLimits) {
  KeyRecord k{.key_hash = "h", .user_id = "u", .team_id = "t"};
  k.limits.rpm_limit = 5;
  k.limits.max_budget = 2;
  k.limits.spend = 1.25;
  UserRecord u{.user_id = "u", .tier = "free"};
  u.limits.tpm_limit = 100;
  TeamRecord t{.team_id = "t", .models = {"m1"}};
  Tiers tiers = {{"free", {.rpm = 10, .tpm = 1000, .tpd = 10000}}};
  ResolvedKey r = build_resolved_key(k, u, t, tiers);
  const gateway::Principal& p = *r.principal;
  EXPECT_EQ(p.kind, gateway::Principal::Kind::VirtualKey);
  EXPECT_EQ(p.tier, "free");  // the user's, as the key has none
  EXPECT_EQ(p.models, std::vector<std::string>{"m1"});  // the team's
  ASSERT_EQ(p.limits.size(), 3u);  // the team limits nothing: left out
  EXPECT_EQ(p.limits[0].scope, "key:h");
  EXPECT_EQ(p.limits[0].rpm, 5);
  EXPECT_DOUBLE_EQ(p.limits[0].spend, 1.25);
  EXPECT_EQ(p.limits[1].scope, "user:u");
  EXPECT_EQ(p.limits[1].tpm, 100);
  EXPECT_EQ(p.limits[2].scope, "tier:free");
  EXPECT_EQ(p.limits[2].tpd, 10000);
  EXPECT_FALSE(r.blocked);
  t.blocked = true;
  EXPECT_TRUE(build_resolved_key(k, u, t, tiers).blocked);
}

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/ondol-tenancy-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

Status add_key(Tenancy& t, boost::asio::io_context& io, KeyRecord k) {
  auto insert = [k](TenantStore& s) { return s.insert_key(k); };
  return co_run(io, t.run(std::move(insert)));
}

TEST(Tenancy, ResolvesChecksAndInvalidates) {
  TempDir dir;
  auto t = Tenancy::open({.database_url = dir.path + "/t.db",
                          .spool_dir = dir.path + "/spool",
                          .key_cache_ttl = 60s,
                          .change_poll = 0ms});
  ASSERT_TRUE(t.ok()) << t.error().message;
  boost::asio::io_context io;
  std::string key = generate_key();
  KeyRecord k{.key_hash = hash_key(key), .key_name = key_display(key)};
  ASSERT_TRUE(add_key(**t, io, k).ok());
  EXPECT_EQ(co_run(io, (*t)->resolve(key)).status, KeyStatus::Ok);
  EXPECT_EQ(co_run(io, (*t)->resolve("sk-unknown")).status, KeyStatus::Unknown);
  // Blocked in the database: the cache (60 s) still says Ok until invalidated.
  k.blocked = true;
  auto update = [k](TenantStore& s) { return s.update_key(k); };
  ASSERT_TRUE(*co_run(io, (*t)->run(std::move(update))));
  EXPECT_EQ(co_run(io, (*t)->resolve(key)).status, KeyStatus::Ok);
  (*t)->invalidate(k.key_hash);
  EXPECT_EQ(co_run(io, (*t)->resolve(key)).status, KeyStatus::Blocked);
  k.blocked = false;
  k.expires_at_ms = now_ms() - 1;
  auto expire = [k](TenantStore& s) { return s.update_key(k); };
  ASSERT_TRUE(*co_run(io, (*t)->run(std::move(expire))));
  (*t)->invalidate(k.key_hash);
  EXPECT_EQ(co_run(io, (*t)->resolve(key)).status, KeyStatus::Expired);
}

TEST(Tenancy, AKeyChangedByAnotherInstanceIsDroppedAtTheNextPoll) {
  TempDir dir;
  const std::string db = dir.path + "/shared.db";
  auto a = Tenancy::open({.database_url = db,
                          .spool_dir = dir.path + "/spool-a",
                          .key_cache_ttl = 60s,
                          .change_poll = 0ms});
  auto b = Tenancy::open({.database_url = db,
                          .spool_dir = dir.path + "/spool-b",
                          .key_cache_ttl = 60s,
                          .change_poll = 50ms});
  ASSERT_TRUE(a.ok() && b.ok());
  boost::asio::io_context io;
  std::string key = generate_key();
  KeyRecord k{.key_hash = hash_key(key), .key_name = key_display(key)};
  ASSERT_TRUE(add_key(**a, io, k).ok());
  EXPECT_EQ(co_run(io, (*b)->resolve(key)).status, KeyStatus::Ok);  // cached by b for 60 s
  k.blocked = true;
  auto block = [k](TenantStore& s) { return s.update_key(k); };
  ASSERT_TRUE(*co_run(io, (*a)->run(std::move(block))));  // on a, which b knows nothing of
  KeyStatus seen = KeyStatus::Ok;
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while (seen == KeyStatus::Ok && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    seen = co_run(io, (*b)->resolve(key)).status;
  }
  EXPECT_EQ(seen, KeyStatus::Blocked) << "b polls the change generation and drops its cache";
  auto deleted = [k](TenantStore& s) { return s.delete_key(k.key_hash); };
  ASSERT_EQ(*co_run(io, (*a)->run(std::move(deleted))), 1);
  deadline = std::chrono::steady_clock::now() + 3s;
  while (seen != KeyStatus::Unknown && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    seen = co_run(io, (*b)->resolve(key)).status;
  }
  EXPECT_EQ(seen, KeyStatus::Unknown);
}

TEST(Tenancy, SeenKeysSurviveADatabaseOutage) {
  testing::PostgresServer pg;
  ASSERT_TRUE(pg.start());
  TempDir dir;
  auto t = Tenancy::open({.database_url = pg.url(), .spool_dir = dir.path + "/spool",
                          .key_cache_ttl = 1ms});
  ASSERT_TRUE(t.ok()) << t.error().message;
  boost::asio::io_context io;
  std::string seen = generate_key();
  std::string unseen = generate_key();
  ASSERT_TRUE(add_key(**t, io, {.key_hash = hash_key(seen), .key_name = "a"}).ok());
  ASSERT_TRUE(add_key(**t, io, {.key_hash = hash_key(unseen), .key_name = "b"}).ok());
  EXPECT_EQ(co_run(io, (*t)->resolve(seen)).status, KeyStatus::Ok);
  pg.stop();
  std::this_thread::sleep_for(5ms);  // the cache entry is stale now
  EXPECT_EQ(co_run(io, (*t)->resolve(seen)).status, KeyStatus::Ok);
  EXPECT_EQ(co_run(io, (*t)->resolve(unseen)).status, KeyStatus::Unavailable);  // not a 401
  EXPECT_FALSE((*t)->db_up());
  EXPECT_FALSE(co_run(io, (*t)->check_db()));
  ASSERT_TRUE(pg.start());
  std::this_thread::sleep_for(1100ms);  // past the outage recheck interval
  EXPECT_TRUE(co_run(io, (*t)->check_db()));
  EXPECT_EQ(co_run(io, (*t)->resolve(unseen)).status, KeyStatus::Ok);
}

}  // namespace
}  // namespace ondol::tenants

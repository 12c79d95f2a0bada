// The store against SQLite (always) and a real PostgreSQL server.
#include "tenants/store.h"

#include <gtest/gtest.h>

#include "postgres_server.h"
#include "tenants/key_codec.h"

namespace ondol::tenants {
namespace {

// One server for the whole binary, stopped (and removed) at exit.
testing::PostgresServer* shared_postgres() {
  static std::unique_ptr<testing::PostgresServer> server = [] {
    auto s = std::make_unique<testing::PostgresServer>();
    if (!s->start()) s.reset();
    return s;
  }();
  return server.get();
}

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string url = ":memory:";
    if (GetParam() == "postgres") {
      auto* pg = shared_postgres();
      ASSERT_NE(pg, nullptr);
      url = pg->url();
    }
    auto s = TenantStore::open(url);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store = std::move(*s);
    ASSERT_TRUE(store->migrate().ok());
    for (const char* t : {"ondol_keys", "ondol_users", "ondol_teams", "ondol_spend_logs"})
      ASSERT_TRUE(store->connection().exec(std::string("DELETE FROM ") + t).ok());
  }
  std::unique_ptr<TenantStore> store;
};

KeyRecord sample_key(const std::string& key) {
  KeyRecord k;
  k.key_hash = hash_key(key);
  k.key_name = key_display(key);
  k.key_alias = "alias-" + key;
  k.models = {"m1", "m \"2\""};
  k.limits.rpm_limit = 10;
  k.limits.tpd_limit = 5'000'000'000;  // beyond 32 bits
  k.limits.max_budget = 1.5;
  k.metadata = R"({"team":"x"})";
  k.expires_at_ms = 1'900'000'000'000;
  k.created_at_ms = k.updated_at_ms = 1'800'000'000'000;
  return k;
}

TEST_P(StoreTest, KeysRoundTrip) {
  KeyRecord k = sample_key("sk-one");
  ASSERT_TRUE(store->insert_key(k).ok());
  EXPECT_FALSE(store->insert_key(k).ok());  // the hash is the primary key
  auto found = store->find_key(k.key_hash);
  ASSERT_TRUE(found.ok() && *found);
  const KeyRecord& f = **found;
  EXPECT_EQ(f.key_name, k.key_name);
  EXPECT_EQ(f.key_alias, "alias-sk-one");
  EXPECT_EQ(f.models, k.models);
  EXPECT_EQ(f.limits.rpm_limit, 10);
  EXPECT_FALSE(f.limits.tpm_limit);
  EXPECT_EQ(f.limits.tpd_limit, 5'000'000'000);
  EXPECT_DOUBLE_EQ(*f.limits.max_budget, 1.5);
  EXPECT_EQ(f.expires_at_ms, 1'900'000'000'000);
  EXPECT_EQ(f.metadata, R"({"team":"x"})");
  EXPECT_FALSE(f.blocked);
  auto missing = store->find_key(hash_key("sk-none"));
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(*missing);
  auto by_alias = store->find_key_by_alias("alias-sk-one");
  ASSERT_TRUE(by_alias.ok() && *by_alias);
}

TEST_P(StoreTest, UpdateListDelete) {
  KeyRecord a = sample_key("sk-a");
  a.user_id = "u1";
  KeyRecord b = sample_key("sk-b");
  b.created_at_ms += 1;
  ASSERT_TRUE(store->insert_key(a).ok());
  ASSERT_TRUE(store->insert_key(b).ok());
  a.blocked = true;
  a.limits.rpm_limit.reset();
  a.models.clear();
  ASSERT_TRUE(*store->update_key(a));
  auto f = store->find_key(a.key_hash);
  EXPECT_TRUE((*f)->blocked);
  EXPECT_FALSE((*f)->limits.rpm_limit);
  EXPECT_TRUE((*f)->models.empty());
  EXPECT_EQ(store->list_keys({})->size(), 2u);
  EXPECT_EQ(store->list_keys({.user_id = "u1"})->size(), 1u);
  EXPECT_EQ(store->list_keys({.page = 2, .size = 1})->at(0).key_hash, b.key_hash);
  EXPECT_EQ(*store->delete_key(a.key_hash), 1);
  EXPECT_EQ(*store->delete_key(a.key_hash), 0);
  EXPECT_FALSE(*store->update_key(a));
}

TEST_P(StoreTest, UsersAndTeams) {
  UserRecord u{.user_id = "u1", .user_email = "u@x", .team_id = "t1", .tier = "pro"};
  u.limits.tpm_limit = 100;
  ASSERT_TRUE(store->insert_user(u).ok());
  EXPECT_FALSE(store->insert_user(u).ok());
  auto fu = store->find_user("u1");
  ASSERT_TRUE(fu.ok() && *fu);
  EXPECT_EQ((*fu)->tier, "pro");
  EXPECT_EQ((*fu)->limits.tpm_limit, 100);
  TeamRecord t{.team_id = "t1", .team_alias = "team one", .models = {"m1"}};
  t.blocked = true;
  ASSERT_TRUE(store->insert_team(t).ok());
  auto ft = store->find_team("t1");
  ASSERT_TRUE(ft.ok() && *ft);
  EXPECT_TRUE((*ft)->blocked);
  EXPECT_EQ((*ft)->models, std::vector<std::string>{"m1"});
}

SpendRecord spend(std::string id, std::string key_hash, double cost) {
  return {.id = std::move(id), .request_id = "r", .key_hash = std::move(key_hash),
          .user_id = "u1", .team_id = "t1", .model = "m1", .deployment = "d1",
          .prompt_tokens = 3, .completion_tokens = 4, .cost = cost, .latency_ms = 1.5,
          .status = 200, .start_time_ms = now_ms(), .end_time_ms = now_ms()};
}

TEST_P(StoreTest, SpendIsStoredOnceAndAddsUpOnKeyUserTeam) {
  KeyRecord k = sample_key("sk-s");
  ASSERT_TRUE(store->insert_key(k).ok());
  ASSERT_TRUE(store->insert_user({.user_id = "u1"}).ok());
  ASSERT_TRUE(store->insert_team({.team_id = "t1"}).ok());
  std::vector<SpendRecord> batch = {spend("a", k.key_hash, 0.25), spend("b", k.key_hash, 0.5)};
  EXPECT_EQ(*store->write_spend(batch), 2);
  EXPECT_EQ(*store->write_spend(batch), 0);  // a batch written twice is stored once
  EXPECT_DOUBLE_EQ((*store->find_key(k.key_hash))->limits.spend, 0.75);
  EXPECT_DOUBLE_EQ((*store->find_user("u1"))->limits.spend, 0.75);
  EXPECT_DOUBLE_EQ((*store->find_team("t1"))->limits.spend, 0.75);
  auto logs = store->spend_logs({.key_hash = k.key_hash});
  ASSERT_TRUE(logs.ok());
  ASSERT_EQ(logs->size(), 2u);
  EXPECT_EQ((*logs)[0].prompt_tokens, 3);
  EXPECT_EQ((*logs)[0].deployment, "d1");
  EXPECT_EQ(*store->count_spend_logs(), 2);
}

TEST_P(StoreTest, SpendResetsWhenTheBudgetPeriodHasEnded) {
  KeyRecord k = sample_key("sk-r");
  k.limits.budget_duration_s = 60;
  k.limits.budget_reset_at_ms = now_ms() - 1;  // the period just ended
  k.limits.spend = 10;
  ASSERT_TRUE(store->insert_key(k).ok());
  EXPECT_DOUBLE_EQ(current_spend((*store->find_key(k.key_hash))->limits, now_ms()), 0);
  std::vector<SpendRecord> batch = {spend("x", k.key_hash, 0.5)};
  ASSERT_TRUE(store->write_spend(batch).ok());
  auto f = *store->find_key(k.key_hash);
  EXPECT_DOUBLE_EQ(f->limits.spend, 0.5);
  EXPECT_GT(*f->limits.budget_reset_at_ms, now_ms() + 50'000);
}

INSTANTIATE_TEST_SUITE_P(Databases, StoreTest, ::testing::Values("sqlite", "postgres"));

}  // namespace
}  // namespace ondol::tenants

#include "tenants/migrations.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tenants/sqlite_connection.h"

namespace ondol::tenants {
namespace {

std::unique_ptr<SqliteConnection> memory_db() {
  auto db = SqliteConnection::open(":memory:");
  EXPECT_TRUE(db.ok());
  return std::move(*db);
}

int64_t count(SqlConnection& db, const std::string& sql) {
  auto r = db.exec(sql);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return std::stoll(*r->rows[0][0]);
}

TEST(Migrations, ApplyOnceAndAreIdempotent) {
  auto db = memory_db();
  auto v1 = migrate(*db);
  ASSERT_TRUE(v1.ok()) << v1.error().message;
  EXPECT_EQ(*v1, schema_migrations().back().version);
  auto v2 = migrate(*db);
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  EXPECT_EQ(*v2, *v1);
  EXPECT_EQ(count(*db, "SELECT COUNT(*) FROM ondol_schema_version"),
            static_cast<int64_t>(schema_migrations().size()));
  EXPECT_EQ(count(*db, "SELECT COUNT(*) FROM ondol_keys"), 0);
}

TEST(Migrations, NewVersionsApplyInOrderAndOnlyOnce) {
  auto db = memory_db();
  std::vector<Migration> list = {{1, "one", {"CREATE TABLE t (a INTEGER)"}}};
  ASSERT_EQ(*migrate(*db, list), 1);
  list.push_back({2, "two", {"INSERT INTO t (a) VALUES (7)"}});
  ASSERT_EQ(*migrate(*db, list), 2);
  ASSERT_EQ(*migrate(*db, list), 2);
  EXPECT_EQ(count(*db, "SELECT COUNT(*) FROM t"), 1);  // version 2 ran once
}

TEST(Migrations, AFailedMigrationLeavesNoTrace) {
  auto db = memory_db();
  std::vector<Migration> list = {
      {1, "broken", {"CREATE TABLE t (a INTEGER)", "THIS IS NOT SQL"}}};
  auto r = migrate(*db, list);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("schema migration 1"), std::string::npos);
  EXPECT_EQ(count(*db, "SELECT COUNT(*) FROM ondol_schema_version"), 0);
  EXPECT_FALSE(db->exec("SELECT * FROM t").ok());  // rolled back with the rest
}

TEST(Migrations, ADatabaseNewerThanTheBinaryIsRefused) {
  auto db = memory_db();
  ASSERT_TRUE(migrate(*db).ok());
  ASSERT_TRUE(db->exec("INSERT INTO ondol_schema_version VALUES (999, 'future', 0)").ok());
  auto r = migrate(*db);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("newer"), std::string::npos);
}

TEST(Migrations, TwoConnectionsToOneFileMigrateOnce) {
  auto dir = std::filesystem::temp_directory_path() / ("ondol-mig-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto a = SqliteConnection::open((dir / "t.db").string());
  auto b = SqliteConnection::open((dir / "t.db").string());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(migrate(**a).ok());
  ASSERT_TRUE(migrate(**b).ok());
  EXPECT_EQ(count(**b, "SELECT COUNT(*) FROM ondol_schema_version"),
            static_cast<int64_t>(schema_migrations().size()));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ondol::tenants

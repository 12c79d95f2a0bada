#include "tenants/sqlite_connection.h"

#include <sqlite3.h>

#include <filesystem>

#include <fmt/format.h>

namespace ondol::tenants {

namespace {

constexpr int kBusyTimeoutMs = 5000;  // another process (or instance) holds the write lock

// "$12" -> "?12": SQLite's numbered parameters keep PostgreSQL's numbering.
std::string rewrite_placeholders(const std::string& sql) {
  std::string out = sql;
  for (size_t i = 0; i + 1 < out.size(); ++i)
    if (out[i] == '$' && out[i + 1] >= '0' && out[i + 1] <= '9') out[i] = '?';
  return out;
}

}  // namespace

SqlValue sql_double(std::optional<double> v) {
  return v ? SqlValue(fmt::format("{:.17g}", *v)) : SqlValue();
}

Result<std::unique_ptr<SqliteConnection>> SqliteConnection::open(const std::string& path) {
  if (path != ":memory:") {
    std::error_code ec;
    auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return make_error(fmt::format("cannot open SQLite database {}: {}", path, message));
  }
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  std::unique_ptr<SqliteConnection> conn(new SqliteConnection(db));
  if (path != ":memory:") {
    auto wal = conn->exec("PRAGMA journal_mode=WAL");
    if (!wal) return wal.error();
  }
  auto sync = conn->exec("PRAGMA synchronous=NORMAL");
  if (!sync) return sync.error();
  return conn;
}

SqliteConnection::~SqliteConnection() { sqlite3_close(db_); }

Result<SqlResult> SqliteConnection::exec(const std::string& sql,
                                         const std::vector<SqlValue>& params) {
  std::lock_guard lock(mu_);
  std::string text = rewrite_placeholders(sql);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, text.c_str(), static_cast<int>(text.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return make_error(fmt::format("sqlite: {}", sqlite3_errmsg(db_)));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    int index = static_cast<int>(i + 1);
    if (params[i]) {
      sqlite3_bind_text(stmt, index, params[i]->data(), static_cast<int>(params[i]->size()),
                        SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(stmt, index);
    }
  }
  SqlResult result;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    int n = sqlite3_column_count(stmt);
    SqlRow row(n);
    for (int c = 0; c < n; ++c) {
      if (sqlite3_column_type(stmt, c) == SQLITE_NULL) continue;
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
      row[c] = std::string(p, sqlite3_column_bytes(stmt, c));
    }
    result.rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) {
    std::string message = sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    return make_error(fmt::format("sqlite: {}", message));
  }
  result.affected = sqlite3_changes(db_);
  sqlite3_finalize(stmt);
  return result;
}

}  // namespace ondol::tenants

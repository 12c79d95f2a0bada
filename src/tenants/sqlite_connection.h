// SqlConnection on one SQLite file (WAL, busy timeout), shared by the threads of one process
// under a mutex.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "tenants/sql_connection.h"

struct sqlite3;

namespace ondol::tenants {

class SqliteConnection final : public SqlConnection {
 public:
  // Creates the file (and its directory) if missing. ":memory:" gives a private database.
  static Result<std::unique_ptr<SqliteConnection>> open(const std::string& path);
  ~SqliteConnection() override;

  using SqlConnection::exec;
  Result<SqlResult> exec(const std::string& sql, const std::vector<SqlValue>& params) override;
  const char* dialect() const override { return "sqlite"; }

 private:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace ondol::tenants

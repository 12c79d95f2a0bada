// SqlConnection on PostgreSQL through libpq: one connection, reconnected on the next call after
// it breaks (a server restart), with a connect timeout so that no call blocks for long while the
// server is away. Not thread-safe: one per thread that talks to the database.
#pragma once

#include <memory>
#include <string>

#include "tenants/sql_connection.h"

struct pg_conn;

namespace ondol::tenants {

class PostgresConnection final : public SqlConnection {
 public:
  // url: "postgresql://user:password@host:port/db" (or any libpq conninfo). Fails if the first
  // connection fails.
  static Result<std::unique_ptr<PostgresConnection>> open(const std::string& url);
  ~PostgresConnection() override;

  using SqlConnection::exec;
  Result<SqlResult> exec(const std::string& sql, const std::vector<SqlValue>& params) override;
  const char* dialect() const override { return "postgres"; }

 private:
  explicit PostgresConnection(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  Status connect();

  std::string conninfo_;
  pg_conn* conn_ = nullptr;
};

}  // namespace ondol::tenants

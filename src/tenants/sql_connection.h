// SqlConnection: the few things the tenant store needs from a SQL database, so that one store
// (store.cpp) runs on SQLite and on PostgreSQL. Statements use PostgreSQL's `$1` placeholders
// (the SQLite side rewrites them to `?1`); every parameter and every result cell travels as text
// or NULL, which both databases convert by the column's type. Blocking: call it from the
// database thread, never from an I/O thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace ondol::tenants {

using SqlValue = std::optional<std::string>;  // nullopt: NULL
using SqlRow = std::vector<SqlValue>;

struct SqlResult {
  std::vector<SqlRow> rows;
  int64_t affected = 0;  // rows changed by INSERT/UPDATE/DELETE
};

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  // One statement. An error carries the database's message; a lost connection is retried on the
  // next call (PostgreSQL reconnects), so callers only report.
  virtual Result<SqlResult> exec(const std::string& sql, const std::vector<SqlValue>& params) = 0;
  Result<SqlResult> exec(const std::string& sql) { return exec(sql, {}); }
  // "sqlite" or "postgres": the migration runner takes a lock the dialect's way.
  virtual const char* dialect() const = 0;
};

// Helpers for building parameters.
inline SqlValue sql_int(std::optional<int64_t> v) {
  return v ? SqlValue(std::to_string(*v)) : SqlValue();
}
SqlValue sql_double(std::optional<double> v);
inline SqlValue sql_text(std::string v) { return SqlValue(std::move(v)); }

}  // namespace ondol::tenants

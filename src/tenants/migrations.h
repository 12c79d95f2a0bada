// Versioned schema migrations. Each migration is a list of statements that runs once, in one
// transaction, and records its version in ondol_schema_version; running them again is a no-op.
// Several instances starting at once against one PostgreSQL take an advisory lock, so exactly one
// applies each version. A database newer than this binary (a version it does not know) is refused.
#pragma once

#include <string>
#include <vector>

#include "tenants/sql_connection.h"

namespace ondol::tenants {

struct Migration {
  int version;
  std::string description;
  std::vector<std::string> statements;  // portable SQL: runs on SQLite and PostgreSQL
};

const std::vector<Migration>& schema_migrations();

// Applies what is missing; returns the schema version now in place.
Result<int> migrate(SqlConnection& db, const std::vector<Migration>& migrations);
inline Result<int> migrate(SqlConnection& db) { return migrate(db, schema_migrations()); }

}  // namespace ondol::tenants

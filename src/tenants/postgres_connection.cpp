#include "tenants/postgres_connection.h"

#include <libpq-fe.h>

#include <fmt/format.h>

namespace ondol::tenants {

namespace {

constexpr int kConnectTimeoutSeconds = 2;  // how long one call may wait for an absent server

std::string with_timeout(const std::string& url) {
  if (url.find("connect_timeout") != std::string::npos) return url;
  bool is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
  if (!is_url) return fmt::format("{} connect_timeout={}", url, kConnectTimeoutSeconds);
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  return fmt::format("{}{}connect_timeout={}", url, sep, kConnectTimeoutSeconds);
}

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Result<std::unique_ptr<PostgresConnection>> PostgresConnection::open(const std::string& url) {
  std::unique_ptr<PostgresConnection> conn(new PostgresConnection(with_timeout(url)));
  if (Status st = conn->connect(); !st) return st.error();
  return conn;
}

PostgresConnection::~PostgresConnection() {
  if (conn_) PQfinish(conn_);
}

Status PostgresConnection::connect() {
  if (conn_) PQfinish(conn_);
  conn_ = PQconnectdb(conninfo_.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = trimmed(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    return make_error(fmt::format("postgres: {}", message));
  }
  PGresult* r = PQexec(conn_, "SET client_min_messages = warning");
  PQclear(r);
  return Ok{};
}

Result<SqlResult> PostgresConnection::exec(const std::string& sql,
                                           const std::vector<SqlValue>& params) {
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    if (Status st = connect(); !st) return st.error();
  }
  std::vector<const char*> values(params.size());
  for (size_t i = 0; i < params.size(); ++i) values[i] = params[i] ? params[i]->c_str() : nullptr;
  PGresult* r = PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
  ExecStatusType status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string message = trimmed(PQresultErrorMessage(r));
    PQclear(r);
    if (PQstatus(conn_) != CONNECTION_OK) {  // the server went away: reconnect next time
      PQfinish(conn_);
      conn_ = nullptr;
    }
    return make_error(fmt::format("postgres: {}", message.empty() ? "connection lost" : message));
  }
  SqlResult result;
  int n_rows = PQntuples(r);
  int n_cols = PQnfields(r);
  result.rows.reserve(n_rows);
  for (int i = 0; i < n_rows; ++i) {
    SqlRow row(n_cols);
    for (int c = 0; c < n_cols; ++c)
      if (!PQgetisnull(r, i, c)) row[c] = std::string(PQgetvalue(r, i, c), PQgetlength(r, i, c));
    result.rows.push_back(std::move(row));
  }
  const char* tuples = PQcmdTuples(r);
  result.affected = tuples && *tuples ? std::atoll(tuples) : 0;
  PQclear(r);
  return result;
}

}  // namespace ondol::tenants

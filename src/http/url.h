// Upstream addresses: "http://host:port/prefix" parsed once at config time.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace ondol::http {

struct Url {
  bool tls = false;
  std::string host;
  std::string port;         // decimal; defaulted from the scheme
  std::string path_prefix;  // "/v1" in "http://h:8000/v1"; no trailing slash; may be empty

  // "http://127.0.0.1:8001" — identifies a connection pool.
  std::string origin() const;
};

Result<Url> parse_url(std::string_view text);

}  // namespace ondol::http

// The admin API of tenancy, with LiteLLM's paths and fields: /key/generate, /key/info,
// /key/update, /key/delete, /key/list, /key/block, /key/unblock, /user/new, /user/info,
// /user/update, /team/new, /team/info, /team/update, /team/block, /team/unblock, /spend/logs. JSON
// in, store calls on the database thread, JSON out. The caller (Gateway::handle) has already
// checked that the principal is an admin, or a virtual key asking for /key/info (`own_key_hash`
// set: it may read its own key's info only).
#pragma once

#include <utility>  // before asio/awaitable.hpp (Boost 1.74 + GCC 12)

#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "http/exchange.h"
#include "tenants/tenancy.h"

namespace ondol::gateway {

bool is_tenant_api_path(std::string_view path);

boost::asio::awaitable<void> handle_tenant_api(tenants::Tenancy& tenancy, http::Exchange& ex,
                                               std::string_view path,
                                               std::string own_key_hash = {});

// "30s", "10m", "24h", "30d", "2w", "1mo" (30 days) or a number of seconds → seconds.
std::optional<int64_t> parse_duration_seconds(std::string_view text);

}  // namespace ondol::gateway

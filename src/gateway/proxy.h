// The proxy: one OpenAI API request from parse to the last byte. Picks deployments through the
// AttemptPlanner, relays the response as it arrives (streams chunk by chunk), retries and falls
// back while nothing has reached the client, and reports what happened to metrics and the log.
#pragma once

#include "gateway/gateway.h"
#include "gateway/principal.h"
#include "openai/request.h"

namespace ondol::gateway {

class Policies;

boost::asio::awaitable<void> proxy_request(GatewayMetrics& metrics, Policies& policies,
                                           std::shared_ptr<const RouteTable> table,
                                           openai::Endpoint endpoint, http::Exchange& ex,
                                           std::string_view request_id,
                                           const Principal& principal);

}  // namespace ondol::gateway

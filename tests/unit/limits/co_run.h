// Runs one awaitable to completion on an io_context from a plain test body.
#pragma once

#include <utility>  // before Asio's awaitable.hpp, which uses std::exchange (GCC 12)

#include <boost/asio.hpp>
#include <exception>
#include <optional>

namespace ondol::limits::testing {

// co_spawn of an awaitable<T> needs a default-constructible T in Boost 1.74; Result<T> is not.
template <typename T>
boost::asio::awaitable<void> store_into(boost::asio::awaitable<T> op, std::optional<T>* out) {
  T v = co_await std::move(op);
  out->emplace(std::move(v));
}

template <typename T>
T co_run(boost::asio::io_context& io, boost::asio::awaitable<T> op) {
  std::optional<T> out;
  std::exception_ptr error;
  boost::asio::co_spawn(io, store_into(std::move(op), &out),
                        [&](std::exception_ptr e) { error = e; });
  io.restart();
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

inline void co_run(boost::asio::io_context& io, boost::asio::awaitable<void> op) {
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(op), [&](std::exception_ptr e) { error = e; });
  io.restart();
  io.run();
  if (error) std::rethrow_exception(error);
}

}  // namespace ondol::limits::testing

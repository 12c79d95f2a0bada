// Admission: slots, a bounded FIFO queue, timeouts, permits released on destruction, and
// wake-ups across threads.
#include "limits/admission.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <future>
#include <thread>

namespace ondol::limits {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Admission, AdmitsUpToMaxParallelAndRefusesAtOnceWithoutAQueue) {
  Admission admission({.max_parallel = 2, .max_queue = 0, .queue_timeout = 1s});
  AdmissionResult a = admission.try_acquire();
  AdmissionResult b = admission.try_acquire();
  ASSERT_TRUE(a.admitted());
  ASSERT_TRUE(b.admitted());
  AdmissionResult c = admission.try_acquire();
  EXPECT_EQ(c.outcome, AdmissionOutcome::QueueFull);
  EXPECT_FALSE(c.permit.valid());
  EXPECT_EQ(c.retry_after_seconds, 1);
  EXPECT_EQ(admission.in_flight(), 2);
  a.permit.release();
  EXPECT_EQ(admission.in_flight(), 1);
  a.permit.release();  // twice is once
  EXPECT_EQ(admission.in_flight(), 1);
  {
    Permit moved = std::move(b.permit);
    EXPECT_FALSE(b.permit.valid());
    EXPECT_EQ(admission.in_flight(), 1);
  }
  EXPECT_EQ(admission.in_flight(), 0);
}

TEST(Admission, UnlimitedAdmitsEverything) {
  Admission admission({.max_parallel = 0});
  std::vector<AdmissionResult> held;
  for (int i = 0; i < 100; ++i) held.push_back(admission.try_acquire());
  for (auto& r : held) EXPECT_TRUE(r.admitted());
  held.clear();
  EXPECT_EQ(admission.in_flight(), 0);
}

TEST(Admission, FullQueueRefusesAtOnceAndWaitersGetSlotsInFifoOrder) {
  asio::io_context io;
  Admission admission({.max_parallel = 1, .max_queue = 4, .queue_timeout = 10s});
  AdmissionResult first = admission.try_acquire();
  ASSERT_TRUE(first.admitted());
  std::vector<int> order;
  int refused = 0;
  Clock::duration refusal_took{};
  for (int i = 0; i < 5; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          const auto start = Clock::now();
          AdmissionResult r = co_await admission.acquire();
          if (!r.admitted()) {
            EXPECT_EQ(r.outcome, AdmissionOutcome::QueueFull);
            refusal_took = Clock::now() - start;
            ++refused;
            co_return;
          }
          order.push_back(i);
          auto executor = co_await asio::this_coro::executor;
          asio::steady_timer t(executor, 2ms);
          co_await t.async_wait(asio::use_awaitable);
        },
        asio::detached);
  }
  io.poll();  // four wait in the queue; the fifth is refused without waiting
  EXPECT_EQ(admission.queued(), 4);
  EXPECT_EQ(refused, 1);
  EXPECT_LT(refusal_took, 50ms);
  first.permit.release();  // the slot passes to the oldest waiter, and on down the queue
  io.run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(admission.in_flight(), 0);
  EXPECT_EQ(admission.queued(), 0);
}

TEST(Admission, QueueTimeoutRefusesWithRetryAfter) {
  asio::io_context io;
  Admission admission({.max_parallel = 1, .max_queue = 1, .queue_timeout = 60ms});
  AdmissionResult held = admission.try_acquire();
  std::optional<AdmissionResult> result;
  const auto start = Clock::now();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        AdmissionResult r = co_await admission.acquire();
        result = std::move(r);
      },
      asio::detached);
  io.run();
  const auto took = Clock::now() - start;
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->outcome, AdmissionOutcome::QueueTimeout);
  EXPECT_EQ(result->retry_after_seconds, 1);
  EXPECT_GE(took, 60ms);
  EXPECT_LT(took, 2s);
  EXPECT_GE(result->waited, 60ms);
  EXPECT_EQ(admission.queued(), 0);
  EXPECT_EQ(admission.in_flight(), 1);
  EXPECT_STREQ(to_string(result->outcome), "queue_timeout");
}

TEST(Admission, ReleaseOnAnotherThreadWakesTheWaiter) {
  Admission admission({.max_parallel = 1, .max_queue = 1, .queue_timeout = 10s});
  AdmissionResult held = admission.try_acquire();
  asio::io_context io;
  std::promise<AdmissionResult> got;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        AdmissionResult r = co_await admission.acquire();
        got.set_value(std::move(r));
      },
      asio::detached);
  std::thread waiter([&] { io.run(); });
  while (admission.queued() == 0) std::this_thread::sleep_for(1ms);
  const auto start = Clock::now();
  held.permit.release();
  AdmissionResult r = got.get_future().get();
  EXPECT_TRUE(r.admitted());
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(admission.in_flight(), 1);  // the slot passed on, not freed
  r.permit.release();
  waiter.join();
  EXPECT_EQ(admission.in_flight(), 0);
}

TEST(Admission, AWaiterWhoseCoroutineIsDestroyedGivesItsPlaceBack) {
  Admission admission({.max_parallel = 1, .max_queue = 1, .queue_timeout = 10s});
  AdmissionResult held = admission.try_acquire();
  {
    asio::io_context io;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          AdmissionResult r = co_await admission.acquire();
          ADD_FAILURE() << "the waiter should never resume";
        },
        asio::detached);
    io.poll();
    EXPECT_EQ(admission.queued(), 1);
  }  // the io_context goes away with the suspended coroutine
  EXPECT_EQ(admission.queued(), 0);
  held.permit.release();
  EXPECT_EQ(admission.in_flight(), 0);
  EXPECT_TRUE(admission.try_acquire().admitted());
}

}  // namespace
}  // namespace ondol::limits

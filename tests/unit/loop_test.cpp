#include "gateway/loop.hpp"

#include <gtest/gtest.h>

#include <array>
#include <thread>

namespace flare::gateway {
namespace {

// What the committer and the pool do: hand work to a loop from threads of their own. The loop's
// state is touched without a lock because only the loop's thread runs what was posted (the
// sanitizer stage runs this under ThreadSanitizer).
TEST(Mailbox, WorkPostedFromOtherThreadsRunsOnTheLoopInEachSendersOrder) {
  constexpr int kSenders = 4;
  constexpr int kEach = 20'000;
  boost::asio::io_context io(1);
  Mailbox mailbox(io);
  auto guard = boost::asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });

  std::array<int, kSenders> next{};  // the loop's alone
  int in_order = 0;
  int elsewhere = 0;
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < kEach; ++i) {
        mailbox.post([&, s, i] {
          if (std::this_thread::get_id() != loop.get_id()) ++elsewhere;
          if (next[s] == i) ++in_order;
          next[s] = i + 1;
        });
      }
    });
  }
  for (auto& t : senders) t.join();
  mailbox.post([&] { guard.reset(); });
  loop.join();

  EXPECT_EQ(in_order, kSenders * kEach);
  EXPECT_EQ(elsewhere, 0);
}

TEST(Mailbox, ABurstCostsTheLoopOneWakeUp) {
  boost::asio::io_context io(1);
  Mailbox mailbox(io);
  int ran = 0;
  for (int i = 0; i < 1000; ++i) mailbox.post([&] { ++ran; });
  // run() counts the handlers it ran: one drain for the thousand items.
  EXPECT_EQ(io.run(), 1u);
  EXPECT_EQ(ran, 1000);
}

}  // namespace
}  // namespace flare::gateway

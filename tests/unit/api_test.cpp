#include "gateway/api.hpp"

#include <gtest/gtest.h>

#include "jobs/backoff.hpp"

namespace flare::gateway {
namespace {

TEST(Backoff, ExponentialWithFullJitterUpToTheCap) {
  using std::chrono::milliseconds;
  EXPECT_EQ(jobs::backoff(1, 1000, 3'600'000, 0.0), milliseconds(0));
  EXPECT_EQ(jobs::backoff(1, 1000, 3'600'000, 0.9999999), milliseconds(1000));
  EXPECT_EQ(jobs::backoff(3, 1000, 3'600'000, 0.9999999), milliseconds(4000));
  EXPECT_EQ(jobs::backoff(3, 1000, 3'600'000, 0.5), milliseconds(2000));
  EXPECT_EQ(jobs::backoff(30, 1000, 3'600'000, 0.9999999), milliseconds(3'600'000));
  EXPECT_EQ(jobs::backoff(1000, 1000, 3'600'000, 0.9999999), milliseconds(3'600'000));
}

}  // namespace
}  // namespace flare::gateway

#include "gateway/api.hpp"

#include <gtest/gtest.h>

#include "jobs/backoff.hpp"

namespace flare::gateway {
namespace {

TEST(Rfc3339, ParsesOffsetsAndFractions) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("2026-11-27T07:30:00Z"), 1795764600LL * 1'000'000);
  EXPECT_EQ(parse_rfc3339("2026-11-27T08:30:00+01:00"), 1795764600LL * 1'000'000);
  EXPECT_EQ(parse_rfc3339("2026-11-27T07:00:00-00:30"), 1795764600LL * 1'000'000);
  EXPECT_EQ(parse_rfc3339("1970-01-01t00:00:01.5z"), 1'500'000);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.123456789Z"), 123456);  // beyond µs: cut
  EXPECT_EQ(parse_rfc3339("2024-02-29T00:00:00Z"), 1709164800LL * 1'000'000);
}

TEST(Rfc3339, RefusesWhatIsNotOne) {
  for (const char* bad :
       {"", "tomorrow", "2026-11-27", "2026-11-27T07:30:00", "2026-11-27 07:30:00Z",
        "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z", "2026-01-01T00:00:60Z",
        "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00.1234567890Z", "2026-01-01T00:00:00+1:00",
        "2026-01-01T00:00:00+01:00 ", "0000-01-01T00:00:00Z", "+2026-01-01T00:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

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

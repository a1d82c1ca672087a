#include "text/text.hpp"

#include <gtest/gtest.h>

namespace flare::text {
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

TEST(Hex, RoundTripsAnyBytesAndRefusesOddOrForeignDigits) {
  std::string bytes("\x00\x01\x7f\x80\xff", 5);
  EXPECT_EQ(to_hex(bytes), "00017f80ff");
  EXPECT_EQ(from_hex("00017F80fF"), bytes);
  EXPECT_EQ(from_hex(""), "");
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("zz"));
  EXPECT_EQ(hex_digit('a'), 10);
  EXPECT_EQ(hex_digit('F'), 15);
  EXPECT_EQ(hex_digit('g'), -1);
}

TEST(Base64, RoundTripsWithPaddingAndRefusesAnythingElse) {
  EXPECT_EQ(to_base64("hello"), "aGVsbG8=");
  EXPECT_EQ(decode_base64("aGVsbG8="), "hello");
  EXPECT_EQ(decode_base64("aGVsbA=="), "hell");
  EXPECT_EQ(decode_base64("aGVs"), "hel");
  for (const char* bad : {"", "aGVsbG8", "aGV=bG8=", "aGVsbG8*", "a===", "aGVsbG8=\n"}) {
    EXPECT_FALSE(decode_base64(bad)) << bad;
  }
}

TEST(Uuid, EightFourFourFourTwelveHexDigits) {
  EXPECT_TRUE(is_uuid("0190a5c2-7c3e-7d4a-9b1f-0123456789ab"));
  EXPECT_TRUE(is_uuid("0190A5C2-7C3E-7D4A-9B1F-0123456789AB"));
  EXPECT_FALSE(is_uuid("0190a5c27c3e7d4a9b1f0123456789ab"));
  EXPECT_FALSE(is_uuid("0190a5c2-7c3e-7d4a-9b1f-0123456789a"));
  EXPECT_FALSE(is_uuid("0190a5c2-7c3e-7d4a-9b1f-0123456789ag"));
  EXPECT_FALSE(is_uuid("claim"));
}

TEST(PrintableUtf8, CountsCodePointsAndRefusesControlAndBrokenUtf8) {
  EXPECT_EQ(printable_utf8_length("evt_1"), 5u);
  EXPECT_EQ(printable_utf8_length("\xc3\xa9t\xc3\xa9"), 3u);
  EXPECT_EQ(printable_utf8_length(""), 0u);
  for (std::string bad :
       {std::string("a\nb"), std::string("a\0b", 3), std::string("\x7f"), std::string("\xc2\x85"),
        std::string("\xc3"), std::string("\xc0\xaf"), std::string("\xed\xa0\x80")}) {
    EXPECT_FALSE(printable_utf8_length(bad)) << to_hex(bad);
  }
}

TEST(PercentDecode, DecodesEscapesAndPlusKeepsStrayPercents) {
  EXPECT_EQ(percent_decode("invoice.paid%2Cx+y"), "invoice.paid,x y");
  EXPECT_EQ(percent_decode("100%"), "100%");
  EXPECT_EQ(percent_decode("%zz%4"), "%zz%4");
}

TEST(Iequals, IgnoresTheCaseOfAsciiLettersOnly) {
  EXPECT_TRUE(iequals("Bearer", "bEARER"));
  EXPECT_TRUE(iequals("100-Continue", "100-continue"));
  EXPECT_FALSE(iequals("Bearer", "Bearer "));
  EXPECT_FALSE(iequals("\xc3\xa9", "\xc3\x89"));
}

}  // namespace
}  // namespace flare::text

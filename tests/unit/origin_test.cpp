#include "gateway/origin.hpp"

#include <gtest/gtest.h>

namespace flare::gateway {
namespace {

std::vector<config::Cidr> proxies() {
  config::Cidr local;
  local.bytes = {127, 0, 0, 1};
  local.prefix = 32;
  return {local};
}

providers::Headers forwarded(std::string_view for_list, std::string_view proto = "https",
                             std::string_view id = "abc-1") {
  providers::Headers h;
  h.add("x-forwarded-for", for_list);
  h.add("X-Forwarded-Proto", proto);
  h.add("X-Request-Id", id);
  return h;
}

TEST(Origin, UntrustedPeerIsTakenAtItsWord) {
  providers::Headers h = forwarded("203.0.113.9");
  Origin o = origin_of(proxies(), "192.0.2.1", false, "gen-1", &h);
  EXPECT_EQ(o.client, "192.0.2.1");
  EXPECT_EQ(o.proto, "http");
  EXPECT_EQ(o.request_id, "gen-1");
  EXPECT_EQ(origin_of({}, "192.0.2.1", true, "gen-2", &h).proto, "https");
}

TEST(Origin, TrustedProxyNamesTheClientProtoAndId) {
  // The last address is the one the proxy saw; the ones before it are the client's claim.
  providers::Headers h = forwarded("10.9.9.9, 203.0.113.9");
  Origin o = origin_of(proxies(), "127.0.0.1", false, "gen-1", &h);
  EXPECT_EQ(o.client, "203.0.113.9");
  EXPECT_EQ(o.proto, "https");
  EXPECT_EQ(o.request_id, "abc-1");
  providers::Headers v6 = forwarded("2001:DB8:0:0::1");
  EXPECT_EQ(origin_of(proxies(), "127.0.0.1", false, "g", &v6).client, "2001:db8::1");
}

TEST(Origin, WhatATrustedProxyGetsWrongIsIgnored) {
  providers::Headers h = forwarded("not an address", "gopher", "bad id with spaces");
  Origin o = origin_of(proxies(), "127.0.0.1", true, "gen-1", &h);
  EXPECT_EQ(o.client, "127.0.0.1");
  EXPECT_EQ(o.proto, "https");
  EXPECT_EQ(o.request_id, "gen-1");
  providers::Headers long_id = forwarded("203.0.113.9", "http", std::string(129, 'a'));
  EXPECT_EQ(origin_of(proxies(), "127.0.0.1", false, "gen-2", &long_id).request_id, "gen-2");
  providers::Headers trailing = forwarded("203.0.113.9 ");
  EXPECT_EQ(origin_of(proxies(), "127.0.0.1", false, "g", &trailing).client, "127.0.0.1");
}

TEST(Origin, AHeaderThatDidNotParseSaysNothing) {
  Origin o = origin_of(proxies(), "127.0.0.1", false, "gen-1", nullptr);
  EXPECT_EQ(o.client, "127.0.0.1");
  EXPECT_EQ(o.request_id, "gen-1");
}

TEST(Origin, GeneratedIdsShareAPrefixAndCount) {
  RequestIds ids;
  std::string first = ids.next();
  std::string second = ids.next();
  ASSERT_EQ(first.size(), 14u) << first;  // 12 hex digits, '-', the count
  EXPECT_EQ(first.substr(0, 13), second.substr(0, 13));
  EXPECT_EQ(first.substr(13), "1");
  EXPECT_EQ(second.substr(13), "2");
  EXPECT_NE(RequestIds().next(), first);
  EXPECT_TRUE(valid_request_id(first));
}

}  // namespace
}  // namespace flare::gateway

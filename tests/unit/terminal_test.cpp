#include "gateway/terminal.hpp"

#include <gtest/gtest.h>

namespace flare::gateway {
namespace {

jobs::Job job(const std::string& id, const std::string& error) {
  jobs::Job j;
  j.id = id;
  j.project_id = "shop";
  j.status = jobs::Status::kDead;
  j.attempts = 3;
  j.max_attempts = 3;
  j.type = "Report";
  j.updated_at = "2026-11-27T10:00:00.000000Z";
  j.last_error = error;
  return j;
}

TEST(Terminal, TableAlignsCutsAndHidesControlCharacters) {
  std::string table =
      jobs_table({job("a", "short"), job("bb", "bell\x07 and é " + std::string(80, 'x'))});
  EXPECT_EQ(
      table,
      "ID  PROJECT  STATUS  ATTEMPTS  TYPE    KEY  UPDATED                      LAST ERROR\n"
      "a   shop     dead    3/3       Report  -    2026-11-27T10:00:00.000000Z  short\n"
      "bb  shop     dead    3/3       Report  -    2026-11-27T10:00:00.000000Z  bell? and é " +
          std::string(47, 'x') + "…\n");
}

TEST(Terminal, DetailsShowTextPayloadsAndOnlyTheSizeOfOthers) {
  jobs::Job j = job("a", "e");
  j.payload = "{\n  \"n\": 1\n}";
  EXPECT_NE(job_details(j).find("payload (12 bytes):\n{\n  \"n\": 1\n}\n"), std::string::npos);
  j.payload = std::string("\x00\x01\xff", 3);
  EXPECT_NE(job_details(j).find("payload: 3 bytes, not printable text\n"), std::string::npos);
  j.idempotency_key = "webhook:\x1b[31mred";
  EXPECT_NE(job_details(j).find("idempotency_key: webhook:?[31mred\n"), std::string::npos);
}

}  // namespace
}  // namespace flare::gateway

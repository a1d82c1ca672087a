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
  jobs::JobView v{job("a", "e"), {}, {}};
  jobs::Job& j = v.job;
  j.payload = "{\n  \"n\": 1\n}";
  EXPECT_NE(job_details(v).find("payload (12 bytes):\n{\n  \"n\": 1\n}\n"), std::string::npos);
  j.payload = std::string("\x00\x01\xff", 3);
  EXPECT_NE(job_details(v).find("payload: 3 bytes, not printable text\n"), std::string::npos);
  j.idempotency_key = "webhook:\x1b[31mred";
  EXPECT_NE(job_details(v).find("idempotency_key: webhook:?[31mred\n"), std::string::npos);
}

TEST(Terminal, DetailsShowEachDeliveryAndAttempt) {
  jobs::JobView v{job("a", "HTTP 500"), {}, {}};
  v.job.pushed = true;
  EXPECT_NE(job_details(v).find("deliveries: none (no route takes it)\n"), std::string::npos);
  jobs::Delivery d;
  d.route = "billing";
  d.status = jobs::Status::kRetrying;
  d.attempts = 1;
  d.max_attempts = 5;
  d.run_at = "2026-11-27T10:00:05.000000Z";
  d.last_error = "HTTP 500";
  v.deliveries.push_back(d);
  jobs::AttemptRecord failed{"billing",    1, "2026-11-27T10:00:00.000000Z", 12, 500, "HTTP 500",
                             "oops\x1b[0m"};
  jobs::AttemptRecord late{
      "crm", 2, "2026-11-27T09:59:00.000000Z", 1000, std::nullopt, "no answer within 1000 ms", ""};
  v.attempts = {failed, late};
  std::string out = job_details(v);
  EXPECT_NE(out.find("attempts: 3 over its routes\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  billing: retrying, attempts 1 of 5, run_at 2026-11-27T10:00:05.000000Z, "
                     "last_error HTTP 500\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("attempts, newest first:\n  2026-11-27T10:00:00.000000Z billing #1 12 ms: "
                     "HTTP 500 | oops?[0m\n  2026-11-27T09:59:00.000000Z crm #2 1000 ms: no "
                     "answer within 1000 ms\n"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace flare::gateway

#include "gateway/pages.hpp"

#include <gtest/gtest.h>

namespace flare::gateway::pages {
namespace {

Frame frame(bool read_only = false) { return {"/flare/console", "alice", "c5rf", read_only, ""}; }

jobs::JobView view(std::string payload, jobs::Status status = jobs::Status::kDead) {
  jobs::JobView v;
  v.job.id = "0190a5c2-7c3e-7d4a-9b1f-0123456789ab";
  v.job.project_id = "shop";
  v.job.type = "stripe.<b>x</b>";
  v.job.status = status;
  v.job.payload = std::move(payload);
  return v;
}

TEST(Pages, EscapeLeavesNoMarkup) {
  EXPECT_EQ(escape(R"(<a href="x" onclick='y'>&amp;</a>)"),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
}

TEST(Pages, APayloadIsTextWhateverItHolds) {
  std::string page = job(frame(), view(R"({"name":"<script>alert(1)</script>"})"));
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("<b>"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  // JSON is pretty-printed; other text is shown as it is; bytes in hexadecimal.
  EXPECT_NE(job(frame(), view(R"({"a":1})")).find("{\n  &quot;a&quot;: 1\n}"), std::string::npos);
  EXPECT_NE(job(frame(), view("plain <text>")).find("plain &lt;text&gt;"), std::string::npos);
  EXPECT_NE(job(frame(), view(std::string("\x00\xff", 2))).find("00ff"), std::string::npos);
}

TEST(Pages, ActionsCarryTheCsrfTokenAndAreHiddenFromReadOnlyOperators) {
  std::string page = job(frame(), view("{}"));
  EXPECT_NE(
      page.find("action=\"/flare/console/jobs/shop/0190a5c2-7c3e-7d4a-9b1f-0123456789ab/retry\""),
      std::string::npos);
  EXPECT_NE(page.find("name=\"csrf\" value=\"c5rf\""), std::string::npos);
  EXPECT_EQ(job(frame(true), view("{}")).find("/retry\""), std::string::npos);
  EXPECT_EQ(job(frame(), view("{}", jobs::Status::kSucceeded)).find("/retry\""), std::string::npos);
}

}  // namespace
}  // namespace flare::gateway::pages

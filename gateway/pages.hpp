// The console's pages as HTML (docs/console.md): pure functions from what the database said to
// the bytes of a page. Every value is escaped where it is written; no page holds a script or an
// inline style, so that the Content-Security-Policy can forbid both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jobs/job.hpp"
#include "jobs/store.hpp"
#include "jobs/traffic.hpp"

namespace flare::gateway::pages {

// Text as HTML text or an attribute's value (quoted with ").
std::string escape(std::string_view text);

// What every page of a session shows around its content.
struct Frame {
  std::string base;  // the console's path: base path and /console
  std::string operator_name;
  std::string csrf;
  bool read_only = false;
  std::string notice;  // a line of what the last action did; empty: none
};

std::string login(std::string_view base, std::string_view error);

// A page with a heading and one paragraph: an error, or what a refused action needed.
std::string message(const Frame& frame, std::string_view title, std::string_view text);

// One source's or route's traffic in `buckets` equal spans ending now, oldest first.
struct Series {
  std::string source;
  std::string route;  // "" for what the source received
  std::vector<jobs::TrafficRow> buckets;
  jobs::TrafficRow total;
};

// A route as the overview lists it.
struct RouteLine {
  std::string project;
  jobs::RouteState state;
};

// The overview's queue counts stop here: past it a page would cost what the backlog holds.
inline constexpr std::int64_t kCountedUpTo = 10'000;

struct Overview {
  std::vector<RouteLine> routes;
  jobs::QueueSummary queue;
  std::vector<Series> hour;  // 12 buckets of 5 minutes
  std::vector<Series> day;   // 24 buckets of an hour
};

std::string overview(const Frame& frame, const Overview& data);

// The jobs list: the filter as the form shows it (field, value), the choices of its selects, the
// page of jobs and the query of the next page ("" when none follows).
struct JobList {
  std::vector<std::pair<std::string, std::string>> filter;
  std::vector<std::string> projects;
  std::vector<std::string> sources;
  std::vector<jobs::Job> jobs;
  std::string filter_query;  // the filter as a query string, for links
  std::string next_query;
  std::string error;  // a filter that did not parse
};

std::string job_list(const Frame& frame, const JobList& list);

std::string job(const Frame& frame, const jobs::JobView& view);

// The confirmation of a bulk retry: how many dead jobs match (`capped`: at least that many).
std::string retry_confirm(const Frame& frame, const JobList& list, std::int64_t count, bool capped);

}  // namespace flare::gateway::pages

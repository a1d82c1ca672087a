// What the benchmark programs share: the events they send, where they send them, and how they
// count time and CPU.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "support/http.hpp"

namespace flare::bench {

// A Stripe event of 2-4 KB, as providers send them: the size varies with n.
std::string event_body(const std::string& id, std::size_t n);

// POSTs event n, signed, to /webhooks/<source>; true when it was accepted (202) or known (200).
bool post(test::HttpClient& client, const std::string& source, const std::string& id,
          std::size_t n);

// A Stripe source of project shop, as a `sources:` entry; with `port`, pushed to one route,
// "r", at http://127.0.0.1:<port>/.
std::string stripe_source(const std::string& name, std::uint16_t port = 0);

// The value below which a share p of v lies (the nearest rank); 0 for none.
double percentile(std::vector<double> v, double p);

// CPU clock ticks of a process and of its children, those that exited included.
std::int64_t tree_ticks(pid_t root);

// Busy CPU clock ticks of the whole machine.
std::int64_t machine_ticks();

}  // namespace flare::bench

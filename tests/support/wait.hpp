// Waiting for a state that announces itself nowhere the test can listen: the server's backends
// and statistics, a row's status, a gauge on /metrics.
#pragma once

#include <chrono>
#include <thread>

namespace flare::test {

// Asks `done` every 50 ms until it is true; false once `limit` has passed without. Each ask may
// open a connection or make a request: no faster than that.
template <class Done>
bool eventually(Done done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  for (auto until = std::chrono::steady_clock::now() + limit;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace flare::test

// A headless Chromium driven over WebDriver: Debian's chromium and chromedriver (packages
// chromium and chromium-driver), started for one test suite, spoken to with the test HTTP client.
// Elements are found by CSS selector; every call throws with WebDriver's message on failure.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "support/http.hpp"

namespace flare::test {

class Browser {
 public:
  // Throws when chromedriver or chromium is missing or does not start.
  Browser();
  ~Browser();
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  // Opens `url` and waits for the page to load.
  void go(const std::string& url);
  std::string url();
  // How many elements match.
  std::size_t count(const std::string& css);
  // The visible text of the first element that matches.
  std::string text(const std::string& css);
  // Clicks the first element that matches. A click that submits a form returns before the next
  // page is there: wait_for what it shows.
  void click(const std::string& css);
  // Waits until an element matches `css`; false when `timeout` passes first.
  bool wait_for(const std::string& css, std::chrono::seconds timeout = std::chrono::seconds(10));
  void type(const std::string& css, const std::string& text);
  // Runs `script` (the body of a function) in the page; its result as JSON.
  std::string run(const std::string& script);
  // A PNG of the window, written to `path`.
  void screenshot(const std::string& path);
  // The value of the page's cookie `name`; "" when it has none.
  std::string cookie(const std::string& name);
  // Waits until the text of the first element matching `css` contains `text`, loading the page
  // again each time it does not; false when `timeout` passes first.
  bool reload_until(const std::string& css, const std::string& text, std::chrono::seconds timeout);

 private:
  Response call(const std::string& method, const std::string& path, const std::string& body = "");
  std::string element(const std::string& css);

  pid_t driver_ = -1;
  std::uint16_t port_ = 0;
  std::string session_;
};

}  // namespace flare::test

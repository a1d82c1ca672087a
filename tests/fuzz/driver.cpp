// Runs every fuzz target on mutations of its seeds (a fixed number, from a fixed seed, so a
// failure repeats), then on every file of its committed corpus (corpus/<target>/), under
// AddressSanitizer and UBSan. Beyond the targets' own checks: a request whose body differs from
// its signed seed's never verifies, whatever was done to its headers.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "fuzz/targets.hpp"

namespace {

// Pieces of the syntax the parsers look for, so that mutations reach past the first check.
const char* const kTokens[] = {"t=",
                               "v1=",
                               "v0=",
                               "v1,",
                               ",",
                               " ",
                               "=",
                               "sha256=",
                               "sha512=",
                               "\n",
                               "{",
                               "}",
                               "\"",
                               ":",
                               "\\u0000",
                               "-1",
                               "99999999999999999999",
                               "2023-11-14T22:13:20Z",
                               "\xff",
                               "\xc3",
                               "~1",
                               "[",
                               "]",
                               "/",
                               "?",
                               "%2F",
                               "..",
                               "/webhooks/",
                               "/v1/jobs/",
                               "::",
                               "\r",
                               "- ",
                               ": ",
                               "${"};

std::string mutate(std::string s, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    std::size_t at = pick(s.size() + 1);
    switch (rng() % 7) {
      case 0:  // flip a bit
        if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1 << (rng() % 8));
        break;
      case 1:  // a random byte
        s.insert(at, 1, static_cast<char>(rng() % 256));
        break;
      case 2:  // erase a range
        s.erase(at, pick(16) + 1);
        break;
      case 3:  // a token
        s.insert(at, kTokens[pick(std::size(kTokens))]);
        break;
      case 4:  // repeat a range, sometimes many times
        if (at < s.size()) {
          std::string piece = s.substr(at, pick(32) + 1);
          for (std::size_t n = 1 + pick(rng() % 8 == 0 ? 500 : 3); n > 0; --n) s.insert(at, piece);
        }
        break;
      case 5:  // cut the end
        s.resize(at);
        break;
      case 6:  // move a range elsewhere
        if (at < s.size()) {
          std::string piece = s.substr(at, pick(16) + 1);
          s.erase(at, piece.size());
          s.insert(pick(s.size() + 1), piece);
        }
        break;
    }
  }
  return s;
}

std::string file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Every file of corpus/<target>/ through its target: the inputs fuzzing found worth keeping and
// the hostile requests written by hand (a header of 10,000 signatures, 100,000-deep JSON, random
// bytes, ...). False when a target has no runner.
bool replay_corpus() {
  std::map<std::string, std::function<void(std::string_view)>> runners = {
      {"json", flare::fuzz::run_json},
      {"head", flare::fuzz::run_head},
      {"config", flare::fuzz::run_config}};
  for (const flare::fuzz::Target& target : flare::fuzz::targets()) {
    runners[target.name] = [&target](std::string_view input) { flare::fuzz::run(target, input); };
  }
  for (const auto& dir : std::filesystem::directory_iterator(FLARE_FUZZ_CORPUS)) {
    auto runner = runners.find(dir.path().filename().string());
    if (runner == runners.end()) {
      std::fprintf(stderr, "corpus %s: no such target\n", dir.path().c_str());
      return false;
    }
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
      runner->second(file(entry.path()));
      ++files;
    }
    std::printf("%-9s %zu corpus files\n", runner->first.c_str(), files);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = argc > 1 ? std::atol(argv[1]) : 20000;
  std::mt19937_64 rng(20261127);
  for (const flare::fuzz::Target& target : flare::fuzz::targets()) {
    long accepted = 0;
    for (const std::string& seed : target.seeds) {
      flare::fuzz::Run original = flare::fuzz::run(target, seed);
      if (original.verdict.error != flare::providers::VerifyError::kNone) {
        std::fprintf(stderr, "%s: a seed does not verify: %s\n", target.name.c_str(),
                     std::string(original.verdict.detail).c_str());
        return 1;
      }
      std::string body(original.body);
      for (long i = 0; i < iterations; ++i) {
        std::string input = mutate(seed, rng);
        flare::fuzz::Run r = flare::fuzz::run(target, input);
        if (r.verdict.error != flare::providers::VerifyError::kNone) continue;
        ++accepted;
        if (r.body != body) {
          std::fprintf(stderr, "%s: a changed body verified after mutation %ld\n",
                       target.name.c_str(), i);
          return 1;
        }
      }
    }
    std::printf(
        "%-9s %zu seeds x %ld mutations: %ld still verified (header changes a parser "
        "tolerates), 0 with a changed body\n",
        target.name.c_str(), target.seeds.size(), iterations, accepted);
  }
  for (long i = 0; i < iterations * 5; ++i) {
    flare::fuzz::run_json(
        mutate(R"({"id":"x","event":{"type":"t"},"a":["0",{"b":null}],"~/":1})", rng));
  }
  std::printf("json      %ld mutations\n", iterations * 5);
  for (const std::string& seed : flare::fuzz::kHeadSeeds) {
    for (long i = 0; i < iterations; ++i) flare::fuzz::run_head(mutate(seed, rng));
  }
  std::printf("head      %zu seeds x %ld mutations\n", flare::fuzz::kHeadSeeds.size(), iterations);
  std::string example = file(std::filesystem::path(FLARE_FUZZ_CORPUS) / "config" / "example.yaml");
  for (long i = 0; i < iterations / 4; ++i) flare::fuzz::run_config(mutate(example, rng));
  std::printf("config    1 seed x %ld mutations\n", iterations / 4);
  return replay_corpus() ? 0 : 1;
}

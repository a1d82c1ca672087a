// One libFuzzer binary per target (FLARE_FUZZ_TARGET names it), built with clang when
// FLARE_LIBFUZZER is on; see README.md.
#include <cstdint>
#include <string_view>

#include "fuzz/targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view name = FLARE_FUZZ_TARGET;
  if (name == "json") {
    flare::fuzz::run_json(input);
    return 0;
  }
  if (name == "head") {
    flare::fuzz::run_head(input);
    return 0;
  }
  if (name == "config") {
    flare::fuzz::run_config(input);
    return 0;
  }
  for (const flare::fuzz::Target& target : flare::fuzz::targets()) {
    if (target.name == name) flare::fuzz::run(target, input);
  }
  return 0;
}

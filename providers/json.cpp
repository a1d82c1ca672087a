#include "providers/json.hpp"

#include <rapidjson/reader.h>

#include <cstdint>
#include <string>

namespace flare::providers {

std::optional<JsonPointer> parse_json_pointer(std::string_view text) {
  JsonPointer tokens;
  if (text.empty()) return tokens;
  if (text.front() != '/') return std::nullopt;
  text.remove_prefix(1);
  for (;;) {
    std::size_t slash = text.find('/');
    std::string_view raw = text.substr(0, slash);
    std::string token;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '~') {
        token += raw[i];
        continue;
      }
      if (i + 1 == raw.size() || (raw[i + 1] != '0' && raw[i + 1] != '1')) return std::nullopt;
      token += raw[++i] == '0' ? '~' : '/';
    }
    tokens.push_back(std::move(token));
    if (slash == std::string_view::npos) return tokens;
    text.remove_prefix(slash + 1);
  }
}

namespace {

constexpr std::size_t kKeptDepth = 64;

// Follows the path from the root to the value being read; compares it with the pointers only
// at a string value of the right depth. Parsing in place, the reader hands over keys that stay
// where they lie in the text until the parse ends, so the path refers to them.
class Scan : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Scan> {
 public:
  struct Frame {
    bool array;
    std::uint64_t index = 0;  // arrays: the position of the value being read
    std::string_view key;     // objects: the key of the value being read
  };

  Scan(const std::vector<JsonPointer>& pointers, std::vector<std::optional<std::string>>& out,
       std::vector<Frame>& path)
      : pointers_(pointers), out_(out), path_(path) {}

  bool root_is_object() const { return root_is_object_; }

  bool StartObject() { return open(false); }
  bool StartArray() { return open(true); }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    path_.back().key = std::string_view(text, length);
    return true;
  }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool EndArray(rapidjson::SizeType) { return close(); }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    if (path_.empty()) return false;
    for (std::size_t i = 0; i < pointers_.size(); ++i) {
      if (!out_[i] && at(pointers_[i])) out_[i].emplace(text, length);
    }
    return next();
  }
  // Numbers, booleans and null: nothing to keep.
  bool Default() { return !path_.empty() && next(); }

 private:
  bool open(bool array) {
    if (path_.empty()) {
      if (seen_root_ || array) return false;
      seen_root_ = root_is_object_ = true;
    }
    path_.push_back(Frame{array, 0, {}});
    return true;
  }
  bool close() {
    path_.pop_back();
    return path_.empty() || next();
  }
  bool next() {
    if (path_.back().array) ++path_.back().index;
    return true;
  }
  bool at(const JsonPointer& pointer) const {
    if (pointer.size() != path_.size()) return false;
    for (std::size_t i = 0; i < path_.size(); ++i) {
      const Frame& f = path_[i];
      if (f.array ? pointer[i] != std::to_string(f.index) : pointer[i] != f.key) return false;
    }
    return true;
  }

  const std::vector<JsonPointer>& pointers_;
  std::vector<std::optional<std::string>>& out_;
  std::vector<Frame>& path_;
  bool seen_root_ = false;
  bool root_is_object_ = false;
};

}  // namespace

std::optional<std::vector<std::optional<std::string>>> json_strings(
    std::string_view json, const std::vector<JsonPointer>& pointers) {
  // A NUL byte is not JSON anywhere (inside a string it would have to be escaped); refusing it
  // here lets the parser work on a NUL-terminated copy: it decodes strings in place (no copy of
  // each into its stack) and scans them 16 bytes at a time. The copy keeps 15 spare bytes,
  // which those scans may read past the end. Copy and reader are kept per thread, with the
  // memory they grew to, as is the path the scan follows unless a deep nesting made it long.
  if (json.find('\0') != std::string_view::npos) return std::nullopt;
  thread_local std::string text;
  thread_local rapidjson::Reader reader;
  thread_local std::vector<Scan::Frame> path;
  text.reserve(json.size() + 16);
  text.assign(json);
  std::vector<std::optional<std::string>> out(pointers.size());
  path.clear();
  Scan scan(pointers, out, path);
  rapidjson::InsituStringStream stream(text.data());
  // Iterative: a deeply nested body cannot exhaust the stack.
  bool parsed =
      !reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseInsituFlag>(stream, scan)
           .IsError() &&
      scan.root_is_object();
  if (path.capacity() > kKeptDepth) std::vector<Scan::Frame>().swap(path);
  if (!parsed) return std::nullopt;
  return out;
}

}  // namespace flare::providers

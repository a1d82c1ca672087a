#include "providers/json.hpp"

#include <gtest/gtest.h>

namespace flare::providers {
namespace {

std::vector<JsonPointer> pointers(std::initializer_list<const char*> texts) {
  std::vector<JsonPointer> out;
  for (const char* t : texts) out.push_back(*parse_json_pointer(t));
  return out;
}

TEST(JsonPointer, Parses) {
  EXPECT_EQ(*parse_json_pointer(""), JsonPointer{});
  EXPECT_EQ(*parse_json_pointer("/id"), JsonPointer{"id"});
  EXPECT_EQ(*parse_json_pointer("/event/type"), (JsonPointer{"event", "type"}));
  EXPECT_EQ(*parse_json_pointer("/a~1b/m~0n/"), (JsonPointer{"a/b", "m~n", ""}));
  EXPECT_EQ(*parse_json_pointer("/items/0"), (JsonPointer{"items", "0"}));
  EXPECT_FALSE(parse_json_pointer("id"));
  EXPECT_FALSE(parse_json_pointer("/a~2"));
  EXPECT_FALSE(parse_json_pointer("/a~"));
}

TEST(JsonStrings, FindsTopLevelNestedAndArrayMembers) {
  auto found = json_strings(
      R"({"id":"evt_1","data":{"object":{"id":"ch_1"}},"n":5,"list":[{"x":"a"},{"x":"b"}],)"
      R"("a/b":"slash","type":"charge.succeeded"})",
      pointers({"/id", "/data/object/id", "/list/1/x", "/a~1b", "/type"}));
  ASSERT_TRUE(found);
  EXPECT_EQ((*found)[0], "evt_1");
  EXPECT_EQ((*found)[1], "ch_1");
  EXPECT_EQ((*found)[2], "b");
  EXPECT_EQ((*found)[3], "slash");
  EXPECT_EQ((*found)[4], "charge.succeeded");
}

TEST(JsonStrings, AbsentOrNotAStringIsNullopt) {
  auto found = json_strings(R"({"id":42,"type":null,"obj":{"k":"v"},"nested":{"id":"deeper"}})",
                            pointers({"/id", "/type", "/obj", "/missing", "/obj/k/x"}));
  ASSERT_TRUE(found);
  for (const auto& value : *found) EXPECT_FALSE(value);
}

TEST(JsonStrings, FirstOfARepeatedKeyCounts) {
  auto found = json_strings(R"({"id":"first","id":"second"})", pointers({"/id"}));
  ASSERT_TRUE(found);
  EXPECT_EQ((*found)[0], "first");
}

TEST(JsonStrings, EscapesAreDecoded) {
  auto found = json_strings(R"({"id":"a\"b\u00e9\n"})", pointers({"/id"}));
  ASSERT_TRUE(found);
  EXPECT_EQ((*found)[0], "a\"b\xc3\xa9\n");
}

// Keys are matched as they read after decoding, including the keys of enclosing objects, which
// are decoded before the values inside them are read.
TEST(JsonStrings, EscapedKeysOnThePathAreDecoded) {
  auto found = json_strings(
      R"({"d\u00e9j\u00e0":{"pad":"xxxxxxxxxxxxxxxxxxxxxxxx","n\"q":{"id":"v"}},"id":"top"})",
      pointers({"/d\xc3\xa9j\xc3\xa0/n\"q/id", "/id"}));
  ASSERT_TRUE(found);
  EXPECT_EQ((*found)[0], "v");
  EXPECT_EQ((*found)[1], "top");
}

TEST(JsonStrings, RefusesWhatIsNotOneObject) {
  for (const char* bad : {"", "[]", "\"id\"", "42", "null", "{", R"({"id":"x"} {})",
                          R"({"id":"x",})", R"({"id":"x"}])", "{\"id\":\"x\"}garbage"}) {
    EXPECT_FALSE(json_strings(bad, pointers({"/id"}))) << bad;
  }
  EXPECT_TRUE(json_strings(" {} ", pointers({"/id"})));
  // A NUL byte, after the object or inside a string, is not JSON.
  using namespace std::string_literals;
  for (const std::string& bad : {"{\"id\":\"x\"}\0"s, "{\"id\":\"x\0y\"}"s, "\0{}"s}) {
    EXPECT_FALSE(json_strings(bad, pointers({"/id"}))) << bad.size();
  }
}

// Strings of every length around the 16-byte blocks that are scanned at once, with the quote
// or an escape at each position, read back exactly.
TEST(JsonStrings, LongStringsAtEveryAlignment) {
  for (std::size_t length = 0; length < 80; ++length) {
    for (const std::string& special : {std::string(), std::string("\\n")}) {
      std::string value(length, 'v');
      std::string json =
          R"({"pad":")" + std::string(length % 17, 'p') + R"(","id":")" + value + special + R"("})";
      auto found = json_strings(json, pointers({"/id"}));
      ASSERT_TRUE(found) << json;
      EXPECT_EQ((*found)[0], value + (special.empty() ? "" : "\n")) << json;
    }
  }
}

TEST(JsonStrings, DeepNestingDoesNotExhaustTheStack) {
  std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_TRUE(json_strings(deep, pointers({"/a"})));
  // The next body is scanned as usual after the long path was given back.
  auto found = json_strings(R"({"a":{"id":"after"}})", pointers({"/a/id"}));
  ASSERT_TRUE(found);
  EXPECT_EQ((*found)[0], "after");
}

}  // namespace
}  // namespace flare::providers

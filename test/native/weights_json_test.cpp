// The strict JSON parser behind safetensors headers and shard indexes (native/core/weights/json.h).
#include <cstdint>
#include <string>

#include "test_util.h"
#include "weights/json.h"
#include "weights_test_util.h"

using namespace showo2;
using namespace showo2::weights;

static JsonValue parse(const std::string& text, const JsonLimits& limits = {}) {
  return parse_json(text, "test.json", limits);
}

SHOWO2_TEST(json_parses_every_kind) {
  JsonValue v = parse(R"( {"a": [1, -2, 3.5, -0.25e2, true, false, null], "b": {"c": "d"}, "e": []} )");
  CHECK(v.is_object());
  CHECK_EQ(v.members().size(), size_t{3});
  const JsonValue& a = *v.find("a");
  CHECK(a.is_array());
  CHECK_EQ(a.items().size(), size_t{7});
  CHECK(a.items()[0].is_int() && a.items()[0].as_int() == 1);
  CHECK(a.items()[1].is_int() && a.items()[1].as_int() == -2);
  CHECK(a.items()[2].kind() == JsonValue::Kind::Double && a.items()[2].as_double() == 3.5);
  CHECK_EQ(a.items()[3].as_double(), -25.0);
  CHECK(a.items()[4].is_bool() && a.items()[4].as_bool());
  CHECK(a.items()[5].is_bool() && !a.items()[5].as_bool());
  CHECK(a.items()[6].is_null());
  CHECK_EQ(v.find("b")->find("c")->as_string(), std::string("d"));
  CHECK(v.find("e")->is_array() && v.find("e")->items().empty());
  CHECK(v.find("missing") == nullptr);
  CHECK_EQ(v.members()[2].first, std::string("e"));  // file order is kept
}

SHOWO2_TEST(json_integers_are_exact_and_overflow_is_detected) {
  CHECK_EQ(parse("9223372036854775807").as_int(), INT64_MAX);
  CHECK_EQ(parse("-9223372036854775808").as_int(), INT64_MIN);
  CHECK_EQ(parse("11315992576").as_int(), int64_t{11315992576});  // a 7B checkpoint's total_size: no double rounding
  JsonValue big = parse("9223372036854775808");  // 2^63: not an int64, kept as a double so readers can refuse it
  CHECK(!big.is_int() && big.is_number());
  CHECK(!parse("-9223372036854775809").is_int());
  CHECK(!parse("123456789012345678901234567890").is_int());
  CHECK(parse("0").is_int());
  CHECK_EQ(parse("1E2").as_double(), 100.0);
  CHECK_THROWS_MESSAGE(parse("1e400"), CorruptFile, "test.json", "out of range", "at byte 0");
  CHECK_EQ(parse("1e-400").as_double(), 0.0);  // underflow rounds to zero, as strtod does
}

SHOWO2_TEST(json_strings_decode_escapes_and_utf8) {
  CHECK_EQ(parse(R"("a\"b\\c\/d\b\f\n\r\t")").as_string(), std::string("a\"b\\c/d\b\f\n\r\t"));
  CHECK_EQ(parse(R"("\u00e9\u4e2d")").as_string(), std::string("\xc3\xa9\xe4\xb8\xad"));
  CHECK_EQ(parse(R"("\ud83d\ude00")").as_string(), std::string("\xf0\x9f\x98\x80"));  // surrogate pair -> U+1F600
  CHECK_EQ(parse("\"\xc3\xa9\xf0\x9f\x98\x80\"").as_string(), std::string("\xc3\xa9\xf0\x9f\x98\x80"));
  CHECK_EQ(parse(R"("\u0000")").as_string(), std::string(1, '\0'));
}

SHOWO2_TEST(json_rejects_malformed_input_with_the_byte_offset) {
  CHECK_THROWS_MESSAGE(parse(""), CorruptFile, "test.json", "at byte 0", "end of input");
  CHECK_THROWS_MESSAGE(parse("[1, 2,]"), CorruptFile, "at byte 6");
  CHECK_THROWS_MESSAGE(parse("{\"a\":1,}"), CorruptFile, "at byte 7", "string key");
  CHECK_THROWS_MESSAGE(parse("[01]"), CorruptFile, "leading zeros");
  CHECK_THROWS_MESSAGE(parse("[1.]"), CorruptFile, "digit after '.'");
  CHECK_THROWS_MESSAGE(parse("-"), CorruptFile, "expected a digit");
  CHECK_THROWS_MESSAGE(parse("{\"a\":1} x"), CorruptFile, "at byte 8", "after the JSON value");
  CHECK_THROWS_MESSAGE(parse("{\"a\":1,\"a\":2}"), CorruptFile, "duplicate key \"a\"", "at byte 7");
  CHECK_THROWS_MESSAGE(parse("\"abc"), CorruptFile, "unterminated string");
  CHECK_THROWS_MESSAGE(parse("\"a\nb\""), CorruptFile, "control character", "at byte 2");
  CHECK_THROWS_MESSAGE(parse(R"("\x")"), CorruptFile, "invalid escape");
  CHECK_THROWS_MESSAGE(parse(R"("\u12")"), CorruptFile, "\\u escape");
  CHECK_THROWS_MESSAGE(parse(R"("\ud83d")"), CorruptFile, "high surrogate");
  CHECK_THROWS_MESSAGE(parse(R"("\ud83dx")"), CorruptFile, "high surrogate");
  CHECK_THROWS_MESSAGE(parse(R"("\ude00")"), CorruptFile, "lone low surrogate");
  CHECK_THROWS_MESSAGE(parse("\"\xff\""), CorruptFile, "invalid UTF-8");
  CHECK_THROWS_MESSAGE(parse("\"\xc0\xaf\""), CorruptFile, "invalid UTF-8");          // overlong '/'
  CHECK_THROWS_MESSAGE(parse("\"\xed\xa0\x80\""), CorruptFile, "surrogate");          // encoded surrogate
  CHECK_THROWS_MESSAGE(parse("\"\xe4\xb8\""), CorruptFile, "UTF-8");                   // truncated sequence
  CHECK_THROWS_MESSAGE(parse("tru"), CorruptFile, "invalid literal");
  CHECK_THROWS_MESSAGE(parse("NaN"), CorruptFile, "unexpected character 'N'");
  CHECK_THROWS_MESSAGE(parse("[1 2]"), CorruptFile, "expected ',' or ']'");
  CHECK_THROWS_MESSAGE(parse("{\"a\" 1}"), CorruptFile, "expected ':'");
  CHECK_THROWS_MESSAGE(parse("/*c*/{}"), CorruptFile, "unexpected character '/'");
}

SHOWO2_TEST(json_enforces_depth_and_size_limits) {
  std::string deep_ok(64, '[');
  deep_ok += std::string(64, ']');
  CHECK(parse(deep_ok).is_array());
  std::string too_deep(65, '[');
  too_deep += std::string(65, ']');
  CHECK_THROWS_MESSAGE(parse(too_deep), CorruptFile, "nesting deeper than 64");
  // A hostile document nested a million deep must fail cleanly, not overflow the stack.
  CHECK_THROWS_CODE(parse(std::string(1000000, '[')), CorruptFile);
  JsonLimits small;
  small.max_bytes = 16;
  CHECK_THROWS_MESSAGE(parse("[1,2,3,4,5,6,7,8,9]", small), CorruptFile, "exceeds the 16-byte limit");
}

SHOWO2_TEST(json_string_writer_round_trips) {
  std::string nasty = std::string("quote\" backslash\\ newline\n tab\t ctrl\x01 nul") + '\0' + " utf8 \xc3\xa9";
  std::string out;
  append_json_string(out, nasty);
  CHECK_EQ(parse(out).as_string(), nasty);
}

SHOWO2_TEST_MAIN()

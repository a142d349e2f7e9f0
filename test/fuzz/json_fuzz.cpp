// Fuzzes the strict JSON parser (native/core/weights/json.h) that reads safetensors headers, shard indexes and
// config.json.
//
// Contract: ERR_CORRUPT_FILE or a value. Invariants of a value: strings are valid UTF-8 (the parser promises it), and
// writing the value back out and parsing that gives the same value (integers exact, doubles to the bit, object
// member order kept). The writer here is the harness's own: the core only writes JSON strings (append_json_string),
// which this exercises too.
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "weights/json.h"

using showo2::ErrorCode;
using showo2::weights::JsonValue;

namespace {

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int extra;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xc2 && c <= 0xdf) { extra = 1; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { extra = 2; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { extra = 3; cp = c & 0x07; }
    else return false;
    if (s.size() - i <= static_cast<size_t>(extra)) return false;
    for (int k = 1; k <= extra; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += static_cast<size_t>(extra) + 1;
  }
  return true;
}

void write(std::string& out, const JsonValue& v) {
  switch (v.kind()) {
    case JsonValue::Kind::Null: out += "null"; break;
    case JsonValue::Kind::Bool: out += v.as_bool() ? "true" : "false"; break;
    case JsonValue::Kind::Int: out += std::to_string(v.as_int()); break;
    case JsonValue::Kind::Double: {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", v.as_double());
      out += buf;
      // "%.17g" writes integral doubles without a '.', which would read back as an integer.
      if (!std::strpbrk(buf, ".eE")) out += ".0";
      break;
    }
    case JsonValue::Kind::String: showo2::weights::append_json_string(out, v.as_string()); break;
    case JsonValue::Kind::Array:
      out += '[';
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) out += ',';
        write(out, v.items()[i]);
      }
      out += ']';
      break;
    case JsonValue::Kind::Object:
      out += '{';
      for (size_t i = 0; i < v.members().size(); ++i) {
        if (i) out += ',';
        showo2::weights::append_json_string(out, v.members()[i].first);
        out += ':';
        write(out, v.members()[i].second);
      }
      out += '}';
      break;
  }
}

void check_strings(const JsonValue& v) {
  if (v.is_string()) FUZZ_CHECK(valid_utf8(v.as_string()));
  for (const JsonValue& item : v.items()) check_strings(item);
  for (const auto& [key, value] : v.members()) {
    FUZZ_CHECK(valid_utf8(key));
    check_strings(value);
  }
}

bool same(const JsonValue& a, const JsonValue& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case JsonValue::Kind::Null: return true;
    case JsonValue::Kind::Bool: return a.as_bool() == b.as_bool();
    case JsonValue::Kind::Int: return a.as_int() == b.as_int();
    case JsonValue::Kind::Double: {
      const double x = a.as_double(), y = b.as_double();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    case JsonValue::Kind::String: return a.as_string() == b.as_string();
    case JsonValue::Kind::Array:
      if (a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i)
        if (!same(a.items()[i], b.items()[i])) return false;
      return true;
    case JsonValue::Kind::Object:
      if (a.members().size() != b.members().size()) return false;
      for (size_t i = 0; i < a.members().size(); ++i)
        if (a.members()[i].first != b.members()[i].first || !same(a.members()[i].second, b.members()[i].second))
          return false;
      return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  JsonValue value;
  try {
    value = showo2::weights::parse_json(text, "fuzz.json");
  } catch (const showo2::Error& e) {
    showo2::fuzz::expect_code(e, {ErrorCode::CorruptFile});
    return 0;
  }
  check_strings(value);
  std::string written;
  write(written, value);
  // Must parse again (no try: a failure here is a finding) and equal the first parse.
  const JsonValue again = showo2::weights::parse_json(written, "fuzz.json (written back)");
  FUZZ_CHECK(same(value, again));
  return 0;
}

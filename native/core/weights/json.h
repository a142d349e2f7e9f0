// A small, strict JSON parser (RFC 8259) for the two JSON documents weight loading meets: safetensors headers and
// `*.index.json` shard maps. Both can come from an untrusted download, so the parser is strict and bounded:
//
//   * exactly one value, surrounded only by JSON whitespace; no comments, trailing commas or leading zeros;
//   * strings must be valid UTF-8, escapes include \uXXXX with surrogate pairs (a lone surrogate is an error);
//   * integers that fit int64 are kept exactly (offsets reach 10^10 and must not round through a double);
//     larger integers become doubles (is_int() is false, so a reader that needs an integer reports it);
//     a number whose magnitude overflows a double is an error;
//   * duplicate object keys are an error (a header naming one tensor twice is ambiguous);
//   * nesting depth and total size are capped, so hostile input cannot exhaust the stack or memory.
//
// Errors are ERR_CORRUPT_FILE "<source>: invalid JSON at byte N: <reason>", where `source` says which file (and which
// part of it) was being parsed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace showo2::weights {

class JsonValue {
 public:
  enum class Kind { Null, Bool, Int, Double, String, Array, Object };

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Double; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }

  // Accessors assume the kind was checked (they return a default otherwise, never throw).
  bool as_bool() const { return bool_; }
  int64_t as_int() const { return int_; }
  double as_double() const { return kind_ == Kind::Int ? static_cast<double>(int_) : double_; }
  const std::string& as_string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }                              // Array
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }  // Object, file order

  // Object member lookup; nullptr when absent or when this is not an object.
  const JsonValue* find(std::string_view key) const;

  // "object", "array", "string", "integer", "number", "true/false", "null": for error messages.
  const char* kind_name() const;

 private:
  friend class JsonParser;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  int64_t int_ = 0;
  double double_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

struct JsonLimits {
  size_t max_bytes = 100u << 20;  // the safetensors reference implementation's header cap (100 MB)
  int max_depth = 64;              // safetensors headers are depth 3, index files depth 2
};

// Parses `text` as one JSON document. Throws ERR_CORRUPT_FILE naming `source` and the byte offset.
JsonValue parse_json(std::string_view text, const std::string& source, const JsonLimits& limits = {});

// Appends `s` as a quoted JSON string (escaping quotes, backslashes and control characters; UTF-8 passes through).
void append_json_string(std::string& out, std::string_view s);

}  // namespace showo2::weights

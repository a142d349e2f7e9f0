#include "json.h"

#include <cerrno>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <unordered_set>

#include "../error.h"

namespace showo2::weights {

const JsonValue* JsonValue::find(std::string_view key) const {
  for (const auto& m : members_)
    if (m.first == key) return &m.second;
  return nullptr;
}

const char* JsonValue::kind_name() const {
  switch (kind_) {
    case Kind::Null: return "null";
    case Kind::Bool: return "true/false";
    case Kind::Int: return "integer";
    case Kind::Double: return "number";
    case Kind::String: return "string";
    case Kind::Array: return "array";
    case Kind::Object: return "object";
  }
  return "?";
}

// Recursive descent over the text; depth is bounded by JsonLimits::max_depth so recursion stays shallow.
class JsonParser {
 public:
  JsonParser(std::string_view text, const std::string& source, const JsonLimits& limits)
      : text_(text), source_(source), limits_(limits) {}

  JsonValue parse_document() {
    if (text_.size() > limits_.max_bytes) error_at(0, "document of ", text_.size(), " bytes exceeds the ",
                                                   limits_.max_bytes, "-byte limit");
    skip_ws();
    JsonValue v = parse_value(0);
    skip_ws();
    if (pos_ != text_.size()) error("unexpected data after the JSON value");
    return v;
  }

 private:
  template <typename... Parts>
  [[noreturn]] void error_at(size_t at, const Parts&... parts) {
    fail(ErrorCode::CorruptFile, source_, ": invalid JSON at byte ", at, ": ", parts...);
  }
  template <typename... Parts>
  [[noreturn]] void error(const Parts&... parts) { error_at(pos_, parts...); }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  void skip_ws() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  void expect_literal(const char* lit) {
    size_t n = std::char_traits<char>::length(lit);
    if (text_.substr(pos_, n) != lit) error("invalid literal (expected '", lit, "')");
    pos_ += n;
  }

  JsonValue parse_value(int depth) {
    if (at_end()) error("unexpected end of input");
    JsonValue v;
    char c = peek();
    switch (c) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"':
        v.kind_ = JsonValue::Kind::String;
        v.string_ = parse_string();
        return v;
      case 't': expect_literal("true"); v.kind_ = JsonValue::Kind::Bool; v.bool_ = true; return v;
      case 'f': expect_literal("false"); v.kind_ = JsonValue::Kind::Bool; v.bool_ = false; return v;
      case 'n': expect_literal("null"); return v;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
        error("unexpected character '", printable(c), "'");
    }
  }

  static std::string printable(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    static const char* hex = "0123456789abcdef";
    return std::string("\\x") + hex[u >> 4] + hex[u & 15];
  }

  void check_depth(int depth) {
    if (depth > limits_.max_depth) error("nesting deeper than ", limits_.max_depth, " levels");
  }

  JsonValue parse_object(int depth) {
    check_depth(depth);
    JsonValue v;
    v.kind_ = JsonValue::Kind::Object;
    ++pos_;  // '{'
    skip_ws();
    if (!at_end() && peek() == '}') { ++pos_; return v; }
    std::unordered_set<std::string> seen;  // a hash set keeps duplicate detection linear in hostile headers
    for (;;) {
      skip_ws();
      if (at_end() || peek() != '"') error("expected a string key");
      size_t key_pos = pos_;
      std::string key = parse_string();
      if (!seen.insert(key).second) error_at(key_pos, "duplicate key \"", key, "\"");
      skip_ws();
      if (at_end() || peek() != ':') error("expected ':' after an object key");
      ++pos_;
      skip_ws();
      JsonValue member = parse_value(depth);
      v.members_.emplace_back(std::move(key), std::move(member));
      skip_ws();
      if (at_end()) error("unexpected end of input inside an object");
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == '}') { ++pos_; return v; }
      error("expected ',' or '}' in an object");
    }
  }

  JsonValue parse_array(int depth) {
    check_depth(depth);
    JsonValue v;
    v.kind_ = JsonValue::Kind::Array;
    ++pos_;  // '['
    skip_ws();
    if (!at_end() && peek() == ']') { ++pos_; return v; }
    for (;;) {
      skip_ws();
      v.items_.push_back(parse_value(depth));
      skip_ws();
      if (at_end()) error("unexpected end of input inside an array");
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == ']') { ++pos_; return v; }
      error("expected ',' or ']' in an array");
    }
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  uint32_t parse_hex4() {
    if (text_.size() - pos_ < 4) error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else error_at(pos_ - 1, "invalid hex digit in a \\u escape");
    }
    return v;
  }

  // Copies one UTF-8 encoded code point (lead byte at pos_) into out, rejecting overlong forms, surrogates and
  // code points above U+10FFFF.
  void copy_utf8_sequence(std::string& out) {
    size_t start = pos_;
    unsigned char lead = static_cast<unsigned char>(text_[pos_]);
    int extra;
    uint32_t cp;
    if (lead >= 0xc2 && lead <= 0xdf) { extra = 1; cp = lead & 0x1f; }
    else if (lead >= 0xe0 && lead <= 0xef) { extra = 2; cp = lead & 0x0f; }
    else if (lead >= 0xf0 && lead <= 0xf4) { extra = 3; cp = lead & 0x07; }
    else error("invalid UTF-8 byte in a string");
    if (text_.size() - pos_ <= static_cast<size_t>(extra)) error("truncated UTF-8 sequence in a string");
    for (int i = 1; i <= extra; ++i) {
      unsigned char c = static_cast<unsigned char>(text_[pos_ + static_cast<size_t>(i)]);
      if ((c & 0xc0) != 0x80) error_at(pos_ + static_cast<size_t>(i), "invalid UTF-8 continuation byte in a string");
      cp = (cp << 6) | (c & 0x3f);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      error("invalid UTF-8 sequence (overlong, surrogate or beyond U+10FFFF) in a string");
    pos_ += static_cast<size_t>(extra) + 1;
    out.append(text_.data() + start, pos_ - start);
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (at_end()) error("unterminated string");
      unsigned char c = static_cast<unsigned char>(peek());
      if (c == '"') { ++pos_; return out; }
      if (c < 0x20) error("unescaped control character in a string");
      if (c >= 0x80) { copy_utf8_sequence(out); continue; }
      if (c != '\\') { out += static_cast<char>(c); ++pos_; continue; }
      ++pos_;
      if (at_end()) error("unterminated escape in a string");
      char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          size_t esc_pos = pos_ - 2;
          uint32_t cp = parse_hex4();
          if (cp >= 0xdc00 && cp <= 0xdfff) error_at(esc_pos, "lone low surrogate in a \\u escape");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (text_.size() - pos_ < 2 || text_[pos_] != '\\' || text_[pos_ + 1] != 'u')
              error_at(esc_pos, "high surrogate not followed by a low surrogate");
            pos_ += 2;
            uint32_t lo = parse_hex4();
            if (lo < 0xdc00 || lo > 0xdfff) error_at(esc_pos, "high surrogate not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          }
          append_utf8(out, cp);
          break;
        }
        default: error_at(pos_ - 1, "invalid escape '\\", printable(e), "'");
      }
    }
  }

  JsonValue parse_number() {
    size_t start = pos_;
    bool negative = false;
    if (peek() == '-') { negative = true; ++pos_; }
    if (at_end() || !(peek() >= '0' && peek() <= '9')) error("expected a digit");
    // Integer part: magnitude accumulated in uint64 with overflow detection.
    uint64_t magnitude = 0;
    bool int_overflow = false;
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') error("leading zeros are not allowed");
    } else {
      while (!at_end() && peek() >= '0' && peek() <= '9') {
        uint64_t d = static_cast<uint64_t>(peek() - '0');
        if (magnitude > (UINT64_MAX - d) / 10) int_overflow = true;
        else magnitude = magnitude * 10 + d;
        ++pos_;
      }
    }
    bool is_integer = true;
    if (!at_end() && peek() == '.') {
      is_integer = false;
      ++pos_;
      if (at_end() || !(peek() >= '0' && peek() <= '9')) error("expected a digit after '.'");
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      is_integer = false;
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (at_end() || !(peek() >= '0' && peek() <= '9')) error("expected a digit in the exponent");
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
    }
    JsonValue v;
    const uint64_t int64_max = static_cast<uint64_t>(INT64_MAX);
    if (is_integer && !int_overflow && (negative ? magnitude <= int64_max + 1 : magnitude <= int64_max)) {
      v.kind_ = JsonValue::Kind::Int;
      v.int_ = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
      return v;
    }
    // Doubles go through strtod. strtod follows LC_NUMERIC, which a host process may have changed, so the '.' is
    // swapped for the current locale's decimal point first.
    std::string token(text_.substr(start, pos_ - start));
    const char* decimal_point = std::localeconv()->decimal_point;
    if (decimal_point && std::string(decimal_point) != ".") {
      size_t dot = token.find('.');
      if (dot != std::string::npos) token.replace(dot, 1, decimal_point);
    }
    errno = 0;
    char* end = nullptr;
    double d = std::strtod(token.c_str(), &end);
    if (end != token.c_str() + token.size()) error_at(start, "malformed number");
    if (errno == ERANGE && std::isinf(d)) error_at(start, "number out of range");
    v.kind_ = JsonValue::Kind::Double;
    v.double_ = d;
    return v;
  }

  std::string_view text_;
  const std::string& source_;
  const JsonLimits& limits_;
  size_t pos_ = 0;
};

JsonValue parse_json(std::string_view text, const std::string& source, const JsonLimits& limits) {
  return JsonParser(text, source, limits).parse_document();
}

void append_json_string(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

}  // namespace showo2::weights

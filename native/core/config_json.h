// Typed readers for config.json fields, shared by every component's config struct (Qwen2Config, SiglipConfig,
// FlowHeadConfig, WanVaeConfig, Showo2Config).
//
// Each reader names the field by its full path ("llm_config.num_key_value_heads") and the file it came from, so a
// bad config is one ERR_INVALID_ARGUMENT that says exactly what to fix. Fields absent from the JSON keep the caller's
// default: configs are read as "defaults (or a preset) overridden by what the file says".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "weights/json.h"

namespace showo2 {

class ConfigReader {
 public:
  // `object` must be a JSON object (ERR_INVALID_ARGUMENT otherwise); `path` is its location ("" for the root,
  // "llm_config" for a nested object); `source` names the file for messages.
  ConfigReader(const weights::JsonValue& object, std::string source, std::string path = "");

  bool has(const char* field) const;
  const weights::JsonValue* find(const char* field) const { return object_->find(field); }
  // A nested object (ERR_INVALID_ARGUMENT when present but not an object); nullptr when absent.
  const weights::JsonValue* find_object(const char* field) const;
  ConfigReader child(const weights::JsonValue& object, const char* field) const;

  // Each reader leaves `*out` untouched when the field is absent (or JSON null) and fails on a wrong type.
  void read(const char* field, int64_t* out) const;
  void read(const char* field, double* out) const;
  void read(const char* field, float* out) const;
  void read(const char* field, bool* out) const;
  void read(const char* field, std::string* out) const;
  void read(const char* field, std::vector<int64_t>* out) const;
  void read(const char* field, std::vector<double>* out) const;
  void read(const char* field, std::vector<float>* out) const;
  void read(const char* field, std::vector<bool>* out) const;

  // "llm_config.hidden_size (config.json)"-style name for messages.
  std::string name(const char* field) const;
  const std::string& source() const { return source_; }
  const std::string& path() const { return path_; }

  // Throws ERR_INVALID_ARGUMENT "<source>: <path.field>: <message>".
  [[noreturn]] void fail_field(const char* field, const std::string& message) const;

 private:
  const weights::JsonValue* object_;
  std::string source_;
  std::string path_;
};

// The largest value a size or count in a config.json may take: 2^20 = 1,048,576 (widths, heads, layers, vocabulary,
// context length, latent grid, ...). The released models stay far below it (vocabulary 151,669; widths up to 18,944;
// context 32,768), and the bound keeps every size derived from up to three fields (the image resolution, a weight's
// element count, a position table) inside int64: without it a hostile config.json overflows them, which is undefined
// behaviour, while the model is being built and before its weights are looked at.
constexpr int64_t kMaxConfigSize = int64_t{1} << 20;
inline bool is_config_size(int64_t value) { return value > 0 && value <= kMaxConfigSize; }
// "expected a positive integer up to 1048576 but got <value>": the message for a value that is not a config size.
std::string config_size_error(int64_t value);

// Parses `text` as a JSON object (ERR_CORRUPT_FILE for invalid JSON, ERR_INVALID_ARGUMENT when not an object).
weights::JsonValue parse_config_json(const std::string& text, const std::string& source);

// Throws ERR_INVALID_ARGUMENT "<source>: <field>: expected <what> but got <value>" unless `ok`.
void require_config(bool ok, const std::string& source, const std::string& field, const std::string& expected,
                    const std::string& got);

}  // namespace showo2

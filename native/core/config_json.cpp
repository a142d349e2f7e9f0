#include "config_json.h"

#include <cmath>
#include <sstream>

#include "error.h"

namespace showo2 {

ConfigReader::ConfigReader(const weights::JsonValue& object, std::string source, std::string path)
    : object_(&object), source_(std::move(source)), path_(std::move(path)) {
  if (!object.is_object())
    fail(ErrorCode::InvalidArgument, source_, ": ", path_.empty() ? std::string("config") : path_,
         ": expected a JSON object but got ", object.kind_name());
}

std::string ConfigReader::name(const char* field) const { return path_.empty() ? field : path_ + "." + field; }

void ConfigReader::fail_field(const char* field, const std::string& message) const {
  fail(ErrorCode::InvalidArgument, source_, ": ", name(field), ": ", message);
}

bool ConfigReader::has(const char* field) const {
  const auto* v = object_->find(field);
  return v && !v->is_null();
}

const weights::JsonValue* ConfigReader::find_object(const char* field) const {
  const auto* v = object_->find(field);
  if (!v || v->is_null()) return nullptr;
  if (!v->is_object()) fail_field(field, std::string("expected an object but got ") + v->kind_name());
  return v;
}

ConfigReader ConfigReader::child(const weights::JsonValue& object, const char* field) const {
  return ConfigReader(object, source_, name(field));
}

namespace {

const weights::JsonValue* present(const weights::JsonValue* object, const char* field) {
  const auto* v = object->find(field);
  return v && !v->is_null() ? v : nullptr;
}

}  // namespace

void ConfigReader::read(const char* field, int64_t* out) const {
  const auto* v = present(object_, field);
  if (!v) return;
  // Python writes integral floats (e.g. 1e6 as 1000000.0) in some configs; accept an exactly integral number.
  if (v->is_int()) {
    *out = v->as_int();
  } else if (v->is_number() && std::floor(v->as_double()) == v->as_double() && std::fabs(v->as_double()) < 9.0e15) {
    *out = static_cast<int64_t>(v->as_double());
  } else {
    fail_field(field, std::string("expected an integer but got ") + v->kind_name());
  }
}

void ConfigReader::read(const char* field, double* out) const {
  const auto* v = present(object_, field);
  if (!v) return;
  if (!v->is_number()) fail_field(field, std::string("expected a number but got ") + v->kind_name());
  *out = v->as_double();
}

void ConfigReader::read(const char* field, float* out) const {
  double d = *out;
  read(field, &d);
  *out = static_cast<float>(d);
}

void ConfigReader::read(const char* field, bool* out) const {
  const auto* v = present(object_, field);
  if (!v) return;
  if (!v->is_bool()) fail_field(field, std::string("expected true or false but got ") + v->kind_name());
  *out = v->as_bool();
}

void ConfigReader::read(const char* field, std::string* out) const {
  const auto* v = present(object_, field);
  if (!v) return;
  if (!v->is_string()) fail_field(field, std::string("expected a string but got ") + v->kind_name());
  *out = v->as_string();
}

namespace {

template <typename T, typename ReadOne>
void read_array(const ConfigReader& r, const weights::JsonValue* object, const char* field, std::vector<T>* out,
                ReadOne read_one) {
  const auto* v = present(object, field);
  if (!v) return;
  if (!v->is_array()) r.fail_field(field, std::string("expected an array but got ") + v->kind_name());
  std::vector<T> values;
  for (size_t i = 0; i < v->items().size(); ++i) {
    const auto& item = v->items()[i];
    T value{};
    if (!read_one(item, &value))
      r.fail_field(field, "element " + std::to_string(i) + ": unexpected " + item.kind_name());
    values.push_back(value);
  }
  *out = std::move(values);
}

}  // namespace

void ConfigReader::read(const char* field, std::vector<int64_t>* out) const {
  read_array(*this, object_, field, out, [](const weights::JsonValue& v, int64_t* x) {
    if (!v.is_int()) return false;
    *x = v.as_int();
    return true;
  });
}

void ConfigReader::read(const char* field, std::vector<double>* out) const {
  read_array(*this, object_, field, out, [](const weights::JsonValue& v, double* x) {
    if (!v.is_number()) return false;
    *x = v.as_double();
    return true;
  });
}

void ConfigReader::read(const char* field, std::vector<float>* out) const {
  read_array(*this, object_, field, out, [](const weights::JsonValue& v, float* x) {
    if (!v.is_number()) return false;
    *x = static_cast<float>(v.as_double());
    return true;
  });
}

void ConfigReader::read(const char* field, std::vector<bool>* out) const {
  std::vector<char> flags;
  read_array(*this, object_, field, &flags, [](const weights::JsonValue& v, char* x) {
    if (!v.is_bool()) return false;
    *x = v.as_bool() ? 1 : 0;
    return true;
  });
  if (present(object_, field)) out->assign(flags.begin(), flags.end());
}

weights::JsonValue parse_config_json(const std::string& text, const std::string& source) {
  weights::JsonValue root = weights::parse_json(text, source);
  if (!root.is_object()) fail(ErrorCode::InvalidArgument, source, ": expected a JSON object but got ", root.kind_name());
  return root;
}

std::string config_size_error(int64_t value) {
  return "expected a positive integer up to " + std::to_string(kMaxConfigSize) + " but got " + std::to_string(value);
}

void require_config(bool ok, const std::string& source, const std::string& field, const std::string& expected,
                    const std::string& got) {
  if (!ok) fail(ErrorCode::InvalidArgument, source, ": ", field, ": expected ", expected, " but got ", got);
}

}  // namespace showo2

// Test-side reader of what the native core sends: CBOR envelopes, LZ4 frames and
// transit buffers, parsed generically through the stream's UDT metadata. It is
// written independently of the encoder so the tests check the wire, not the code.
#pragma once
#include <lz4frame.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace wire {

struct Cbor;
using CborMap = std::map<std::string, Cbor>;
struct Cbor {
  std::variant<std::monostate, int64_t, bool, std::string, std::vector<uint8_t>, std::vector<Cbor>, CborMap> v;
  const Cbor& operator[](const std::string& k) const {
    auto& m = std::get<CborMap>(v);
    auto it = m.find(k);
    if (it == m.end()) throw std::runtime_error("missing key " + k);
    return it->second;
  }
  const std::string& str() const { return std::get<std::string>(v); }
  int64_t num() const { return std::get<int64_t>(v); }
  const std::vector<Cbor>& arr() const { return std::get<std::vector<Cbor>>(v); }
  const CborMap& map() const { return std::get<CborMap>(v); }
  bool is_null() const { return std::holds_alternative<std::monostate>(v); }
  // Byte string, or an array of integers (Rust sinks <= 0.28).
  std::vector<uint8_t> bytes() const {
    if (auto* b = std::get_if<std::vector<uint8_t>>(&v)) return *b;
    std::vector<uint8_t> out;
    for (auto& c : arr()) out.push_back(uint8_t(c.num()));
    return out;
  }
};

class CborReader {
 public:
  CborReader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  Cbor read() {
    uint8_t ib = byte();
    uint8_t major = ib >> 5, info = ib & 31;
    if (ib == 0xf4 || ib == 0xf5) return Cbor{bool(ib == 0xf5)};
    if (ib == 0xf6) return Cbor{};
    bool indefinite = info == 31;
    uint64_t n = indefinite ? 0 : arg(info);
    switch (major) {
      case 0: return Cbor{int64_t(n)};
      case 1: return Cbor{-1 - int64_t(n)};
      case 2: case 3: {
        std::string s;
        if (indefinite) {
          while (peek() != 0xff) { Cbor c = read(); s += major == 3 ? c.str() : std::string(c.bytes().begin(), c.bytes().end()); }
          ++p_;
        } else {
          need(n);
          s.assign(reinterpret_cast<const char*>(p_), n);
          p_ += n;
        }
        if (major == 3) return Cbor{s};
        return Cbor{std::vector<uint8_t>(s.begin(), s.end())};
      }
      case 4: {
        std::vector<Cbor> a;
        for (uint64_t i = 0; indefinite ? peek() != 0xff : i < n; ++i) a.push_back(read());
        if (indefinite) ++p_;
        return Cbor{a};
      }
      case 5: {
        CborMap m;
        for (uint64_t i = 0; indefinite ? peek() != 0xff : i < n; ++i) {
          std::string k = read().str();
          m[k] = read();
        }
        if (indefinite) ++p_;
        return Cbor{m};
      }
    }
    throw std::runtime_error("unsupported CBOR item");
  }
  bool done() const { return p_ == end_; }

 private:
  void need(uint64_t n) { if (uint64_t(end_ - p_) < n) throw std::runtime_error("truncated CBOR"); }
  uint8_t byte() { need(1); return *p_++; }
  uint8_t peek() { need(1); return *p_; }
  uint64_t arg(uint8_t info) {
    if (info < 24) return info;
    int n = info == 24 ? 1 : info == 25 ? 2 : info == 26 ? 4 : info == 27 ? 8 : -1;
    if (n < 0) throw std::runtime_error("bad CBOR length");
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | byte();
    return v;
  }
  const uint8_t* p_;
  const uint8_t* end_;
};

inline Cbor parse_cbor(const std::vector<uint8_t>& b) {
  CborReader r(b.data(), b.size());
  Cbor c = r.read();
  if (!r.done()) throw std::runtime_error("trailing bytes after CBOR item");
  return c;
}

inline std::vector<uint8_t> lz4_decompress(const std::vector<uint8_t>& frame) {
  LZ4F_dctx* ctx;
  LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION);
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  size_t pos = 0;
  while (pos < frame.size()) {
    size_t dst = sizeof buf, src = frame.size() - pos;
    size_t r = LZ4F_decompress(ctx, buf, &dst, frame.data() + pos, &src, nullptr);
    if (LZ4F_isError(r)) {
      LZ4F_freeDecompressionContext(ctx);
      throw std::runtime_error(LZ4F_getErrorName(r));
    }
    out.insert(out.end(), buf, buf + dst);
    pos += src;
    if (r == 0) break;
  }
  LZ4F_freeDecompressionContext(ctx);
  return out;
}

// A decoded value: integer, float, string, or an object (type name + members).
struct Value;
using Members = std::map<std::string, Value>;
struct Value {
  std::variant<std::monostate, uint64_t, double, std::string, std::shared_ptr<Members>> v;
  std::string type;  // for objects
  const Value& operator[](const std::string& k) const {
    auto& m = *std::get<std::shared_ptr<Members>>(v);
    auto it = m.find(k);
    if (it == m.end()) throw std::runtime_error("missing member " + k + " in " + type);
    return it->second;
  }
  uint64_t u() const { return std::get<uint64_t>(v); }
  double f() const { return std::get<double>(v); }
  const std::string& s() const { return std::get<std::string>(v); }
  const Members& members() const { return *std::get<std::shared_ptr<Members>>(v); }
};

struct Udt {
  std::string name;
  uint32_t size;
  bool is_reference;
  struct Member { std::string name, type_name; uint32_t offset, size; bool is_reference; };
  std::vector<Member> members;
};
inline std::vector<Udt> parse_udts(const Cbor& a) {
  std::vector<Udt> out;
  for (auto& u : a.arr()) {
    Udt t{u["name"].str(), uint32_t(u["size"].num()), std::get<bool>(u["is_reference"].v), {}};
    for (auto& m : u["members"].arr())
      t.members.push_back({m["name"].str(), m["type_name"].str(), uint32_t(m["offset"].num()), uint32_t(m["size"].num()),
                           std::get<bool>(m["is_reference"].v)});
    out.push_back(t);
  }
  return out;
}

class TransitReader {
 public:
  TransitReader(std::vector<Udt> deps, std::vector<Udt> objs) : deps_(std::move(deps)), objs_(std::move(objs)) {}

  std::vector<Value> read_block(const std::vector<uint8_t>& dep_bytes, const std::vector<uint8_t>& obj_bytes) {
    table_.clear();
    for_each(dep_bytes, deps_, [&](const Udt& u, const uint8_t* b, size_t n) {
      uint64_t id = load<uint64_t>(b, n, 0);
      if (table_.count(id)) throw std::runtime_error("duplicate dependency id");
      if (u.name == "StaticString") table_[id] = str(std::string(reinterpret_cast<const char*>(b + 8), n - 8));
      else if (u.name == "StaticStringDependency") table_[id] = dynstring(b, n, 8);
      else if (u.name == "PropertySetDependency") {
        uint32_t count = load<uint32_t>(b, n, 8);
        const Udt& prop = find(deps_, "Property");
        auto m = std::make_shared<Members>();
        for (uint32_t i = 0; i < count; ++i) {
          Value p = pod(deps_, prop, b + 12 + i * prop.size, prop.size);
          (*m)[p["name"].s()] = p["value"];
        }
        table_[id] = obj("PropertySet", m);
      } else {
        table_[id] = pod(deps_, u, b, n);
      }
    });
    std::vector<Value> events;
    for_each(obj_bytes, objs_, [&](const Udt& u, const uint8_t* b, size_t n) { events.push_back(object(u, b, n)); });
    return events;
  }

 private:
  template <class F>
  void for_each(const std::vector<uint8_t>& buf, const std::vector<Udt>& udts, F&& f) {
    size_t pos = 0;
    while (pos < buf.size()) {
      uint8_t index = buf[pos++];
      if (index >= udts.size()) throw std::runtime_error("unknown type index " + std::to_string(index));
      const Udt& u = udts[index];
      size_t n = u.size;
      if (!n) { n = load<uint32_t>(buf.data(), buf.size(), pos); pos += 4; }
      if (pos + n > buf.size()) throw std::runtime_error("record past the end of the buffer");
      f(u, buf.data() + pos, n);
      pos += n;
    }
  }
  template <class T>
  static T load(const uint8_t* b, size_t n, size_t off) {
    if (off + sizeof(T) > n) throw std::runtime_error("read past the end of a record");
    T v;
    memcpy(&v, b + off, sizeof v);
    return v;
  }
  static Value str(std::string s) { return Value{s, ""}; }
  static Value obj(std::string type, std::shared_ptr<Members> m) { return Value{m, type}; }
  static const Udt& find(const std::vector<Udt>& udts, const std::string& name) {
    for (auto& u : udts) if (u.name == name) return u;
    throw std::runtime_error("no UDT named " + name);
  }
  const Value& dep(uint64_t id) {
    auto it = table_.find(id);
    if (it == table_.end()) throw std::runtime_error("missing dependency " + std::to_string(id));
    return it->second;
  }
  Value dynstring(const uint8_t* b, size_t n, size_t off, size_t* used = nullptr) {
    uint8_t codec = load<uint8_t>(b, n, off);
    uint32_t len = load<uint32_t>(b, n, off + 1);
    if (off + 5 + len > n) throw std::runtime_error("string past the end of a record");
    std::string s;
    if (codec == 1) {  // UTF-16LE, ASCII subset is enough for the tests
      for (uint32_t i = 0; i + 1 < len; i += 2) s.push_back(char(b[off + 5 + i]));
    } else {
      s.assign(reinterpret_cast<const char*>(b + off + 5), len);
    }
    if (used) *used = 5 + len;
    return str(s);
  }
  Value pod(const std::vector<Udt>& udts, const Udt& u, const uint8_t* b, size_t n) {
    auto m = std::make_shared<Members>();
    for (auto& mb : u.members) {
      if (mb.offset + mb.size > n) throw std::runtime_error("member past the end of " + u.name);
      Value v;
      if (mb.is_reference) v = dep(load<uint64_t>(b, n, mb.offset));
      else if (mb.type_name == "u8" || mb.type_name == "uint8") v = Value{uint64_t(b[mb.offset]), ""};
      else if (mb.type_name == "u32" || mb.type_name == "uint32") v = Value{uint64_t(load<uint32_t>(b, n, mb.offset)), ""};
      else if (mb.type_name == "f64") v = Value{load<double>(b, n, mb.offset), ""};
      else if (mb.size == 8 && (mb.type_name == "u64" || mb.type_name == "i64" || mb.type_name == "uint64" || mb.type_name == "int64" || mb.type_name == "usize"))
        v = Value{load<uint64_t>(b, n, mb.offset), ""};
      else v = pod(udts, find(udts, mb.type_name), b + mb.offset, mb.size);
      (*m)[mb.name] = v;
    }
    if (u.is_reference) return (*m)["id"];
    return obj(u.name, m);
  }
  Value object(const Udt& u, const uint8_t* b, size_t n) {
    if (u.size) return pod(objs_, u, b, n);
    auto m = std::make_shared<Members>();
    auto u64 = [&](size_t off) { return Value{load<uint64_t>(b, n, off), ""}; };
    if (u.name == "LogStringEventV2") {
      (*m)["desc"] = dep(load<uint64_t>(b, n, 0));
      (*m)["time"] = u64(8);
      (*m)["msg"] = dynstring(b, n, 16);
    } else if (u.name == "TaggedLogString") {
      (*m)["desc"] = dep(load<uint64_t>(b, n, 0));
      (*m)["properties"] = dep(load<uint64_t>(b, n, 8));
      (*m)["time"] = u64(16);
      (*m)["msg"] = dynstring(b, n, 24);
    } else if (u.name == "LogStringInteropEventV3") {
      (*m)["time"] = u64(0);
      (*m)["level"] = Value{uint64_t(load<uint8_t>(b, n, 8)), ""};
      (*m)["target"] = dep(load<uint64_t>(b, n, 9));
      (*m)["msg"] = dynstring(b, n, 25);
    } else if (u.name == "ImageEvent") {
      size_t a, c;
      (*m)["time"] = u64(0);
      (*m)["name"] = dynstring(b, n, 8, &a);
      (*m)["format"] = dynstring(b, n, 8 + a, &c);
      uint32_t len = load<uint32_t>(b, n, 8 + a + c);
      (*m)["data_len"] = Value{uint64_t(len), ""};
    }
    return obj(u.name, m);
  }

  std::vector<Udt> deps_, objs_;
  std::map<uint64_t, Value> table_;
};

}  // namespace wire

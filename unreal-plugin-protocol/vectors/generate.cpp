// mm-vectors: writes (or checks) the golden test vectors of the micromegas wire protocol.
//
//   mm-vectors --out <dir>     write every vector file under <dir>
//   mm-vectors --check <dir>   regenerate in memory; fail, naming the file, if any byte of a
//                              checked-in file differs, a file is missing, or an unknown file lies there
//
// Every body is produced by the native encoder (BlockBuilder, encode_process/stream/block,
// lz4_frame_compress) from semantic events built here; the expected JSON is written from the same
// semantic events, never by decoding the bytes. Output is deterministic: UUIDs come from a
// std::mt19937_64 seeded by the vector's name, and all times and ticks are fixed.
// Transit-level corrupt vectors are hand-built byte by byte. See README.md for the contract.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "encode/block_builder.h"
#include "encode/cbor.h"
#include "encode/envelope.h"
#include "encode/lz4_frame.h"
#include "encode/text_format.h"
#include "micromegas/protocol/events.gen.h"

namespace {

using Bytes = std::vector<uint8_t>;
using mm::Properties;

// ---------------------------------------------------------------------------------------------
// Minimal ordered JSON value, printed with 2-space indentation.
struct J {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  std::string text;  // number literal or string value
  bool flag = false;
  std::vector<J> items;
  std::vector<std::pair<std::string, J>> fields;

  static J null() { return J{}; }
  static J str(std::string s) {
    J j;
    j.kind = kString;
    j.text = std::move(s);
    return j;
  }
  static J num(uint64_t v) {  // small integers (u8, u32, counts)
    J j;
    j.kind = kNumber;
    j.text = std::to_string(v);
    return j;
  }
  static J f64(double v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    J j;
    j.kind = kNumber;
    j.text.assign(buf, r.ptr);
    return j;
  }
  static J dec(int64_t v) { return str(std::to_string(v)); }     // i64 as a decimal string
  static J decu(uint64_t v) { return str(std::to_string(v)); }   // u64 as a decimal string
  static J array() {
    J j;
    j.kind = kArray;
    return j;
  }
  static J object() {
    J j;
    j.kind = kObject;
    return j;
  }
  J& set(std::string k, J v) {
    fields.emplace_back(std::move(k), std::move(v));
    return *this;
  }
  J& push(J v) {
    items.push_back(std::move(v));
    return *this;
  }

  void print(std::string& o, int indent) const {
    auto nl = [&](int n) {
      o.push_back('\n');
      o.append(size_t(n) * 2, ' ');
    };
    switch (kind) {
      case kNull: o += "null"; break;
      case kBool: o += flag ? "true" : "false"; break;
      case kNumber: o += text; break;
      case kString: quote(o, text); break;
      case kArray:
        if (items.empty()) {
          o += "[]";
          break;
        }
        o.push_back('[');
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) o.push_back(',');
          nl(indent + 1);
          items[i].print(o, indent + 1);
        }
        nl(indent);
        o.push_back(']');
        break;
      case kObject:
        if (fields.empty()) {
          o += "{}";
          break;
        }
        o.push_back('{');
        for (size_t i = 0; i < fields.size(); ++i) {
          if (i) o.push_back(',');
          nl(indent + 1);
          quote(o, fields[i].first);
          o += ": ";
          fields[i].second.print(o, indent + 1);
        }
        nl(indent);
        o.push_back('}');
        break;
    }
  }
  static void quote(std::string& o, const std::string& s) {
    o.push_back('"');
    for (unsigned char c : s) {
      if (c == '"') o += "\\\"";
      else if (c == '\\') o += "\\\\";
      else if (c == '\n') o += "\\n";
      else if (c == '\t') o += "\\t";
      else if (c < 0x20) {
        char b[8];
        snprintf(b, sizeof b, "\\u%04x", c);
        o += b;
      } else o.push_back(char(c));  // UTF-8 passes through
    }
    o.push_back('"');
  }
  std::string dump() const {
    std::string o;
    print(o, 0);
    o.push_back('\n');
    return o;
  }
};

J props_json(const Properties& p) {
  J o = J::object();
  for (auto& [k, v] : p) o.set(k, J::str(v));
  return o;
}

std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(d[p[i] >> 4]);
    s.push_back(d[p[i] & 15]);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Deterministic ids and times.

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}
// A UUID that depends only on `name`, so adding vectors never changes existing ones.
std::string uuid(const std::string& name) {
  std::mt19937_64 rng(fnv1a(name));
  return mm::Uuid::v4(rng).str();
}

constexpr int64_t kSec = 1000000000;
constexpr int64_t kEpoch2026 = 1767225600LL * kSec;  // 2026-01-01T00:00:00Z

// ---------------------------------------------------------------------------------------------
// Stable storage for everything the transit records point to while a block is built.
struct Arena {
  std::deque<std::string> strings;
  std::deque<std::u16string> wides;
  std::deque<Bytes> blobs;

  const char* s(std::string v) {
    strings.push_back(std::move(v));
    return strings.back().c_str();
  }
  const uint16_t* w(const std::string& utf8) {
    wides.push_back(to_utf16(utf8));
    return reinterpret_cast<const uint16_t*>(wides.back().c_str());
  }
  // Zero-filled (padding included, so copies are deterministic).
  template <class T>
  T* make(size_t n = 1) {
    blobs.emplace_back(sizeof(T) * n, 0);
    return reinterpret_cast<T*>(blobs.back().data());
  }
  static std::u16string to_utf16(const std::string& s) {
    std::u16string out;
    for (size_t i = 0; i < s.size();) {
      unsigned char c = s[i];
      uint32_t cp;
      int n;
      if (c < 0x80) cp = c, n = 1;
      else if ((c >> 5) == 6) cp = c & 0x1f, n = 2;
      else if ((c >> 4) == 14) cp = c & 0x0f, n = 3;
      else cp = c & 0x07, n = 4;
      for (int k = 1; k < n; ++k) cp = (cp << 6) | (uint8_t(s[i + k]) & 0x3f);
      i += n;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        out.push_back(char16_t(0xd800 + (cp >> 10)));
        out.push_back(char16_t(0xdc00 + (cp & 0x3ff)));
      } else {
        out.push_back(char16_t(cp));
      }
    }
    return out;
  }
};

template <class T>
T zero() {
  T t;
  memset(&t, 0, sizeof t);
  return t;
}

void put_u32(Bytes& b, uint32_t v) {
  uint8_t x[4];
  memcpy(x, &v, 4);
  b.insert(b.end(), x, x + 4);
}
void put_u64(Bytes& b, uint64_t v) {
  uint8_t x[8];
  memcpy(x, &v, 8);
  b.insert(b.end(), x, x + 8);
}
void put_raw(Bytes& b, const void* p, size_t n) {
  const uint8_t* c = static_cast<const uint8_t*>(p);
  b.insert(b.end(), c, c + n);
}
// Dynamic string (§6.1 a): codec, u32 byte length, bytes.
void put_dyn(Bytes& b, uint8_t codec, const void* p, uint32_t len) {
  b.push_back(codec);
  put_u32(b, len);
  put_raw(b, p, len);
}
void put_dyn_utf8(Bytes& b, const std::string& s) { put_dyn(b, MM_CODEC_UTF8, s.data(), uint32_t(s.size())); }
void put_dyn_wide(Bytes& b, const std::string& utf8) {
  std::u16string w = Arena::to_utf16(utf8);
  put_dyn(b, MM_CODEC_WIDE, w.data(), uint32_t(w.size() * 2));
}

// The transit records of one block (with real pointers) and the events they must decode to.
struct Events {
  std::vector<Bytes> records;
  J json = J::array();

  template <class T>
  void pod(uint8_t index, const T& v, J j) {
    Bytes r(1 + sizeof(T));
    r[0] = index;
    memcpy(r.data() + 1, &v, sizeof v);
    records.push_back(std::move(r));
    json.push(std::move(j));
  }
  // A record that decodes to nothing (an unknown variable-size object, skipped by readers).
  void raw(Bytes r) { records.push_back(std::move(r)); }
  template <class H>
  void var(uint8_t index, const H& header, const Bytes& tail, J j) {
    Bytes r;
    r.push_back(index);
    put_u32(r, uint32_t(sizeof(H) + tail.size()));
    put_raw(r, &header, sizeof header);
    r.insert(r.end(), tail.begin(), tail.end());
    records.push_back(std::move(r));
    json.push(std::move(j));
  }
};

J ev(const char* type) { return std::move(J::object().set("type", J::str(type))); }

// ---------------------------------------------------------------------------------------------
// Output set.

struct Output {
  std::map<std::string, Bytes> files;
  J manifest = J::array();

  void add(const std::string& path, Bytes b) {
    if (!files.emplace(path, std::move(b)).second) throw std::logic_error("duplicate file " + path);
  }
  void add_json(const std::string& path, const J& j) {
    std::string s = j.dump();
    add(path, Bytes(s.begin(), s.end()));
  }
  void vector(const std::string& name, const std::string& producer, const char* stream, const char* route,
              const std::string& body, const std::string& stream_info, const std::string& process_info,
              J expect, const std::string& notes) {
    J v = J::object();
    v.set("name", J::str(name));
    v.set("producer", J::str(producer));
    v.set("stream", stream ? J::str(stream) : J::null());
    v.set("route", J::str(route));
    v.set("body", J::str(body));
    v.set("stream_info", stream_info.empty() ? J::null() : J::str(stream_info));
    v.set("process_info", process_info.empty() ? J::null() : J::str(process_info));
    v.set("expect", std::move(expect));
    v.set("notes", J::str(notes));
    manifest.push(std::move(v));
  }
};

J expect_ok(const std::string& decode) {
  J e = J::object();
  e.set("gateway", std::move(J::object().set("status", J::num(200))));
  e.set("decode", J::str(decode));
  return e;
}
J expect_decode_error(const std::string& error) {
  J e = J::object();
  e.set("gateway", std::move(J::object().set("status", J::num(200))));
  e.set("decode", std::move(J::object().set("error", J::str(error))));
  return e;
}
J expect_rejected(const std::string& reason) {
  J e = J::object();
  e.set("gateway", std::move(J::object().set("status", J::num(400)).set("reason", J::str(reason))));
  return e;
}

// ---------------------------------------------------------------------------------------------
// Producers.

struct Producer {
  std::string name;  // directory and manifest producer
  const mm::Profile* profile;
  mm::ProcessMeta process;
};

J process_json(const mm::ProcessMeta& p, const mm::Profile& profile) {
  J o = J::object();
  o.set("process_id", J::str(p.process_id));
  o.set("exe", J::str(p.exe));
  o.set("username", J::str(p.username));
  o.set("realname", J::str(p.realname));
  o.set("computer", J::str(p.computer));
  o.set("distro", J::str(p.distro));
  o.set("cpu_brand", J::str(p.cpu_brand));
  o.set("tsc_frequency", J::dec(p.tsc_frequency));
  o.set("start_time", J::str(mm::format_time(p.start_time_ns, profile.start_time)));
  o.set("start_ticks", J::dec(p.start_ticks));
  o.set("parent_process_id", !p.parent_process_id.empty() || profile.parent_as_empty_string
                                 ? J::str(p.parent_process_id)
                                 : J::null());
  o.set("properties", props_json(p.properties));
  return o;
}

J stream_json(const std::string& stream_id, const std::string& process_id, const char* tag,
              const Properties& props) {
  J o = J::object();
  o.set("stream_id", J::str(stream_id));
  o.set("process_id", J::str(process_id));
  o.set("tags", std::move(J::array().push(J::str(tag))));
  o.set("properties", props_json(props));
  return o;
}

void emit_process(Output& out, const Producer& p) {
  Bytes body;
  mm::encode_process(p.process, *p.profile, body);
  std::string dir = p.name + "/";
  out.add(dir + "process.cbor", body);
  out.add_json(dir + "process.json", std::move(J::object().set("process", process_json(p.process, *p.profile))));
  std::string notes = p.profile == &mm::kUnrealProfile
                          ? "indefinite-length maps; parent_process_id \"\"; millisecond Z start_time"
                      : p.profile == &mm::kRustLegacyProfile ? "parent_process_id \"\" (Rust <= 0.20 style)"
                                                              : "definite-length maps; parent_process_id null";
  out.vector(p.name + "-process", p.name, nullptr, "insert_process", dir + "process.cbor", "", dir + "process.cbor",
             expect_ok(dir + "process.json"), notes);
}

struct StreamOut {
  std::string id;
  std::string stream_cbor;
  J json;
};

StreamOut emit_stream(Output& out, const Producer& p, const mm_stream_schema& schema, const Properties& props,
                      const std::string& fixed_id = "") {
  StreamOut s;
  std::string dir = p.name + "/" + schema.tag + "/";
  s.id = fixed_id.empty() ? uuid(dir + "stream") : fixed_id;
  Bytes body;
  mm::encode_stream(p.process.process_id, s.id, schema, props, *p.profile, body);
  s.stream_cbor = dir + "stream.cbor";
  out.add(s.stream_cbor, body);
  s.json = stream_json(s.id, p.process.process_id, schema.tag, props);
  out.add_json(dir + "stream.json", std::move(J::object().set("stream", s.json)));
  out.vector(p.name + "-" + schema.tag + "-stream", p.name, schema.tag, "insert_stream", s.stream_cbor, "",
             p.name + "/process.cbor", expect_ok(dir + "stream.json"),
             std::string("objects_metadata/dependencies_metadata of the ") + p.name + " " + schema.tag + " table");
  return s;
}

struct BlockSpec {
  std::string file;  // e.g. "block" -> block.cbor / block.json
  int64_t begin_rel_ns, end_rel_ns;  // relative to process start; ticks follow from tsc_frequency
  int64_t object_offset;
  std::string dir = "";   // default: <producer>/<stream tag>/
  std::string name = "";  // default: <producer>-<stream tag>-<file>
};

int64_t ticks_for(const mm::ProcessMeta& p, int64_t rel_ns) {
  return int64_t((__int128)rel_ns * p.tsc_frequency / kSec);
}

struct Built {
  Bytes deps, objs;  // raw transit buffers
  uint32_t nb_objects;
};
Built build(const mm_stream_schema& schema, const Events& e) {
  mm::BlockBuilder b(&schema);
  for (auto& r : e.records) {
    if (b.record_size(r.data(), r.size()) != r.size()) throw std::logic_error("bad record size");
    b.append(r.data(), r.size());
  }
  return {b.dependencies(), b.objects(), b.nb_objects()};
}

void emit_block(Output& out, const Producer& p, const mm_stream_schema& schema, const StreamOut& s,
                const BlockSpec& spec, const Events& e, const std::string& notes) {
  std::string dir = spec.dir.empty() ? p.name + "/" + schema.tag + "/" : spec.dir;
  Built built = build(schema, e);
  mm::BlockMeta meta{uuid(dir + spec.file),
                     s.id,
                     p.process.process_id,
                     p.process.start_time_ns + spec.begin_rel_ns,
                     ticks_for(p.process, spec.begin_rel_ns),
                     p.process.start_time_ns + spec.end_rel_ns,
                     ticks_for(p.process, spec.end_rel_ns),
                     spec.object_offset};
  Bytes deps, objs, body;
  mm::lz4_frame_compress(built.deps.data(), built.deps.size(), p.profile->lz4, deps);
  mm::lz4_frame_compress(built.objs.data(), built.objs.size(), p.profile->lz4, objs);
  mm::encode_block(meta, deps, objs, built.nb_objects, *p.profile, body);
  std::string body_path = dir + spec.file + ".cbor";
  out.add(body_path, body);

  J block = J::object();
  block.set("block_id", J::str(meta.block_id));
  block.set("stream_id", J::str(meta.stream_id));
  block.set("process_id", J::str(meta.process_id));
  block.set("begin_time", J::str(mm::format_time(meta.begin_time_ns, p.profile->block_time)));
  block.set("begin_ticks", J::dec(meta.begin_ticks));
  block.set("end_time", J::str(mm::format_time(meta.end_time_ns, p.profile->block_time)));
  block.set("end_ticks", J::dec(meta.end_ticks));
  block.set("object_offset", J::dec(meta.object_offset));
  block.set("nb_objects", J::num(built.nb_objects));
  J doc = J::object();
  doc.set("process", process_json(p.process, *p.profile));
  doc.set("stream", s.json);
  doc.set("block", std::move(block));
  doc.set("events", e.json);
  out.add_json(dir + spec.file + ".json", doc);
  out.vector(spec.name.empty() ? p.name + "-" + schema.tag + "-" + spec.file : spec.name, p.name, schema.tag,
             "insert_block", body_path,
             s.stream_cbor, p.name + "/process.cbor", expect_ok(dir + spec.file + ".json"), notes);
}

// ---------------------------------------------------------------------------------------------
// Rust-layout events (mm_*), strings with codec 2.

struct RustModel {
  Arena& a;
  const mm::ProcessMeta& p;
  int64_t t(int64_t rel_ns) const { return p.start_ticks + ticks_for(p, rel_ns); }

  mm_LogMetadataRecord* log_desc(uint32_t level, const char* target, const char* fmt, const char* file,
                                 uint32_t line) {
    auto* d = a.make<mm_LogMetadataRecord>();
    d->fmt_str = a.s(fmt);
    d->target = a.s(target);
    d->module_path = a.s(target);
    d->file = a.s(file);
    d->line = line;
    d->level = level;
    return d;
  }
  static J log_desc_json(const mm_LogMetadataRecord* d) {
    J o = J::object();
    o.set("type", J::str("LogMetadataRecord"));
    o.set("fmt_str", J::str(d->fmt_str));
    o.set("target", J::str(d->target));
    o.set("module_path", J::str(d->module_path));
    o.set("file", J::str(d->file));
    o.set("line", J::num(d->line));
    o.set("level", J::num(d->level));
    return o;
  }
  mm_MetricMetadataDependency* metric_desc(const char* name, const char* unit, const char* target, uint32_t line,
                                           uint32_t lod) {
    auto* d = a.make<mm_MetricMetadataDependency>();
    d->name = a.s(name);
    d->unit = a.s(unit);
    d->target = a.s(target);
    d->file = a.s("src/game/stats.rs");
    d->line = line;
    d->lod = lod;
    return d;
  }
  static J metric_desc_json(const mm_MetricMetadataDependency* d) {
    J o = J::object();
    o.set("type", J::str("MetricMetadataDependency"));
    o.set("name", J::str(d->name));
    o.set("unit", J::str(d->unit));
    o.set("target", J::str(d->target));
    o.set("file", J::str(d->file));
    o.set("line", J::num(d->line));
    o.set("lod", J::num(d->lod));
    return o;
  }
  const mm_PropertySet* props(const Properties& kv) {
    auto* arr = a.make<mm_Property>(kv.size());
    for (size_t i = 0; i < kv.size(); ++i) {
      arr[i].name = {a.s(kv[i].first), uint32_t(kv[i].first.size()), MM_CODEC_UTF8};
      arr[i].value = {a.s(kv[i].second), uint32_t(kv[i].second.size()), MM_CODEC_UTF8};
    }
    auto* set = a.make<mm_PropertySet>();
    set->count = kv.size();
    set->properties = arr;
    return set;
  }
  static J props_value(const Properties& kv) {
    return std::move(J::object().set("type", J::str("PropertySet")).set("properties", props_json(kv)));
  }
  mm_StringId sid(const char* s) {
    auto v = zero<mm_StringId>();
    v.id = s;
    v.len = uint32_t(strlen(s));
    return v;
  }
  mm_SpanRecord* span(const char* name, const char* target, const char* file, uint32_t line) {
    auto* d = a.make<mm_SpanRecord>();
    d->name = a.s(name);
    d->target = a.s(target);
    d->module_path = a.s(target);
    d->file = a.s(file);
    d->line = line;
    d->lod = MM_LOD_MED;
    return d;
  }
  static J span_json(const mm_SpanRecord* d) {
    J o = J::object();
    o.set("type", J::str("SpanRecord"));
    o.set("name", J::str(d->name));
    o.set("target", J::str(d->target));
    o.set("module_path", J::str(d->module_path));
    o.set("file", J::str(d->file));
    o.set("line", J::num(d->line));
    o.set("lod", J::num(d->lod));
    return o;
  }
  mm_SpanLocationRecord* location(const char* target, const char* file, uint32_t line) {
    auto* d = a.make<mm_SpanLocationRecord>();
    d->target = a.s(target);
    d->module_path = a.s(target);
    d->file = a.s(file);
    d->line = line;
    d->lod = MM_LOD_MAX;
    return d;
  }
  static J location_json(const mm_SpanLocationRecord* d) {
    J o = J::object();
    o.set("type", J::str("SpanLocationRecord"));
    o.set("target", J::str(d->target));
    o.set("module_path", J::str(d->module_path));
    o.set("file", J::str(d->file));
    o.set("line", J::num(d->line));
    o.set("lod", J::num(d->lod));
    return o;
  }

  // --- log ---
  void static_str(Events& e, const mm_LogMetadataRecord* d, int64_t rel) {
    auto v = zero<mm_LogStaticStrEvent>();
    v.desc = d;
    v.time = t(rel);
    e.pod(MM_LOG_LogStaticStrEvent, v,
          std::move(ev("LogStaticStrEvent").set("desc", log_desc_json(d)).set("time", J::dec(v.time))));
  }
  void string_v2(Events& e, const mm_LogMetadataRecord* d, int64_t rel, const std::string& msg) {
    auto h = zero<mm_LogStringEventV2Header>();
    h.desc = d;
    h.time = t(rel);
    Bytes tail;
    put_dyn_utf8(tail, msg);
    e.var(MM_LOG_LogStringEventV2, h, tail,
          std::move(ev("LogStringEventV2").set("desc", log_desc_json(d)).set("time", J::dec(h.time)).set("msg", J::str(msg))));
  }
  void static_interop(Events& e, const char* target, const char* msg, int64_t rel, uint32_t level) {
    auto v = zero<mm_LogStaticStrInteropEvent>();
    v.target = sid(target);
    v.msg = sid(msg);
    v.time = t(rel);
    v.level = level;
    e.pod(MM_LOG_LogStaticStrInteropEvent, v,
          std::move(ev("LogStaticStrInteropEvent")
                        .set("target", J::str(target))
                        .set("msg", J::str(msg))
                        .set("time", J::dec(v.time))
                        .set("level", J::num(level))));
  }
  void interop_v3(Events& e, const char* target, int64_t rel, uint8_t level, const std::string& msg) {
    auto h = zero<mm_LogStringInteropEventV3Header>();
    h.time = t(rel);
    h.level = level;
    h.target.id = target;
    h.target.len = uint32_t(strlen(target));
    h.target.codec = MM_CODEC_UTF8;
    Bytes tail;
    put_dyn_utf8(tail, msg);
    e.var(MM_LOG_LogStringInteropEventV3, h, tail,
          std::move(ev("LogStringInteropEventV3")
                        .set("time", J::dec(h.time))
                        .set("level", J::num(level))
                        .set("target", J::str(target))
                        .set("msg", J::str(msg))));
  }
  void tagged(Events& e, const mm_LogMetadataRecord* d, const mm_PropertySet* set, const Properties& kv, int64_t rel,
              const std::string& msg) {
    auto h = zero<mm_TaggedLogStringHeader>();
    h.desc = d;
    h.properties = set;
    h.time = t(rel);
    Bytes tail;
    put_dyn_utf8(tail, msg);
    e.var(MM_LOG_TaggedLogString, h, tail,
          std::move(ev("TaggedLogString")
                        .set("desc", log_desc_json(d))
                        .set("properties", props_value(kv))
                        .set("time", J::dec(h.time))
                        .set("msg", J::str(msg))));
  }
};

Events rust_log_events(RustModel& m, int64_t base) {
  Events e;
  Arena& a = m.a;
  auto* boot = m.log_desc(MM_LEVEL_INFO, "game::boot", "game started", "src/main.rs", 12);
  auto* frame = m.log_desc(MM_LEVEL_DEBUG, "game::frame", "frame {} took {} ms", "src/frame.rs", 88);
  auto* tagged = m.log_desc(MM_LEVEL_WARN, "game::net", "packet loss {}", "src/net.rs", 301);
  Properties kv = {{"map", "harbor"}, {"player", "p-17"}};
  Properties kv2 = {{"level", "error"}, {"region", "eu-west"}};
  const mm_PropertySet* set = m.props(kv);
  const mm_PropertySet* set2 = m.props(kv2);
  const char* net = a.s("tokio::net");
  const char* accepted = a.s("connection accepted");
  m.static_str(e, boot, base + 1000000);
  m.static_str(e, boot, base + 2000000);  // same descriptor: one dependency
  m.string_v2(e, frame, base + 3000000, "frame 42 took 16.5 ms");
  m.string_v2(e, frame, base + 4000000, "température élevée: 91 °C ✓");
  m.static_interop(e, net, accepted, base + 5000000, MM_LEVEL_INFO);
  m.static_interop(e, net, a.s("connection closed"), base + 6000000, MM_LEVEL_TRACE);
  m.interop_v3(e, a.s("hyper::proto"), base + 7000000, MM_LEVEL_ERROR, "request failed: status=503 url=/ingestion");
  m.interop_v3(e, net, base + 8000000, MM_LEVEL_DEBUG, "");  // empty message
  m.tagged(e, tagged, set, kv, base + 9000000, "packet loss 3.5%");
  m.tagged(e, tagged, set2, kv2, base + 10000000, "packet loss 12%");
  m.tagged(e, tagged, set, kv, base + 11000000, "packet loss 0.1%");  // same set: one dependency
  return e;
}

Events rust_metrics_events(RustModel& m, int64_t base) {
  Events e;
  auto* frame_time = m.metric_desc("frame_time", "ms", "game::render", 40, MM_LOD_MED);
  auto* memory = m.metric_desc("memory_used", "bytes", "game::memory", 52, MM_LOD_MIN);
  auto* cpu_ticks = m.metric_desc("tick_duration", "ticks", "game::sim", 61, MM_LOD_MAX);
  Properties kv = {{"gpu", "rtx-4070"}, {"scene", "harbor"}};
  const mm_PropertySet* set = m.props(kv);
  auto d = [](const mm_MetricMetadataDependency* x) { return RustModel::metric_desc_json(x); };
  auto ints = [&](const mm_MetricMetadataDependency* desc, uint64_t value, int64_t rel) {
    auto v = zero<mm_IntegerMetricEvent>();
    v.desc = desc;
    v.value = value;
    v.time = m.t(rel);
    e.pod(MM_METRICS_IntegerMetricEvent, v,
          std::move(ev("IntegerMetricEvent").set("desc", d(desc)).set("value", J::decu(value)).set("time", J::dec(v.time))));
  };
  auto floats = [&](const mm_MetricMetadataDependency* desc, double value, int64_t rel) {
    auto v = zero<mm_FloatMetricEvent>();
    v.desc = desc;
    v.value = value;
    v.time = m.t(rel);
    e.pod(MM_METRICS_FloatMetricEvent, v,
          std::move(ev("FloatMetricEvent").set("desc", d(desc)).set("value", J::f64(value)).set("time", J::dec(v.time))));
  };
  auto tfloat = [&](const mm_MetricMetadataDependency* desc, double value, int64_t rel) {
    auto v = zero<mm_TaggedFloatMetricEvent>();
    v.desc = desc;
    v.properties = set;
    v.value = value;
    v.time = m.t(rel);
    e.pod(MM_METRICS_TaggedFloatMetricEvent, v,
          std::move(ev("TaggedFloatMetricEvent")
                        .set("desc", d(desc))
                        .set("properties", RustModel::props_value(kv))
                        .set("value", J::f64(value))
                        .set("time", J::dec(v.time))));
  };
  auto tint = [&](const mm_MetricMetadataDependency* desc, uint64_t value, int64_t rel) {
    auto v = zero<mm_TaggedIntegerMetricEvent>();
    v.desc = desc;
    v.properties = set;
    v.value = value;
    v.time = m.t(rel);
    e.pod(MM_METRICS_TaggedIntegerMetricEvent, v,
          std::move(ev("TaggedIntegerMetricEvent")
                        .set("desc", d(desc))
                        .set("properties", RustModel::props_value(kv))
                        .set("value", J::decu(value))
                        .set("time", J::dec(v.time))));
  };
  ints(memory, 1073741824ull, base + 1000000);
  ints(memory, 18446744073709551615ull, base + 2000000);  // u64 max: not representable as a double
  ints(cpu_ticks, 2500000, base + 3000000);
  floats(frame_time, 16.5, base + 4000000);
  floats(frame_time, 17.25, base + 5000000);
  floats(frame_time, 0.1, base + 6000000);
  tfloat(frame_time, 33.375, base + 7000000);
  tfloat(frame_time, -1.5, base + 8000000);
  tint(memory, 9007199254740993ull, base + 9000000);  // 2^53 + 1
  tint(memory, 0, base + 10000000);
  return e;
}

Events rust_cpu_events(RustModel& m, int64_t base) {
  Events e;
  Arena& a = m.a;
  auto* frame = m.span("frame", "game::loop", "src/loop.rs", 20);
  auto* physics = m.span("physics_step", "game::physics", "src/physics.rs", 77);
  auto* load = m.location("game::assets", "src/assets.rs", 130);
  auto* fetch = m.span("fetch_manifest", "game::net", "src/net.rs", 212);
  auto* rpc = m.location("game::rpc", "src/rpc.rs", 58);
  const char* hero = a.s("load hero.mesh");
  const char* call = a.s("rpc GetInventory");
  auto thread = [&](uint8_t index, const char* type, const mm_SpanRecord* d, int64_t rel) {
    auto v = zero<mm_BeginThreadSpanEvent>();
    v.thread_span_desc = d;
    v.time = m.t(rel);
    e.pod(index, v, std::move(ev(type).set("thread_span_desc", RustModel::span_json(d)).set("time", J::dec(v.time))));
  };
  auto named = [&](uint8_t index, const char* type, const mm_SpanLocationRecord* l, const char* name, int64_t rel) {
    auto v = zero<mm_BeginThreadNamedSpanEvent>();
    v.thread_span_location = l;
    v.name = m.sid(name);
    v.time = m.t(rel);
    e.pod(index, v,
          std::move(ev(type)
                        .set("thread_span_location", RustModel::location_json(l))
                        .set("name", J::str(name))
                        .set("time", J::dec(v.time))));
  };
  auto async = [&](uint8_t index, const char* type, const mm_SpanRecord* d, uint64_t id, uint64_t parent,
                   uint32_t depth, int64_t rel) {
    auto v = zero<mm_BeginAsyncSpanEvent>();
    v.span_desc = d;
    v.span_id = id;
    v.parent_span_id = parent;
    v.time = m.t(rel);
    v.depth = depth;
    e.pod(index, v,
          std::move(ev(type)
                        .set("span_desc", RustModel::span_json(d))
                        .set("span_id", J::decu(id))
                        .set("parent_span_id", J::decu(parent))
                        .set("time", J::dec(v.time))
                        .set("depth", J::num(depth))));
  };
  auto async_named = [&](uint8_t index, const char* type, const mm_SpanLocationRecord* l, const char* name,
                         uint64_t id, uint64_t parent, uint32_t depth, int64_t rel) {
    auto v = zero<mm_BeginAsyncNamedSpanEvent>();
    v.span_location = l;
    v.name = m.sid(name);
    v.span_id = id;
    v.parent_span_id = parent;
    v.time = m.t(rel);
    v.depth = depth;
    e.pod(index, v,
          std::move(ev(type)
                        .set("span_location", RustModel::location_json(l))
                        .set("name", J::str(name))
                        .set("span_id", J::decu(id))
                        .set("parent_span_id", J::decu(parent))
                        .set("time", J::dec(v.time))
                        .set("depth", J::num(depth))));
  };
  thread(MM_CPU_BeginThreadSpanEvent, "BeginThreadSpanEvent", frame, base + 1000000);
  thread(MM_CPU_BeginThreadSpanEvent, "BeginThreadSpanEvent", physics, base + 1100000);
  thread(MM_CPU_EndThreadSpanEvent, "EndThreadSpanEvent", physics, base + 3400000);
  named(MM_CPU_BeginThreadNamedSpanEvent, "BeginThreadNamedSpanEvent", load, hero, base + 3500000);
  named(MM_CPU_EndThreadNamedSpanEvent, "EndThreadNamedSpanEvent", load, hero, base + 9000000);
  async(MM_CPU_BeginAsyncSpanEvent, "BeginAsyncSpanEvent", fetch, 1, 0, 0, base + 9100000);
  async_named(MM_CPU_BeginAsyncNamedSpanEvent, "BeginAsyncNamedSpanEvent", rpc, call, 2, 1, 1, base + 9200000);
  async_named(MM_CPU_EndAsyncNamedSpanEvent, "EndAsyncNamedSpanEvent", rpc, call, 2, 1, 1, base + 12000000);
  async(MM_CPU_EndAsyncSpanEvent, "EndAsyncSpanEvent", fetch, 1, 0, 0, base + 12500000);
  thread(MM_CPU_EndThreadSpanEvent, "EndThreadSpanEvent", frame, base + 16600000);
  return e;
}

// ImageEvent: time, dynstring name, dynstring format, u32 len, bytes (both producers).
template <class Header>
void image_event(Events& e, int64_t time, const std::string& name, const std::string& format, const Bytes& data,
                 bool wide) {
  Header h = zero<Header>();
  h.time = decltype(h.time)(time);
  Bytes tail;
  wide ? put_dyn_wide(tail, name) : put_dyn_utf8(tail, name);
  wide ? put_dyn_wide(tail, format) : put_dyn_utf8(tail, format);
  put_u32(tail, uint32_t(data.size()));
  tail.insert(tail.end(), data.begin(), data.end());
  e.var(0, h, tail,
        std::move(ev("ImageEvent")
                      .set("time", J::dec(time))
                      .set("name", J::str(name))
                      .set("format", J::str(format))
                      .set("data", J::str(hex(data.data(), data.size())))));
}

// Larger than one 64 KiB LZ4 block and compressible, so frames hold several linked blocks.
Bytes big_image(size_t n) {
  Bytes b = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  for (int i = 0; b.size() < n; ++i) {
    std::string row = "row " + std::to_string(i) + ": harbor crane gull boat " + std::to_string(i * 7919 % 1000) + "\n";
    b.insert(b.end(), row.begin(), row.end());
  }
  b.resize(n);
  return b;
}

Bytes fake_png(uint8_t seed, size_t n) {
  Bytes b = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  std::mt19937_64 rng(seed);
  while (b.size() < n) b.push_back(uint8_t(rng()));
  return b;
}

// ---------------------------------------------------------------------------------------------
// Unreal-layout events (mmue_*): char* strings codec 0 (Ansi), TCHAR* strings codec 1 (UTF-16LE).

struct UnrealModel {
  Arena& a;
  const mm::ProcessMeta& p;
  uint64_t t(int64_t rel_ns) const { return uint64_t(p.start_ticks + ticks_for(p, rel_ns)); }

  mmue_StaticStringRef ansi(const char* s) {
    auto r = zero<mmue_StaticStringRef>();
    r.id = a.s(s);
    r.len = uint32_t(strlen(s));
    r.codec = MM_CODEC_ANSI;
    return r;
  }
  mmue_StaticStringRef wide(const char* s) {
    auto r = zero<mmue_StaticStringRef>();
    const uint16_t* w = a.w(s);
    uint32_t n = 0;
    while (w[n]) ++n;
    r.id = reinterpret_cast<const char*>(w);
    r.len = n * 2;
    r.codec = MM_CODEC_WIDE;
    return r;
  }
  // Unreal FNames: codec 0 when the name is ASCII, 1 otherwise.
  mmue_StaticStringRef fname(const std::string& s) {
    for (unsigned char c : s)
      if (c >= 0x80) return wide(s.c_str());
    return ansi(s.c_str());
  }
  const mmue_PropertySet* props(const Properties& kv) {
    auto* arr = a.make<mmue_Property>(kv.size());
    for (size_t i = 0; i < kv.size(); ++i) {
      arr[i].name = fname(kv[i].first);
      arr[i].value = fname(kv[i].second);
    }
    auto* set = a.make<mmue_PropertySet>();
    set->count = kv.size();
    set->properties = arr;
    return set;
  }
  mmue_LogMetadataDependency* log_desc(uint8_t level, const char* target, const char* file, uint32_t line) {
    auto* d = a.make<mmue_LogMetadataDependency>();
    d->target = wide(target);
    d->fmt_str = ansi("");  // always empty in the plugin: the message is the event's dynamic string
    d->file = ansi(file);
    d->line = line;
    d->level = level;
    return d;
  }
  static J log_desc_json(const char* target, const char* file, uint32_t line, uint8_t level) {
    J o = J::object();
    o.set("type", J::str("LogMetadataDependency"));
    o.set("target", J::str(target));
    o.set("fmt_str", J::str(""));
    o.set("file", J::str(file));
    o.set("line", J::num(line));
    o.set("level", J::num(level));
    return o;
  }
};

struct UeMetric {
  const mmue_MetricMetadataDependency* d;
  J json;
};
struct UeSpan {
  const mmue_SpanMetadataDependency* d;
  J json;
};
struct UeLocation {
  const mmue_SpanLocationDependency* d;
  J json;
};

Events unreal_log_events(UnrealModel& m, int64_t base) {
  Events e;
  Properties kv = {{"MapName", "Harbor_P"}, {"NetMode", "ListenServer"}};
  Properties kv2 = {{"MapName", "Höhle_P"}, {"NetMode", "Client"}};  // non-ASCII FName: UTF-16
  const mmue_PropertySet* set = m.props(kv);
  const mmue_PropertySet* set2 = m.props(kv2);
  auto interop = [&](const char* target, uint8_t level, const mmue_PropertySet* s, const Properties& p,
                     int64_t rel, const std::string& msg) {
    auto h = zero<mmue_TaggedLogInteropEventHeader>();
    h.time = m.t(rel);
    h.level = level;
    h.target = m.wide(target);
    h.properties = s;
    Bytes tail;
    put_dyn_wide(tail, msg);
    e.var(MMUE_LOG_TaggedLogInteropEvent, h, tail,
          std::move(ev("TaggedLogInteropEvent")
                        .set("time", J::decu(h.time))
                        .set("level", J::num(level))
                        .set("target", J::str(target))
                        .set("properties", RustModel::props_value(p))
                        .set("msg", J::str(msg))));
  };
  struct Desc {
    const mmue_LogMetadataDependency* d;
    J json;
  };
  auto desc = [&](uint8_t level, const char* target, const char* file, uint32_t line) {
    return Desc{m.log_desc(level, target, file, line), UnrealModel::log_desc_json(target, file, line, level)};
  };
  Desc game = desc(MM_LEVEL_INFO, "LogGame", "Source/Game/GameMode.cpp", 144);
  Desc anim = desc(MM_LEVEL_ERROR, "LogAnimation", "Source/Game/AnimInstance.cpp", 37);
  auto tagged = [&](const Desc& d, const mmue_PropertySet* s, const Properties& p, int64_t rel, const std::string& msg) {
    auto h = zero<mmue_TaggedLogStringHeader>();
    h.desc = d.d;
    h.properties = s;
    h.time = m.t(rel);
    Bytes tail;
    put_dyn_wide(tail, msg);
    e.var(MMUE_LOG_TaggedLogString, h, tail,
          std::move(ev("TaggedLogString")
                        .set("desc", d.json)
                        .set("properties", RustModel::props_value(p))
                        .set("time", J::decu(h.time))
                        .set("msg", J::str(msg))));
  };
  interop("LogTemp", MM_LEVEL_INFO, set, kv, base + 1000000, "Display: world loaded in 2.31 s");
  interop("LogNet", MM_LEVEL_WARN, set, kv, base + 2000000, "Warning: connection timeout (ping 412 ms)");
  interop("LogTemp", MM_LEVEL_TRACE, set2, kv2, base + 3000000, "Verbose: Spieler betritt die Höhle — 👋");
  tagged(game, set, kv, base + 4000000, "Match started with 8 players");
  tagged(anim, set2, kv2, base + 5000000, "Missing montage AM_Jump_Start");
  tagged(game, set, kv, base + 6000000, "");  // empty message
  return e;
}

Events unreal_metrics_events(UnrealModel& m, int64_t base) {
  Events e;
  Properties kv = {{"MapName", "Harbor_P"}, {"RHI", "D3D12"}};
  const mmue_PropertySet* set = m.props(kv);
  auto metric = [&](const char* name, const char* unit, const char* target, uint8_t lod, uint32_t line) {
    auto* d = m.a.make<mmue_MetricMetadataDependency>();
    d->lod = lod;
    d->name = m.a.w(name);
    d->unit = m.a.w(unit);
    d->target = m.a.w(target);
    d->file = m.a.s("Source/MicromegasTracing/Private/MetricsCollector.cpp");
    d->line = line;
    J o = J::object();
    o.set("type", J::str("MetricMetadataDependency"));
    o.set("lod", J::num(lod));
    o.set("name", J::str(name));
    o.set("unit", J::str(unit));
    o.set("target", J::str(target));
    o.set("file", J::str(d->file));
    o.set("line", J::num(line));
    return UeMetric{d, o};
  };
  UeMetric frame = metric("FrameTime", "ms", "Engine", MM_LOD_MED, 64);
  UeMetric mem = metric("PhysicalMemoryUsed", "bytes", "Memory", MM_LOD_MIN, 71);
  auto ints = [&](const UeMetric& d, uint64_t value, int64_t rel) {
    auto v = zero<mmue_TaggedIntegerMetricEvent>();
    v.desc = d.d;
    v.properties = set;
    v.value = value;
    v.time = m.t(rel);
    e.pod(MMUE_METRICS_TaggedIntegerMetricEvent, v,
          std::move(ev("TaggedIntegerMetricEvent")
                        .set("desc", d.json)
                        .set("properties", RustModel::props_value(kv))
                        .set("value", J::decu(value))
                        .set("time", J::decu(v.time))));
  };
  auto floats = [&](const UeMetric& d, double value, int64_t rel) {
    auto v = zero<mmue_TaggedFloatMetricEvent>();
    v.desc = d.d;
    v.properties = set;
    v.value = value;
    v.time = m.t(rel);
    e.pod(MMUE_METRICS_TaggedFloatMetricEvent, v,
          std::move(ev("TaggedFloatMetricEvent")
                        .set("desc", d.json)
                        .set("properties", RustModel::props_value(kv))
                        .set("value", J::f64(value))
                        .set("time", J::decu(v.time))));
  };
  ints(mem, 3221225472ull, base + 1000000);
  floats(frame, 16.625, base + 1500000);
  floats(frame, 41.75, base + 2000000);
  ints(mem, 3222274048ull, base + 2500000);
  return e;
}

Events unreal_cpu_events(UnrealModel& m, int64_t base) {
  Events e;
  const char* file = "Source/Game/GameLoop.cpp";
  auto span = [&](const char* name, const char* target, uint32_t line) {
    auto* d = m.a.make<mmue_SpanMetadataDependency>();
    d->name = m.a.w(name);
    d->target = m.a.w(target);
    d->file = m.a.s(file);
    d->line = line;
    J o = J::object();
    o.set("type", J::str("SpanMetadataDependency"));
    o.set("name", J::str(name));
    o.set("target", J::str(target));
    o.set("file", J::str(file));
    o.set("line", J::num(line));
    return UeSpan{d, o};
  };
  auto location = [&](const char* target, uint32_t line) {
    auto* d = m.a.make<mmue_SpanLocationDependency>();
    d->target = m.a.w(target);
    d->file = m.a.s(file);
    d->line = line;
    J o = J::object();
    o.set("type", J::str("SpanLocationDependency"));
    o.set("target", J::str(target));
    o.set("file", J::str(file));
    o.set("line", J::num(line));
    return UeLocation{d, o};
  };
  UeSpan frame = span("FEngineLoop::Tick", "Engine", 5120);
  UeSpan world = span("UWorld::Tick", "Engine", 790);
  UeLocation scope = location("Game", 212);
  mmue_StaticStringRef actor = m.wide("Tick BP_Harbor_Crane_C_2");
  auto thread = [&](uint8_t index, const char* type, const UeSpan& d, int64_t rel) {
    auto v = zero<mmue_BeginThreadSpanEvent>();
    v.thread_span_desc = d.d;
    v.time = m.t(rel);
    e.pod(index, v, std::move(ev(type).set("thread_span_desc", d.json).set("time", J::decu(v.time))));
  };
  auto named = [&](uint8_t index, const char* type, const UeLocation& l, int64_t rel) {
    auto v = zero<mmue_BeginThreadNamedSpanEvent>();
    v.thread_span_location = l.d;
    v.time = m.t(rel);
    v.name = actor;
    e.pod(index, v,
          std::move(ev(type)
                        .set("thread_span_location", l.json)
                        .set("time", J::decu(v.time))
                        .set("name", J::str("Tick BP_Harbor_Crane_C_2"))));
  };
  thread(MMUE_CPU_BeginThreadSpanEvent, "BeginThreadSpanEvent", frame, base + 1000000);
  thread(MMUE_CPU_BeginThreadSpanEvent, "BeginThreadSpanEvent", world, base + 1200000);
  named(MMUE_CPU_BeginThreadNamedSpanEvent, "BeginThreadNamedSpanEvent", scope, base + 1300000);
  named(MMUE_CPU_EndThreadNamedSpanEvent, "EndThreadNamedSpanEvent", scope, base + 4300000);
  thread(MMUE_CPU_EndThreadSpanEvent, "EndThreadSpanEvent", world, base + 9800000);
  thread(MMUE_CPU_EndThreadSpanEvent, "EndThreadSpanEvent", frame, base + 17600000);
  return e;
}

// ---------------------------------------------------------------------------------------------
// Hand-built (corrupt and edge) bodies.

// Text item as the CBOR writer emits it (header + bytes), for in-place substitution.
Bytes cbor_text(const std::string& s) {
  Bytes b;
  mm::cbor::Writer w(b);
  w.text(s);
  return b;
}
// Replaces the one occurrence of text item `from` by text item `to`.
Bytes replace_text(const Bytes& body, const std::string& from, const std::string& to) {
  Bytes f = cbor_text(from), t = cbor_text(to);
  auto it = std::search(body.begin(), body.end(), f.begin(), f.end());
  if (it == body.end()) throw std::logic_error("text not found: " + from);
  if (std::search(it + 1, body.end(), f.begin(), f.end()) != body.end()) throw std::logic_error("text not unique: " + from);
  Bytes out(body.begin(), it);
  out.insert(out.end(), t.begin(), t.end());
  out.insert(out.end(), it + f.size(), body.end());
  return out;
}

// Rust log stream transit, by hand: dependency index 0 StaticString, 2 LogMetadataRecord;
// object index 0 LogStaticStrEvent, 1 LogStringEventV2, 2 LogStaticStrInteropEvent.
void dep_static_string(Bytes& b, uint64_t id, const std::string& s) {
  b.push_back(0);
  put_u32(b, uint32_t(8 + s.size()));
  put_u64(b, id);
  put_raw(b, s.data(), s.size());
}
void dep_log_desc(Bytes& b, uint64_t id, uint64_t fmt, uint64_t target, uint64_t module, uint64_t file,
                  uint32_t line, uint32_t level) {
  b.push_back(2);
  put_u64(b, id);
  put_u64(b, fmt);
  put_u64(b, target);
  put_u64(b, module);
  put_u64(b, file);
  put_u32(b, line);
  put_u32(b, level);
}
Bytes valid_log_deps() {
  Bytes d;
  dep_static_string(d, 1, "corrupt vector");
  dep_static_string(d, 2, "vectors");
  dep_static_string(d, 3, "vectors.rs");
  dep_log_desc(d, 4, 1, 2, 2, 3, 1, MM_LEVEL_INFO);
  return d;
}
void obj_static_str(Bytes& b, uint64_t desc, int64_t time) {
  b.push_back(MM_LOG_LogStaticStrEvent);
  put_u64(b, desc);
  put_u64(b, uint64_t(time));
}

void emit_unknown_object(Output& out, const Producer& prod, Arena& arena);

void emit_corrupt(Output& out) {
  const mm::Profile& rust = mm::kRustProfile;
  mm::ProcessMeta p;
  p.process_id = uuid("corrupt/process");
  p.exe = "mm-vectors-corrupt";
  p.username = p.realname = "vectors";
  p.computer = "vectors-host";
  p.distro = "Linux";
  p.cpu_brand = "Vector CPU";
  p.tsc_frequency = 1000000000;
  p.start_time_ns = kEpoch2026 + 3600 * kSec;
  p.start_ticks = 1000000;
  Producer prod{"corrupt", &rust, p};
  emit_process(out, prod);
  StreamOut s = emit_stream(out, prod, mm_log_schema, {});
  const std::string proc = "corrupt/process.cbor";
  int64_t t0 = p.start_ticks + kSec;

  auto block = [&](const std::string& name, const Bytes& deps_raw, const Bytes& objs_raw, uint32_t nb) {
    Bytes deps, objs, body;
    mm::lz4_frame_compress(deps_raw.data(), deps_raw.size(), rust.lz4, deps);
    mm::lz4_frame_compress(objs_raw.data(), objs_raw.size(), rust.lz4, objs);
    mm::BlockMeta meta{uuid("corrupt/" + name), s.id, p.process_id, p.start_time_ns + kSec, kSec,
                       p.start_time_ns + 2 * kSec, 2 * kSec, 0};
    mm::encode_block(meta, deps, objs, nb, rust, body);
    return body;
  };
  auto add = [&](const std::string& name, const char* route, Bytes body, J expect, const std::string& notes,
                 bool with_stream = true) {
    std::string path = "corrupt/" + name + ".cbor";
    out.add(path, std::move(body));
    out.vector("corrupt-" + name, "corrupt", with_stream ? "log" : nullptr, route, path,
               with_stream ? s.stream_cbor : "", proc, std::move(expect), notes);
  };

  // --- transit-level: the gateway accepts (it never parses transit), the decoder rejects ---
  {
    Bytes o;
    obj_static_str(o, 4, t0);
    o.push_back(42);  // the objects table has 7 entries
    put_u64(o, 4);
    put_u64(o, uint64_t(t0 + 1000));
    add("unknown-type-index", "insert_block", block("unknown-type-index", valid_log_deps(), o, 2),
        expect_decode_error("type index"),
        "objects buffer: a valid LogStaticStrEvent, then a record with type index 42 (table length 7)");
  }
  {
    Bytes o;
    obj_static_str(o, 4, t0);
    obj_static_str(o, 0x99, t0 + 1000);  // no dependency 0x99
    add("missing-dependency", "insert_block", block("missing-dependency", valid_log_deps(), o, 2),
        expect_decode_error("missing dependency"),
        "second LogStaticStrEvent references desc id 0x99, absent from the dependencies buffer");
  }
  {
    Bytes d;
    dep_static_string(d, 1, "first");
    dep_static_string(d, 1, "second");  // same id
    Bytes o;
    o.push_back(MM_LOG_LogStaticStrInteropEvent);
    put_u64(o, 1);  // target StringId: id, len, padding
    put_u32(o, 5);
    put_u32(o, 0);
    put_u64(o, 1);  // msg
    put_u32(o, 5);
    put_u32(o, 0);
    put_u64(o, uint64_t(t0));
    put_u32(o, MM_LEVEL_INFO);
    put_u32(o, 0);  // tail padding of the 48-byte struct
    add("duplicate-dependency", "insert_block", block("duplicate-dependency", d, o, 1),
        expect_decode_error("duplicate"), "two StaticString dependencies with id 1");
  }
  {
    Bytes o;
    obj_static_str(o, 4, t0);
    o.push_back(MM_LOG_LogStringEventV2);
    put_u32(o, 200);  // claims 200 body bytes, 21 follow
    put_u64(o, 4);
    put_u64(o, uint64_t(t0 + 1000));
    put_dyn(o, MM_CODEC_UTF8, "abc", 3);
    add("length-past-buffer", "insert_block", block("length-past-buffer", valid_log_deps(), o, 2),
        expect_decode_error("past the end"),
        "LogStringEventV2 whose u32 size (200) runs past the end of the objects buffer (21 bytes left)");
  }

  // --- envelope-level: the gateway rejects with 400 ---
  Bytes good_deps = valid_log_deps(), good_objs;
  obj_static_str(good_objs, 4, t0);
  {
    Bytes deps, objs, body;
    mm::lz4_frame_compress(good_deps.data(), good_deps.size(), rust.lz4, deps);
    mm::lz4_frame_compress(good_objs.data(), good_objs.size(), rust.lz4, objs);
    objs.resize(objs.size() - 6);  // loses the content checksum and half of the end mark
    mm::BlockMeta meta{uuid("corrupt/lz4-truncated"), s.id, p.process_id, p.start_time_ns + kSec, kSec,
                       p.start_time_ns + 2 * kSec, 2 * kSec, 0};
    mm::encode_block(meta, deps, objs, 1, rust, body);
    add("lz4-truncated", "insert_block", body, expect_rejected("lz4"),
        "payload.objects is an LZ4 frame cut 6 bytes short (no complete end mark, no checksum)");
  }
  {
    Bytes deps, objs, body;
    mm::lz4_frame_compress(good_deps.data(), good_deps.size(), rust.lz4, deps);
    mm::lz4_frame_compress(good_objs.data(), good_objs.size(), rust.lz4, objs);
    objs[3] = 0x19;  // 04 22 4D 19
    mm::BlockMeta meta{uuid("corrupt/lz4-bad-magic"), s.id, p.process_id, p.start_time_ns + kSec, kSec,
                       p.start_time_ns + 2 * kSec, 2 * kSec, 0};
    mm::encode_block(meta, deps, objs, 1, rust, body);
    add("lz4-bad-magic", "insert_block", body, expect_rejected("lz4"),
        "payload.objects starts 04 22 4D 19 instead of the LZ4 frame magic 04 22 4D 18");
  }
  Bytes good_block = block("good", good_deps, good_objs, 1);  // template for envelope edits, not a vector
  {
    mm::ProcessMeta up = p;
    up.process_id = uuid("corrupt/unterminated-map");
    Bytes body;
    mm::encode_process(up, mm::kUnrealProfile, body);
    if (body.back() != 0xff) throw std::logic_error("expected an indefinite map");
    body.pop_back();
    add("cbor-unterminated-map", "insert_process", body, expect_rejected("cbor"),
        "Unreal-style ProcessInfo (indefinite-length map) without its final 0xff break", false);
  }
  add("bad-uuid", "insert_block", replace_text(good_block, uuid("corrupt/good"), "not-a-uuid"),
      expect_rejected("uuid"), "block_id is \"not-a-uuid\"");
  {
    std::string begin = mm::format_time(p.start_time_ns + kSec, rust.block_time);
    Bytes body = replace_text(good_block, begin, "2026-01-01 at noon");
    body = replace_text(body, uuid("corrupt/good"), uuid("corrupt/bad-time"));
    add("bad-time", "insert_block", body, expect_rejected("time"), "begin_time is \"2026-01-01 at noon\"");
  }
  add("empty-body", "insert_block", Bytes{}, expect_rejected("empty"), "zero-byte body");
  {
    // Hand-written Rust-order block envelopes, one field missing or of the wrong CBOR type.
    Bytes deps, objs;
    mm::lz4_frame_compress(good_deps.data(), good_deps.size(), rust.lz4, deps);
    mm::lz4_frame_compress(good_objs.data(), good_objs.size(), rust.lz4, objs);
    auto envelope = [&](const std::string& name, const std::string& skip, const std::string& as_text) {
      Bytes b;
      mm::cbor::Writer w(b);
      w.begin_map(skip.empty() ? 10 : 9);
      auto field = [&](const std::string& k, auto write) {
        if (k == skip) return;
        w.key(k);
        write();
      };
      auto int_field = [&](const std::string& k, int64_t v) {
        field(k, [&] { k == as_text ? w.text(std::to_string(v)) : w.sint(v); });
      };
      field("block_id", [&] { w.text(uuid("corrupt/" + name)); });
      field("stream_id", [&] { w.text(s.id); });
      field("process_id", [&] { w.text(p.process_id); });
      field("begin_time", [&] { w.text(mm::format_time(p.start_time_ns + kSec, rust.block_time)); });
      int_field("begin_ticks", kSec);
      field("end_time", [&] { w.text(mm::format_time(p.start_time_ns + 2 * kSec, rust.block_time)); });
      int_field("end_ticks", 2 * kSec);
      field("payload", [&] {
        w.begin_map(2);
        w.key("dependencies");
        w.bytes(deps.data(), deps.size());
        w.key("objects");
        w.bytes(objs.data(), objs.size());
      });
      int_field("object_offset", 0);
      int_field("nb_objects", 1);
      return b;
    };
    add("missing-field", "insert_block", envelope("missing-field", "nb_objects", ""), expect_rejected("nb_objects"),
        "block without the required nb_objects key (the reason names the field)");
    add("ill-typed-field", "insert_block", envelope("ill-typed-field", "", "begin_ticks"),
        expect_rejected("begin_ticks"), "begin_ticks is the text \"1000000000\" instead of an integer (the reason names the field)");
  }

  // --- edge: valid envelopes a producer may send ---
  {
    // Time offsets other than Z/+00:00 and 3 fractional digits; uppercase stream_id and process_id.
    std::string begin = mm::format_time(p.start_time_ns + kSec, rust.block_time);
    std::string end = mm::format_time(p.start_time_ns + 2 * kSec, rust.block_time);
    std::string begin_off = "2025-12-31T20:00:01.000-05:00";  // 2026-01-01T01:00:01Z
    std::string end_off = "2026-01-01T06:30:02+05:30";        // 2026-01-01T01:00:02Z
    Bytes body = replace_text(good_block, begin, begin_off);
    body = replace_text(body, end, end_off);
    std::string bid = uuid("corrupt/edge-time-offsets");
    body = replace_text(body, uuid("corrupt/good"), bid);
    std::string path = "corrupt/edge-time-offsets.cbor";
    out.add(path, body);
    J block = J::object();
    block.set("block_id", J::str(bid));
    block.set("stream_id", J::str(s.id));
    block.set("process_id", J::str(p.process_id));
    block.set("begin_time", J::str(begin_off));
    block.set("begin_ticks", J::dec(kSec));
    block.set("end_time", J::str(end_off));
    block.set("end_ticks", J::dec(2 * kSec));
    block.set("object_offset", J::dec(0));
    block.set("nb_objects", J::num(1));
    J desc = J::object();
    desc.set("type", J::str("LogMetadataRecord"));
    desc.set("fmt_str", J::str("corrupt vector"));
    desc.set("target", J::str("vectors"));
    desc.set("module_path", J::str("vectors"));
    desc.set("file", J::str("vectors.rs"));
    desc.set("line", J::num(1));
    desc.set("level", J::num(MM_LEVEL_INFO));
    J events = J::array();
    events.push(std::move(ev("LogStaticStrEvent").set("desc", desc).set("time", J::dec(t0))));
    J doc = J::object();
    doc.set("process", process_json(p, rust));
    doc.set("stream", s.json);
    doc.set("block", std::move(block));
    doc.set("events", std::move(events));
    out.add_json("corrupt/edge-time-offsets.json", doc);
    out.vector("edge-time-offsets", "corrupt", "log", "insert_block", path, s.stream_cbor, proc,
               expect_ok("corrupt/edge-time-offsets.json"),
               "valid: begin_time with -05:00 and end_time with +05:30 offsets (same instants as 01:00:01Z and "
               "01:00:02Z); times are stored as sent");
  }
  {
    mm::ProcessMeta child = p;
    child.process_id = uuid("corrupt/edge-parent-uuid");
    child.parent_process_id = p.process_id;
    child.exe = "mm-vectors-child";
    Bytes body;
    mm::encode_process(child, rust, body);
    out.add("corrupt/edge-parent-uuid.cbor", body);
    out.add_json("corrupt/edge-parent-uuid.json", std::move(J::object().set("process", process_json(child, rust))));
    out.vector("edge-parent-uuid", "corrupt", nullptr, "insert_process", "corrupt/edge-parent-uuid.cbor", "",
               "corrupt/edge-parent-uuid.cbor", expect_ok("corrupt/edge-parent-uuid.json"),
               "valid: parent_process_id is a UUID (the corrupt-vectors process)");
  }
  Arena arena;
  emit_unknown_object(out, prod, arena);
}


// PROTOCOL.md §12, byte for byte: a Rust-layout metrics block with two FloatMetricEvents, fixed
// dependency ids, LZ4 frames holding one stored (uncompressed) block each.
Bytes stored_frame(const Bytes& data) {
  Bytes f = {0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82};
  put_u32(f, uint32_t(data.size()) | 0x80000000u);
  f.insert(f.end(), data.begin(), data.end());
  put_u32(f, 0);
  return f;
}

void emit_worked_example(Output& out) {
  mm::ProcessMeta p;
  p.process_id = "11111111-1111-4111-8111-111111111111";
  p.exe = "worked-example";
  p.username = p.realname = "example";
  p.computer = "example-host";
  p.distro = "Linux";
  p.cpu_brand = "Example CPU";
  p.tsc_frequency = 1000000;
  p.start_time_ns = kEpoch2026;
  p.start_ticks = 1000000;
  Producer prod{"example", &mm::kRustProfile, p};
  emit_process(out, prod);
  StreamOut s = emit_stream(out, prod, mm_metrics_schema, {}, "22222222-2222-4222-8222-222222222222");

  Bytes deps;
  dep_static_string(deps, 0x1000, "frame_time");
  deps.push_back(1);  // StaticStringDependency "ms", codec 2
  put_u32(deps, 8 + 1 + 4 + 2);
  put_u64(deps, 0x2000);
  deps.push_back(MM_CODEC_UTF8);
  put_u32(deps, 2);
  put_raw(deps, "ms", 2);
  dep_static_string(deps, 0x3000, "game");
  dep_static_string(deps, 0x4000, "main.cpp");
  deps.push_back(2);  // MetricMetadataDependency
  for (uint64_t v : {0x5000, 0x1000, 0x2000, 0x3000, 0x4000}) put_u64(deps, v);
  put_u32(deps, 42);
  put_u32(deps, MM_LOD_MED);
  Bytes objs;
  auto metric = [&](double value, int64_t time) {
    objs.push_back(MM_METRICS_FloatMetricEvent);
    put_u64(objs, 0x5000);
    put_raw(objs, &value, 8);
    put_u64(objs, uint64_t(time));
  };
  metric(16.5, 2000000);
  metric(17.25, 2016500);
  Bytes fd = stored_frame(deps), fo = stored_frame(objs);
  Bytes payload;
  {
    mm::cbor::Writer w(payload);
    w.begin_map(2);
    w.key("dependencies");
    w.bytes(fd.data(), fd.size());
    w.key("objects");
    w.bytes(fo.data(), fo.size());
  }
  if (deps.size() != 130 || objs.size() != 50 || fd.size() != 145 || fo.size() != 65 || payload.size() != 236)
    throw std::logic_error("worked example no longer matches PROTOCOL.md section 12");

  const std::string block_id = "33333333-3333-4333-8333-333333333333";
  Bytes body;
  mm::cbor::Writer w(body);
  w.begin_map(10);
  w.key("block_id");
  w.text(block_id);
  w.key("stream_id");
  w.text(s.id);
  w.key("process_id");
  w.text(p.process_id);
  w.key("begin_time");
  w.text("2026-01-01T00:00:00.900Z");
  w.key("begin_ticks");
  w.uint(900000);
  w.key("end_time");
  w.text("2026-01-01T00:00:01.100Z");
  w.key("end_ticks");
  w.uint(1100000);
  w.key("payload");
  body.insert(body.end(), payload.begin(), payload.end());
  w.key("object_offset");
  w.uint(0);
  w.key("nb_objects");
  w.uint(2);
  out.add("example/metrics/block.cbor", body);

  J desc = J::object();
  desc.set("type", J::str("MetricMetadataDependency"));
  desc.set("name", J::str("frame_time"));
  desc.set("unit", J::str("ms"));
  desc.set("target", J::str("game"));
  desc.set("file", J::str("main.cpp"));
  desc.set("line", J::num(42));
  desc.set("lod", J::num(MM_LOD_MED));
  J events = J::array();
  events.push(std::move(ev("FloatMetricEvent").set("desc", desc).set("value", J::f64(16.5)).set("time", J::dec(2000000))));
  events.push(std::move(ev("FloatMetricEvent").set("desc", desc).set("value", J::f64(17.25)).set("time", J::dec(2016500))));
  J block = J::object();
  block.set("block_id", J::str(block_id));
  block.set("stream_id", J::str(s.id));
  block.set("process_id", J::str(p.process_id));
  block.set("begin_time", J::str("2026-01-01T00:00:00.900Z"));
  block.set("begin_ticks", J::dec(900000));
  block.set("end_time", J::str("2026-01-01T00:00:01.100Z"));
  block.set("end_ticks", J::dec(1100000));
  block.set("object_offset", J::dec(0));
  block.set("nb_objects", J::num(2));
  J doc = J::object();
  doc.set("process", process_json(p, mm::kRustProfile));
  doc.set("stream", s.json);
  doc.set("block", std::move(block));
  doc.set("events", std::move(events));
  out.add_json("example/metrics/block.json", doc);
  out.vector("example-metrics-block", "example", "metrics", "insert_block", "example/metrics/block.cbor", s.stream_cbor,
             "example/process.cbor", expect_ok("example/metrics/block.json"),
             "PROTOCOL.md section 12 byte for byte: hand-built transit with fixed ids 0x1000-0x5000, LZ4 frames with "
             "one stored block each (60 40 82), stored payload object of 236 bytes");
}

// A log stream whose objects table has one more queue type than ours, "FutureLogEventV9" (size 0):
// readers skip unknown variable-size objects using their size field.
const mm_udt kFutureUdt = {"FutureLogEventV9", 0, 0, nullptr, 0, MM_CUSTOM_NONE, nullptr, 0};
const mm_udt* const kFutureLogObjects[] = {&mm_LogStaticStrEvent_udt,        &mm_LogStringEventV2_udt,
                                           &mm_LogStaticStrInteropEvent_udt, &mm_LogStringInteropEventV3_udt,
                                           &mm_TaggedLogString_udt,          &kFutureUdt,
                                           &mm_StringId_udt,                 &mm_StaticStringRef_udt};
const mm_stream_schema kFutureLogSchema = {"log", kFutureLogObjects, 6, 8, mm_log_dependencies, 4, 6};

void emit_unknown_object(Output& out, const Producer& prod, Arena& arena) {
  const mm::ProcessMeta& p = prod.process;
  const std::string dir = "corrupt/edge-unknown-object/";
  StreamOut s;
  s.id = uuid(dir + "stream");
  s.stream_cbor = dir + "stream.cbor";
  Bytes sb;
  mm::encode_stream(p.process_id, s.id, kFutureLogSchema, {}, *prod.profile, sb);
  out.add(s.stream_cbor, sb);
  s.json = stream_json(s.id, p.process_id, "log", {});
  out.add_json(dir + "stream.json", std::move(J::object().set("stream", s.json)));
  out.vector("edge-unknown-object-stream", "corrupt", "log", "insert_stream", s.stream_cbor, "", "corrupt/process.cbor",
             expect_ok(dir + "stream.json"), "log stream whose objects table adds FutureLogEventV9 (size 0) at index 5");

  RustModel m{arena, p};
  Events e;
  auto* d = m.log_desc(MM_LEVEL_INFO, "future", "before the unknown object", "future.rs", 1);
  m.static_str(e, d, kSec + 1000);
  Bytes r = {5};
  put_u32(r, 12);
  put_u64(r, 0xfeedfacecafebeefull);
  put_u32(r, 7);
  e.raw(r);
  m.string_v2(e, d, kSec + 2000, "after the unknown object");
  emit_block(out, prod, kFutureLogSchema, s, {"block", kSec, 2 * kSec, 0, dir, "edge-unknown-object-block"}, e,
             "valid: the middle object (type index 5, FutureLogEventV9, 12-byte body) is skipped; nb_objects "
             "counts it (3), events lists the 2 others");
}

// ---------------------------------------------------------------------------------------------

Output generate() {
  Output out;
  Arena arena;

  // ---- rust (micromegas-telemetry-sink >= 0.29, and our native core) ----
  {
    mm::ProcessMeta p;
    p.process_id = uuid("rust/process");
    p.exe = "/opt/harbor/bin/harbor-server";
    p.username = "builder";
    p.realname = "Build Agent";
    p.computer = "ci-runner-07";
    p.distro = "Debian GNU/Linux 12 (bookworm)";
    p.cpu_brand = "AMD EPYC 7B13 64-Core Processor";
    p.tsc_frequency = 1000000000;  // 1 GHz: one tick per nanosecond
    p.start_time_ns = kEpoch2026 + 250 * 1000000;  // 2026-01-01T00:00:00.250Z
    p.start_ticks = 5000000000000;
    p.properties = {{"exe", "/opt/harbor/bin/harbor-server"}, {"logical_cpu_count", "16"}, {"version", "1.4.2"}};
    Producer prod{"rust", &mm::kRustProfile, p};
    emit_process(out, prod);
    RustModel m{arena, prod.process};

    StreamOut log = emit_stream(out, prod, mm_log_schema, {});
    Events le = rust_log_events(m, kSec);
    emit_block(out, prod, mm_log_schema, log, {"block", kSec, 2 * kSec, 0}, le,
               "every Rust log event type; UTF-8 strings (StaticString); nested StringId; property sets");
    Events le2 = rust_log_events(m, 2 * kSec);
    emit_block(out, prod, mm_log_schema, log, {"block-2", 2 * kSec, 3 * kSec, int64_t(le.records.size())}, le2,
               "second block of the same stream: object_offset > 0, contiguous times, dependencies re-sent");

    StreamOut met = emit_stream(out, prod, mm_metrics_schema, {});
    emit_block(out, prod, mm_metrics_schema, met, {"block", kSec, 2 * kSec, 0}, rust_metrics_events(m, kSec),
               "every Rust metric event type; u64 values beyond 2^53; f64 values");

    StreamOut cpu = emit_stream(out, prod, mm_cpu_schema, {{"thread-id", "4242"}, {"thread-name", "main"}});
    emit_block(out, prod, mm_cpu_schema, cpu, {"block", kSec, 2 * kSec, 0}, rust_cpu_events(m, kSec),
               "thread, named thread, async and async named spans, nested");

    StreamOut img = emit_stream(out, prod, mm_image_schema, {});
    Events ie;
    image_event<mm_ImageEventHeader>(ie, m.t(kSec + 5000000), "screenshot", "image/png", fake_png(1, 48), false);
    image_event<mm_ImageEventHeader>(ie, m.t(kSec + 9000000), "minimap", "image/png", fake_png(2, 24), false);
    emit_block(out, prod, mm_image_schema, img, {"block", kSec, 2 * kSec, 0}, ie,
               "ImageEvent; empty dependencies table, so an empty dependencies frame");
    Events big;
    image_event<mm_ImageEventHeader>(big, m.t(2 * kSec + 1000000), "capture", "image/png", big_image(100000), false);
    emit_block(out, prod, mm_image_schema, img, {"block-large", 2 * kSec, 3 * kSec, 2}, big,
               "100000-byte image: objects frame > 64 KiB, so several linked LZ4 blocks with content checksum "
               "(header 04 22 4D 18 44 40 5E, as upstream's Rust sink)");
  }

  // ---- unreal (MicromegasTelemetrySink plugin) ----
  {
    mm::ProcessMeta p;
    p.process_id = uuid("unreal/process");
    p.exe = "HarborGame.exe";
    p.username = "jdoe";
    p.realname = "jdoe";  // the plugin repeats username
    p.computer = "DESKTOP-7Q2K";
    p.distro = "Windows 10.0.22631.1.256.64bit";
    p.cpu_brand = "Intel(R) Core(TM) i9-13900K";
    p.tsc_frequency = 10000000;  // QueryPerformanceFrequency
    p.start_time_ns = kEpoch2026 + 7200 * kSec + 123 * 1000000;  // ...T02:00:00.123Z
    p.start_ticks = 123456789000;
    p.properties = {{"build-config", "Development"}, {"engine-version", "5.4.4-35576357+++UE5+Release-5.4"},
                    {"platform-name", "Windows"}};
    Producer prod{"unreal", &mm::kUnrealProfile, p};
    emit_process(out, prod);
    UnrealModel m{arena, prod.process};

    StreamOut log = emit_stream(out, prod, mmue_log_schema, {});
    emit_block(out, prod, mmue_log_schema, log, {"block", 0, kSec, 0}, unreal_log_events(m, 500000000),
               "indefinite-length maps; uppercase block_id; first block begins at process start (begin_ticks 0); "
               "Ansi (0) and UTF-16LE (1) StaticStringDependency; UTF-16 dynamic strings");
    StreamOut met = emit_stream(out, prod, mmue_metrics_schema, {});
    emit_block(out, prod, mmue_metrics_schema, met, {"block", 0, kSec, 0}, unreal_metrics_events(m, 500000000),
               "tagged integer and float metrics; TCHAR* descriptor strings");
    StreamOut cpu = emit_stream(out, prod, mmue_cpu_schema, {{"thread-id", "18236"}, {"thread-name", "GameThread"}});
    emit_block(out, prod, mmue_cpu_schema, cpu, {"block", kSec / 2, kSec, 0}, unreal_cpu_events(m, kSec / 2),
               "thread and named thread spans; StaticStringRef name declared is_reference");
    StreamOut img = emit_stream(out, prod, mmue_image_schema, {});
    Events ie;
    image_event<mmue_ImageEventHeader>(ie, int64_t(m.t(600000000)), "screenshot", "image/png", fake_png(3, 40), true);
    emit_block(out, prod, mmue_image_schema, img, {"block", 0, kSec, 0}, ie,
               "ImageEvent with UTF-16 name and format; empty dependencies frame");
    Events big;
    image_event<mmue_ImageEventHeader>(big, int64_t(m.t(kSec + 1000000)), "screenshot", "image/png",
                                       big_image(100000), true);
    emit_block(out, prod, mmue_image_schema, img, {"block-large", kSec, 2 * kSec, 1}, big,
               "100000-byte image: LZ4F_compressFrame defaults on > 64 KiB give linked blocks, no checksum "
               "(header 04 22 4D 18 40 40 C0)");
  }

  // ---- rust-legacy (micromegas-telemetry-sink <= 0.28): payload as arrays of integers ----
  {
    mm::ProcessMeta p;
    p.process_id = uuid("rust-legacy/process");
    p.exe = "legacy-service";
    p.username = "svc";
    p.realname = "Service Account";
    p.computer = "legacy-01";
    p.distro = "Ubuntu 22.04.4 LTS";
    p.cpu_brand = "Intel(R) Xeon(R) Gold 6230";
    p.tsc_frequency = 2100000000;
    p.start_time_ns = kEpoch2026 + 10800 * kSec + 123456;  // 6 fractional digits
    p.start_ticks = 777000000000;
    p.properties = {{"version", "0.28.0"}};
    Producer prod{"rust-legacy", &mm::kRustLegacyProfile, p};
    emit_process(out, prod);
    RustModel m{arena, prod.process};
    StreamOut log = emit_stream(out, prod, mm_log_schema, {});
    emit_block(out, prod, mm_log_schema, log, {"block", kSec, 2 * kSec, 0}, rust_log_events(m, kSec),
               "payload.dependencies and payload.objects as CBOR arrays of integers (major type 4)");
  }

  emit_corrupt(out);
  emit_worked_example(out);

  J manifest = J::object();
  manifest.set("$comment", J::str("Generated by mm-vectors (vectors/generate.cpp). See README.md. Never delete a vector."));
  manifest.set("vectors", out.manifest);
  out.add_json("manifest.json", manifest);
  return out;
}

// Files in the vectors folder that the generator does not write.
const std::set<std::string> kSources = {"README.md", "generate.cpp", "verify.py"};

int write_all(const Output& out, const std::filesystem::path& dir) {
  for (auto& [rel, bytes] : out.files) {
    auto path = dir / rel;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!f) {
      std::cerr << "mm-vectors: cannot write " << path << "\n";
      return 1;
    }
  }
  std::cout << "mm-vectors: wrote " << out.files.size() << " files to " << dir.string() << "\n";
  return 0;
}

int check_all(const Output& out, const std::filesystem::path& dir) {
  int failures = 0;
  for (auto& [rel, bytes] : out.files) {
    std::ifstream f(dir / rel, std::ios::binary);
    if (!f) {
      std::cerr << "MISSING  " << rel << "\n";
      ++failures;
      continue;
    }
    Bytes disk((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (disk != bytes) {
      size_t i = 0;
      while (i < disk.size() && i < bytes.size() && disk[i] == bytes[i]) ++i;
      std::cerr << "DIFFERS  " << rel << " (first difference at byte " << i << "; checked in " << disk.size()
                << " bytes, generated " << bytes.size() << ")\n";
      ++failures;
    }
  }
  for (auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::string rel = std::filesystem::relative(entry.path(), dir).generic_string();
    if (!out.files.count(rel) && !kSources.count(rel)) {
      std::cerr << "UNKNOWN  " << rel << " (not produced by mm-vectors)\n";
      ++failures;
    }
  }
  if (failures) {
    std::cerr << "mm-vectors --check: " << failures << " file(s) differ from the generator. Vectors are never "
              << "changed or deleted: add new ones instead (see README.md).\n";
    return 1;
  }
  std::cout << "mm-vectors --check: " << out.files.size() << " files match\n";
  return 0;
}

int usage(int code) {
  (code ? std::cerr : std::cout)
      << "usage: mm-vectors --out <dir>     write the golden vectors\n"
         "       mm-vectors --check <dir>   fail if the vectors in <dir> differ from what this build generates\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) return usage(0);
  if (argc != 3) return usage(2);
  std::string mode = argv[1];
  try {
    Output out = generate();
    if (mode == "--out") return write_all(out, argv[2]);
    if (mode == "--check") return check_all(out, argv[2]);
  } catch (const std::exception& e) {
    std::cerr << "mm-vectors: " << e.what() << "\n";
    return 1;
  }
  return usage(2);
}

#include "encode/envelope.h"

#include "encode/cbor.h"

namespace mm {

const Profile kRustProfile = {"rust", false, false, false, TimeFormat::kRustNanos, TimeFormat::kRustChrono,
                              false, false, {10, true, true, false}};
const Profile kRustLegacyProfile = {"rust-legacy", false, false, false, TimeFormat::kRustNanos,
                                    TimeFormat::kRustChrono, true, true, {10, true, true, false}};
const Profile kUnrealProfile = {"unreal", true, true, true, TimeFormat::kUnrealMillis, TimeFormat::kUnrealMillis,
                                true, false, {0, false, false, true}};

namespace {

void write_properties(cbor::Writer& w, const Properties& props) {
  w.begin_map(props.size());
  for (auto& [k, v] : props) {
    w.key(k);
    w.text(v);
  }
  w.end();
}

void write_udts(cbor::Writer& w, const mm_udt* const* udts, uint32_t n) {
  w.begin_array(n);
  for (uint32_t i = 0; i < n; ++i) {
    const mm_udt& u = *udts[i];
    w.begin_map(4);
    w.key("name");
    w.text(u.name);
    w.key("size");
    w.uint(u.size);
    w.key("members");
    w.begin_array(u.member_count);
    for (uint32_t m = 0; m < u.member_count; ++m) {
      const mm_udt_member& mb = u.members[m];
      w.begin_map(5);
      w.key("name");
      w.text(mb.name);
      w.key("type_name");
      w.text(mb.type_name);
      w.key("offset");
      w.uint(mb.offset);
      w.key("size");
      w.uint(mb.size);
      w.key("is_reference");
      w.boolean(mb.is_reference);
      w.end();
    }
    w.end();
    w.key("is_reference");
    w.boolean(u.is_reference);
    w.end();
  }
  w.end();
}

void write_buffer(cbor::Writer& w, const std::vector<uint8_t>& b, const Profile& profile) {
  profile.payload_as_int_array ? w.bytes_as_int_array(b.data(), b.size()) : w.bytes(b.data(), b.size());
}

}  // namespace

void encode_process(const ProcessMeta& p, const Profile& profile, std::vector<uint8_t>& out) {
  cbor::Writer w(out, profile.indefinite_lengths);
  w.begin_map(12);
  auto text = [&](const char* k, const std::string& v) {
    w.key(k);
    w.text(v);
  };
  text("process_id", p.process_id);
  text("exe", p.exe);
  text("username", p.username);
  text("realname", p.realname);
  text("computer", p.computer);
  text("distro", p.distro);
  text("cpu_brand", p.cpu_brand);
  w.key("tsc_frequency");
  w.sint(p.tsc_frequency);
  text("start_time", format_time(p.start_time_ns, profile.start_time));
  w.key("start_ticks");
  w.sint(p.start_ticks);
  w.key("parent_process_id");
  if (!p.parent_process_id.empty() || profile.parent_as_empty_string) w.text(p.parent_process_id);
  else w.null();
  w.key("properties");
  write_properties(w, p.properties);
  w.end();
}

void encode_stream(const std::string& process_id, const std::string& stream_id, const mm_stream_schema& schema,
                   const Properties& properties, const Profile& profile, std::vector<uint8_t>& out) {
  cbor::Writer w(out, profile.indefinite_lengths);
  w.begin_map(6);
  if (profile.unreal_key_order) {
    w.key("stream_id");
    w.text(stream_id);
    w.key("process_id");
    w.text(process_id);
  } else {
    w.key("process_id");
    w.text(process_id);
    w.key("stream_id");
    w.text(stream_id);
  }
  w.key("dependencies_metadata");
  write_udts(w, schema.dependencies, schema.dependencies_count);
  w.key("objects_metadata");
  write_udts(w, schema.objects, schema.objects_count);
  w.key("tags");
  w.begin_array(1);
  w.text(schema.tag);
  w.end();
  w.key("properties");
  write_properties(w, properties);
  w.end();
}

void encode_block(const BlockMeta& b, const std::vector<uint8_t>& dependencies, const std::vector<uint8_t>& objects,
                  uint32_t nb_objects, const Profile& profile, std::vector<uint8_t>& out) {
  cbor::Writer w(out, profile.indefinite_lengths);
  auto ids = [&](bool unreal) {
    std::string block_id = b.block_id;
    if (profile.upper_block_id)
      for (auto& c : block_id) c = char(toupper(c));
    const char* keys[3] = {"block_id", "stream_id", "process_id"};
    const std::string* vals[3] = {&block_id, &b.stream_id, &b.process_id};
    for (int i = 0; i < 3; ++i) {
      int j = unreal ? 2 - i : i;
      w.key(keys[j]);
      w.text(*vals[j]);
    }
  };
  auto times = [&] {
    w.key("begin_time");
    w.text(format_time(b.begin_time_ns, profile.block_time));
    w.key("begin_ticks");
    w.sint(b.begin_ticks);
    w.key("end_time");
    w.text(format_time(b.end_time_ns, profile.block_time));
    w.key("end_ticks");
    w.sint(b.end_ticks);
  };
  auto payload = [&] {
    w.key("payload");
    w.begin_map(2);
    w.key("dependencies");
    write_buffer(w, dependencies, profile);
    w.key("objects");
    write_buffer(w, objects, profile);
    w.end();
  };
  auto counts = [&](bool unreal) {
    if (unreal) {
      w.key("nb_objects");
      w.uint(nb_objects);
    }
    w.key("object_offset");
    w.sint(b.object_offset);
    if (!unreal) {
      w.key("nb_objects");
      w.uint(nb_objects);
    }
  };
  w.begin_map(10);
  ids(profile.unreal_key_order);
  times();
  payload();
  counts(profile.unreal_key_order);
  w.end();
}

}  // namespace mm

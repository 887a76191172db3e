// CBOR bodies of the three ingestion requests, in the dialect of one producer.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "encode/lz4_frame.h"
#include "encode/text_format.h"
#include "micromegas/protocol/udt.h"

namespace mm {

using Properties = std::vector<std::pair<std::string, std::string>>;

// What differs, on the wire, between the upstream Rust sink and the Unreal plugin.
struct Profile {
  const char* name;
  bool indefinite_lengths;       // Unreal: 0xbf ... 0xff maps
  bool unreal_key_order;         // Unreal writes keys in another order than Rust
  bool upper_block_id;           // Unreal: block_id in upper case
  TimeFormat block_time;
  TimeFormat start_time;
  bool parent_as_empty_string;   // Unreal and Rust <= 0.20: "" instead of null
  bool payload_as_int_array;     // Rust <= 0.28: byte buffers as arrays of integers
  Lz4Options lz4;
};
extern const Profile kRustProfile;        // micromegas-telemetry-sink >= 0.29 (our native default)
extern const Profile kRustLegacyProfile;  // micromegas-telemetry-sink <= 0.28
extern const Profile kUnrealProfile;      // MicromegasTelemetrySink Unreal plugin

struct ProcessMeta {
  std::string process_id;
  std::string exe, username, realname, computer, distro, cpu_brand;
  int64_t tsc_frequency = 0;
  int64_t start_time_ns = 0;  // unix epoch
  int64_t start_ticks = 0;
  std::string parent_process_id;  // empty = none
  Properties properties;
};

struct BlockMeta {
  std::string block_id, stream_id, process_id;
  int64_t begin_time_ns, begin_ticks;  // ticks relative to the process start_ticks
  int64_t end_time_ns, end_ticks;
  int64_t object_offset;
};

void encode_process(const ProcessMeta& p, const Profile& profile, std::vector<uint8_t>& out);
void encode_stream(const std::string& process_id, const std::string& stream_id, const mm_stream_schema& schema,
                   const Properties& properties, const Profile& profile, std::vector<uint8_t>& out);
// payload: the two transit buffers, already LZ4-framed.
void encode_block(const BlockMeta& b, const std::vector<uint8_t>& dependencies, const std::vector<uint8_t>& objects,
                  uint32_t nb_objects, const Profile& profile, std::vector<uint8_t>& out);

}  // namespace mm

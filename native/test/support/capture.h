// Reads what the native core wrote to a directory sink (or what a test server
// received) back into processes, streams, blocks and events.
#pragma once
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "wire_reader.h"

namespace wire {

struct StreamData {
  std::string id, tag;
  std::map<std::string, std::string> properties;
  std::unique_ptr<TransitReader> reader;
  std::vector<Cbor> blocks;
  std::vector<Value> events;
};

struct Capture {
  std::vector<Cbor> processes;
  std::map<std::string, StreamData> streams;
  size_t blocks = 0;

  void add(const std::string& route, const std::vector<uint8_t>& body) {
    Cbor c = parse_cbor(body);
    if (route == "insert_process") {
      processes.push_back(c);
    } else if (route == "insert_stream") {
      StreamData& s = streams[c["stream_id"].str()];
      s.id = c["stream_id"].str();
      s.tag = c["tags"].arr().at(0).str();
      for (auto& [k, v] : c["properties"].map()) s.properties[k] = v.str();
      s.reader = std::make_unique<TransitReader>(parse_udts(c["dependencies_metadata"]), parse_udts(c["objects_metadata"]));
    } else if (route == "insert_block") {
      StreamData& s = streams.at(c["stream_id"].str());  // insert_stream must come first
      auto events = s.reader->read_block(lz4_decompress(c["payload"]["dependencies"].bytes()),
                                         lz4_decompress(c["payload"]["objects"].bytes()));
      if (size_t(c["nb_objects"].num()) != events.size()) throw std::runtime_error("nb_objects mismatch");
      s.events.insert(s.events.end(), events.begin(), events.end());
      s.blocks.push_back(c);
      ++blocks;
    }
  }

  static std::vector<uint8_t> read_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
  }

  // Files are named <sequence>-<route>.cbor; sorted, they replay in send order.
  static Capture from_directory(const std::string& dir) {
    std::vector<std::filesystem::path> files;
    for (auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().extension() == ".cbor") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    Capture c;
    for (auto& f : files) {
      std::string name = f.stem().string();
      c.add(name.substr(name.find('-') + 1), read_file(f));
    }
    return c;
  }

  // What a server received, retries included: metadata first (requests run
  // concurrently, so a block may land before its stream), each block once.
  template <class Received>
  static Capture from_requests(const std::vector<Received>& received) {
    Capture c;
    std::set<std::string> seen;
    for (const char* pass : {"insert_process", "insert_stream", "insert_block"})
      for (auto& r : received) {
        std::string route = r.path.substr(r.path.rfind('/') + 1);
        if (route != pass) continue;
        Cbor b = parse_cbor(r.body);
        const char* key = route == "insert_block" ? "block_id" : route == "insert_stream" ? "stream_id" : "process_id";
        if (seen.insert(b[key].str()).second) c.add(route, r.body);
      }
    return c;
  }

  std::vector<const StreamData*> with_tag(const std::string& tag) const {
    std::vector<const StreamData*> out;
    for (auto& [id, s] : streams) if (s.tag == tag) out.push_back(&s);
    return out;
  }
};

}  // namespace wire

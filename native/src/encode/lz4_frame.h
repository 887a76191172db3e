// LZ4 frame compression of transit buffers (frame format only, never raw blocks).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace mm {

struct Lz4Options {
  int level;             // 0 = fast default; >= 3 uses the HC compressor
  bool linked_blocks;    // false = independent blocks
  bool content_checksum;
  bool library_defaults; // true = LZ4F_compressFrame with NULL preferences (the Unreal plugin)
};

// Appends one complete frame holding [data, data + n) to out.
void lz4_frame_compress(const uint8_t* data, size_t n, const Lz4Options& options, std::vector<uint8_t>& out);

}  // namespace mm

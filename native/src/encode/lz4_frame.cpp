#include "encode/lz4_frame.h"

#include <lz4frame.h>

#include <stdexcept>

namespace mm {

void lz4_frame_compress(const uint8_t* data, size_t n, const Lz4Options& options, std::vector<uint8_t>& out) {
  LZ4F_preferences_t prefs = LZ4F_INIT_PREFERENCES;
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = options.linked_blocks ? LZ4F_blockLinked : LZ4F_blockIndependent;
  prefs.frameInfo.contentChecksumFlag = options.content_checksum ? LZ4F_contentChecksumEnabled : LZ4F_noContentChecksum;
  prefs.compressionLevel = options.level;
  const LZ4F_preferences_t* p = options.library_defaults ? nullptr : &prefs;
  size_t bound = LZ4F_compressFrameBound(n, p);
  size_t start = out.size();
  out.resize(start + bound);
  // A null source is not allowed even for an empty buffer.
  static const uint8_t empty = 0;
  size_t written = LZ4F_compressFrame(out.data() + start, bound, n ? data : &empty, n, p);
  if (LZ4F_isError(written)) throw std::runtime_error(std::string("lz4 frame: ") + LZ4F_getErrorName(written));
  out.resize(start + written);
}

}  // namespace mm

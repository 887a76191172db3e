#include "encode/lz4_frame.h"

#include <lz4frame.h>

#include <stdexcept>

namespace mm {

void lz4_frame_compress(const uint8_t* data, size_t n, const Lz4Options& options, std::vector<uint8_t>& out) {
  static const uint8_t empty = 0;  // a null source is not allowed, even for no bytes
  const uint8_t* src = n ? data : &empty;
  size_t start = out.size();
  auto check = [](size_t r) {
    if (LZ4F_isError(r)) throw std::runtime_error(std::string("lz4 frame: ") + LZ4F_getErrorName(r));
    return r;
  };
  if (options.library_defaults) {  // the Unreal plugin: one call, NULL preferences
    size_t bound = LZ4F_compressFrameBound(n, nullptr);
    out.resize(start + bound);
    out.resize(start + check(LZ4F_compressFrame(out.data() + start, bound, src, n, nullptr)));
    return;
  }
  // The streaming API keeps the requested block mode (LZ4F_compressFrame switches
  // single-block inputs to independent mode, which Rust's lz4 crate does not).
  LZ4F_preferences_t prefs = LZ4F_INIT_PREFERENCES;
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = options.linked_blocks ? LZ4F_blockLinked : LZ4F_blockIndependent;
  prefs.frameInfo.contentChecksumFlag = options.content_checksum ? LZ4F_contentChecksumEnabled : LZ4F_noContentChecksum;
  prefs.compressionLevel = options.level;
  thread_local LZ4F_cctx* ctx = [] {
    LZ4F_cctx* c = nullptr;
    LZ4F_createCompressionContext(&c, LZ4F_VERSION);
    return c;
  }();
  size_t bound = LZ4F_HEADER_SIZE_MAX + LZ4F_compressBound(n, &prefs);
  out.resize(start + bound);
  uint8_t* dst = out.data() + start;
  size_t pos = check(LZ4F_compressBegin(ctx, dst, bound, &prefs));
  if (n) pos += check(LZ4F_compressUpdate(ctx, dst + pos, bound - pos, src, n, nullptr));
  pos += check(LZ4F_compressEnd(ctx, dst + pos, bound - pos, nullptr));
  out.resize(start + pos);
}

}  // namespace mm

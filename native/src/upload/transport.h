// Where encoded requests go: an HTTP ingestion service (libcurl, keep-alive,
// several requests in flight) or a directory (offline capture).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "upload/request_queue.h"

namespace mm {

struct Completion {
  Request request;
  long status = 0;            // HTTP status, 0 when the transfer failed
  std::string error;          // transport error text
  int64_t retry_after_ms = -1;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual bool can_send() const = 0;
  virtual void send(Request&& r) = 0;
  virtual size_t in_flight() const = 0;
  // Waits up to timeout_ms for progress or wake(); appends finished requests.
  virtual void wait(int timeout_ms, std::vector<Completion>& done) = 0;
  virtual void wake() = 0;
};

std::unique_ptr<Transport> make_http_transport(const std::string& url, const std::string& api_key,
                                               uint32_t max_in_flight, uint32_t timeout_ms);
std::unique_ptr<Transport> make_directory_transport(const std::string& directory);

}  // namespace mm

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "upload/transport.h"

namespace mm {

namespace {

// Offline capture: each request body becomes <dir>/<sequence>-<route>.cbor,
// written to a temporary name and renamed, so a reader never sees half a file.
class DirectoryTransport final : public Transport {
 public:
  explicit DirectoryTransport(std::string dir) : dir_(std::move(dir)) { mkdir(dir_.c_str(), 0755); }
  bool can_send() const override { return true; }
  size_t in_flight() const override { return 0; }
  void send(Request&& r) override {
    char name[64];
    snprintf(name, sizeof name, "/%08llu-%s.cbor", (unsigned long long)++sequence_, r.route);
    std::string path = dir_ + name, tmp = path + ".tmp";
    Completion c;
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bool ok = fd >= 0 && write(fd, r.body.data(), r.body.size()) == ssize_t(r.body.size());
    if (fd >= 0) close(fd);
    ok = ok && rename(tmp.c_str(), path.c_str()) == 0;
    c.status = ok ? 200 : 0;
    if (!ok) c.error = "cannot write " + path;
    c.request = std::move(r);
    std::lock_guard lk(mu_);
    done_.push_back(std::move(c));
  }
  void wait(int timeout_ms, std::vector<Completion>& done) override {
    std::unique_lock lk(mu_);
    if (done_.empty() && !woken_ && timeout_ms > 0)
      cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return woken_; });
    woken_ = false;
    for (auto& c : done_) done.push_back(std::move(c));
    done_.clear();
  }
  void wake() override {
    std::lock_guard lk(mu_);
    woken_ = true;
    cv_.notify_one();
  }

 private:
  std::string dir_;
  unsigned long long sequence_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  std::vector<Completion> done_;
};

}  // namespace

std::unique_ptr<Transport> make_directory_transport(const std::string& directory) {
  return std::make_unique<DirectoryTransport>(directory);
}

}  // namespace mm

// A scripted HTTP/1.1 server on 127.0.0.1 for upload tests: it records every
// request and answers what the test's policy says (status, extra headers, or
// no answer at all to simulate a hung server).
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace wire {

struct Received {
  std::string path;
  std::vector<uint8_t> body;
};
struct Reply {
  int status = 200;
  std::string headers;  // extra header lines, each ending in \r\n
  bool hang = false;
};

class HttpServer {
 public:
  explicit HttpServer(std::function<Reply(const Received&, size_t index)> policy, bool keep_bodies = true)
      : policy_(std::move(policy)), keep_bodies_(keep_bodies) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~HttpServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    {
      std::lock_guard lk(mu_);
      for (int c : fds_) ::shutdown(c, SHUT_RDWR);  // unblocks kept-alive connections
    }
    for (auto& t : conns_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Received> received() {
    std::lock_guard lk(mu_);
    return received_;
  }

 private:
  void accept_loop() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      {
        std::lock_guard lk(mu_);
        fds_.push_back(c);
      }
      conns_.emplace_back([this, c] { serve(c); });
    }
  }
  void serve(int c) {
    std::string buf;
    char chunk[65536];
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = recv(c, chunk, sizeof chunk, 0);
        if (n <= 0) { close(c); return; }
        buf.append(chunk, size_t(n));
      }
      std::string head = buf.substr(0, end);
      size_t cl = 0, p = head.find("Content-Length:");
      if (p == std::string::npos) p = head.find("content-length:");
      if (p != std::string::npos) cl = std::stoul(head.substr(p + 15));
      while (buf.size() < end + 4 + cl) {
        ssize_t n = recv(c, chunk, sizeof chunk, 0);
        if (n <= 0) { close(c); return; }
        buf.append(chunk, size_t(n));
      }
      Received r;
      size_t sp = head.find(' ');
      r.path = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
      r.body.assign(buf.begin() + long(end + 4), buf.begin() + long(end + 4 + cl));
      buf.erase(0, end + 4 + cl);
      size_t index;
      {
        std::lock_guard lk(mu_);
        index = received_.size();
        received_.push_back(keep_bodies_ ? r : Received{r.path, {}});
      }
      Reply reply = policy_(r, index);
      if (reply.hang) {
        while (!stop_ && recv(c, chunk, sizeof chunk, MSG_DONTWAIT) != 0) usleep(10000);
        close(c);
        return;
      }
      std::string resp = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\nContent-Length: 0\r\n" + reply.headers + "\r\n";
      send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
    }
  }

  std::function<Reply(const Received&, size_t)> policy_;
  bool keep_bodies_;
  int fd_;
  int port_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> conns_;
  std::mutex mu_;
  std::vector<Received> received_;
  std::vector<int> fds_;
};

}  // namespace wire

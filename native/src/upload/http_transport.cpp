#include <curl/curl.h>

#include <cstring>
#include <mutex>
#include <stdexcept>

#include "upload/transport.h"

namespace mm {

namespace {

class HttpTransport final : public Transport {
 public:
  HttpTransport(const std::string& url, const std::string& api_key, uint32_t max_in_flight, uint32_t timeout_ms)
      : root_(url), max_in_flight_(max_in_flight ? max_in_flight : 1), timeout_ms_(timeout_ms) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    while (!root_.empty() && root_.back() == '/') root_.pop_back();
    multi_ = curl_multi_init();
    if (!multi_) throw std::runtime_error("curl_multi_init failed");
    headers_ = curl_slist_append(headers_, "Content-Type: application/octet-stream");
    headers_ = curl_slist_append(headers_, "Expect:");  // no 100-continue round trip
    if (!api_key.empty()) headers_ = curl_slist_append(headers_, ("Authorization: Bearer " + api_key).c_str());
  }
  ~HttpTransport() override {
    for (auto& t : transfers_) {
      curl_multi_remove_handle(multi_, t->easy);
      curl_easy_cleanup(t->easy);
    }
    for (CURL* e : idle_) curl_easy_cleanup(e);
    curl_multi_cleanup(multi_);
    curl_slist_free_all(headers_);
  }

  bool can_send() const override { return transfers_.size() < max_in_flight_; }
  size_t in_flight() const override { return transfers_.size(); }

  void send(Request&& r) override {
    auto t = std::make_unique<Transfer>();
    t->request = std::move(r);
    t->url = root_ + "/ingestion/" + t->request.route;
    if (!idle_.empty()) {
      t->easy = idle_.back();  // reuse keeps the connection alive
      idle_.pop_back();
      curl_easy_reset(t->easy);
    } else {
      t->easy = curl_easy_init();
    }
    CURL* e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url.c_str());
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(t->request.body.size()));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, long(timeout_ms_));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, long(timeout_ms_));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &discard);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_multi_add_handle(multi_, e);
    transfers_.push_back(std::move(t));
  }

  void wait(int timeout_ms, std::vector<Completion>& done) override {
    int running = 0;
    curl_multi_perform(multi_, &running);
    if (timeout_ms > 0) curl_multi_poll(multi_, nullptr, 0, timeout_ms, nullptr);
    curl_multi_perform(multi_, &running);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &t);
      Completion c;
      if (m->data.result == CURLE_OK) {
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &c.status);
      } else {
        c.error = t->error[0] ? t->error : curl_easy_strerror(m->data.result);
      }
      c.retry_after_ms = t->retry_after_ms;
      curl_multi_remove_handle(multi_, m->easy_handle);
      idle_.push_back(m->easy_handle);
      c.request = std::move(t->request);
      done.push_back(std::move(c));
      for (auto it = transfers_.begin(); it != transfers_.end(); ++it)
        if (it->get() == t) {
          transfers_.erase(it);
          break;
        }
    }
  }

  void wake() override { curl_multi_wakeup(multi_); }

 private:
  struct Transfer {
    Request request;
    std::string url;
    CURL* easy = nullptr;
    char error[CURL_ERROR_SIZE] = {0};
    int64_t retry_after_ms = -1;
  };
  static size_t discard(char*, size_t size, size_t n, void*) { return size * n; }
  static size_t on_header(char* data, size_t size, size_t n, void* user) {
    size_t len = size * n;
    static const char kName[] = "retry-after:";
    if (len > sizeof kName - 1 && strncasecmp(data, kName, sizeof kName - 1) == 0) {
      long seconds = strtol(data + sizeof kName - 1, nullptr, 10);  // HTTP-date form is ignored
      if (seconds >= 0) static_cast<Transfer*>(user)->retry_after_ms = int64_t(seconds) * 1000;
    }
    return len;
  }

  std::string root_;
  size_t max_in_flight_;
  uint32_t timeout_ms_;
  CURLM* multi_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::vector<std::unique_ptr<Transfer>> transfers_;
  std::vector<CURL*> idle_;
};

}  // namespace

std::unique_ptr<Transport> make_http_transport(const std::string& url, const std::string& api_key,
                                               uint32_t max_in_flight, uint32_t timeout_ms) {
  return std::make_unique<HttpTransport>(url, api_key, max_in_flight, timeout_ms);
}

}  // namespace mm

// access_log.cpp — formatting and writing access-log lines.
#include "ringlet/http/access_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <iterator>

#include "ringlet/base/log.hpp"

namespace ringlet::http {

AccessLog::~AccessLog() {
  flush();
  if (fd_ >= 0) ::close(fd_);
}

Status AccessLog::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Error{errno};
  if (fd_ >= 0) {
    flush();
    ::close(fd_);
  }
  fd_ = fd;
  buffer_.reserve(kFlushBytes + 4096);
  return {};
}

void AccessLog::record(const AccessRecord& r, std::string_view time_text, std::int64_t now_ns) {
  if (fd_ < 0) return;
  // The host without its port ("[::1]:80" and "1.2.3.4:80" both end in ":port").
  std::string host = r.peer != nullptr && r.peer->is_ip() ? r.peer->to_string() : std::string("-");
  std::size_t colon = host.rfind(':');
  if (colon != std::string::npos && host != "-") host.resize(colon);
  fmt::format_to(std::back_inserter(buffer_), "{} - - [{}] \"{}\" {} {} {}\n", host, time_text, r.what, r.result,
                 r.bytes, r.duration_ns / 1000);
  if (buffer_.size() >= kFlushBytes || now_ns - flushed_ns_ >= kFlushAfterNs) {
    flush();
    flushed_ns_ = now_ns;
  }
}

void AccessLog::flush() noexcept {
  if (fd_ < 0 || buffer_.empty()) return;
  std::size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log_warn("access log write failed: {}", Error{errno}.message());
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
}

}  // namespace ringlet::http

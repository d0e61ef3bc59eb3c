// http.cpp — the HTTP/1.1 workload: keep-alive requests to one or more URLs, pipelined with --depth, every
// response's status and body length verified.
//
// Requests are prebuilt per URL in one pooled buffer per worker and sent as Slices (no copy, no allocation).
// Responses are parsed where they lie in the stream's receive buffers: the head from the front slice (only a head
// that straddles two receive buffers is gathered, through SliceQueue::take_until), the body counted and consumed
// as it arrives. Expected body length per URL: --expect-length if given, else the length of the first good
// response to that URL on this worker (a static file's size); --no-length-check turns that off.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/proto/http/response_parser.hpp"
#include "ringlet/loadgen/workload.hpp"

namespace ringlet::loadgen {
namespace {

constexpr std::size_t kMaxUrls = 100'000;
constexpr std::uint64_t kMaxBody = 64 * 1024 * 1024;

struct Url {
  std::string host;  // as written (for Host:)
  std::uint16_t port = 80;
  std::string path;  // origin-form: "/path?query"
};

// http://host[:port][/path]. No https, no userinfo.
bool parse_url(std::string_view text, Url& out, std::string& error) {
  constexpr std::string_view kScheme = "http://";
  if (text.substr(0, kScheme.size()) != kScheme) {
    error = "URL must start with http:// (https is not supported): " + std::string(text);
    return false;
  }
  text.remove_prefix(kScheme.size());
  std::size_t slash = text.find_first_of("/?");
  std::string_view authority = text.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view("/") : text.substr(slash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) {
    error = "URL needs a host (and no user info): http://" + std::string(text);
    return false;
  }
  out.path = std::string(path);
  if (out.path.front() == '?') out.path.insert(out.path.begin(), '/');
  for (char c : out.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      error = "URL path must not contain spaces or control characters";
      return false;
    }
  }
  std::size_t colon = authority.rfind(':');
  bool has_port = colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos;
  if (has_port) {
    auto hp = split_host_port(authority);
    if (!hp) {
      error = "bad host:port in URL: " + std::string(authority);
      return false;
    }
    out.host = hp->first;
    out.port = hp->second;
  } else {
    out.host = std::string(authority);
    if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') {
      out.host = out.host.substr(1, out.host.size() - 2);
    }
    out.port = 80;
  }
  return true;
}

struct HttpSettings {
  std::vector<Url> urls;
  std::string host_header;
  std::string method = "GET";
  std::string body;
  std::vector<std::string> headers;
  std::vector<std::pair<int, int>> expect_status;  // inclusive ranges
  std::int64_t expect_length = -1;
  bool length_check = true;
  bool head_request = false;
};

// Per worker: the prebuilt requests and the body lengths learned per URL.
class HttpShard final : public WorkloadShard {
 public:
  explicit HttpShard(const HttpSettings& s) : settings_(s), learned_(s.urls.size(), -1) {
    std::vector<std::string> texts;
    std::size_t total = 0;
    for (const Url& u : s.urls) {
      std::string r = s.method + " " + u.path + " HTTP/1.1\r\nHost: " + s.host_header + "\r\n";
      for (const std::string& h : s.headers) r += h + "\r\n";
      if (!s.body.empty() || s.method == "POST" || s.method == "PUT") {
        r += "Content-Length: " + std::to_string(s.body.size()) + "\r\n";
      }
      r += "\r\n";
      r += s.body;
      total += r.size();
      texts.push_back(std::move(r));
    }
    Buffer* b = BufferPool::local().acquire(total);
    Slice all(b, 0, static_cast<std::uint32_t>(total));
    std::size_t at = 0;
    for (const std::string& t : texts) {
      std::memcpy(b->data + at, t.data(), t.size());
      requests_.push_back(all.sub(at, t.size()));
      at += t.size();
    }
  }

  std::unique_ptr<WorkloadConnection> new_connection(const ConnectionContext& c) override;

  const HttpSettings& settings() const { return settings_; }
  const Slice& request(std::size_t url) const { return requests_[url]; }
  std::size_t url_count() const { return requests_.size(); }
  std::int64_t& learned(std::size_t url) { return learned_[url]; }

 private:
  const HttpSettings& settings_;
  std::vector<Slice> requests_;
  std::vector<std::int64_t> learned_;
};

class HttpConnection final : public WorkloadConnection {
 public:
  HttpConnection(HttpShard& shard, std::size_t first_url, unsigned depth)
      : shard_(shard), next_url_(first_url % shard.url_count()), expected_(std::max(depth, 1u)) {}

  bool write_request(RequestSink& out) override {
    out.queue(shard_.request(next_url_));
    expected_[(head_index_ + inflight_) % expected_.size()] = static_cast<std::uint32_t>(next_url_);
    ++inflight_;
    if (++next_url_ == shard_.url_count()) next_url_ = 0;
    return true;
  }

  Reply parse_reply(SliceQueue& in, bool eof) override {
    for (;;) {
      if (!in_body_) {
        Reply r = parse_head(in);
        if (r.status != Reply::Status::complete) return r;
        if (interim_) continue;  // a 1xx before the real response
      }
      Reply r = read_body(in, eof);
      if (r.status != Reply::Status::complete) return r;
      return finish();
    }
  }

 private:
  Reply parse_head(SliceQueue& in) {
    interim_ = false;
    if (in.empty()) return Reply::need_more();
    const HttpSettings& s = shard_.settings();
    http::HeadResult h = parser_.parse(in.front().view(), head_, s.head_request);
    if (h.status == http::HeadResult::Status::need_more && in.slice_count() > 1) {
      // The head straddles receive buffers: gather it (a counted copy; rare).
      parser_.reset();
      FrameResult f = in.take_until("\r\n\r\n", 64 * 1024);
      if (f.status == FrameResult::Status::need_more) return Reply::need_more();
      if (f.status == FrameResult::Status::too_long) return Reply::wrong("response head too long");
      gathered_.assign(f.frame.view());
      gathered_ += "\r\n\r\n";
      h = parser_.parse(gathered_, head_, s.head_request);
      if (h.status != http::HeadResult::Status::complete) return Reply::wrong(h.error ? h.error : "bad head");
      h.consumed = 0;  // take_until already consumed it
    }
    if (h.status == http::HeadResult::Status::need_more) return Reply::need_more();
    if (h.status == http::HeadResult::Status::error) return Reply::wrong(h.error);
    in.consume(h.consumed);
    if (head_.status >= 100 && head_.status < 200 && head_.status != 101) {
      interim_ = true;
      return Reply::complete();
    }
    if (!status_expected(head_.status)) return Reply::wrong("unexpected HTTP status");
    body_.start(head_);
    in_body_ = true;
    return Reply::complete();
  }

  Reply read_body(SliceQueue& in, bool eof) {
    while (!body_.done()) {
      if (in.empty() && !eof) return Reply::need_more();
      std::string_view view = in.empty() ? std::string_view() : in.front().view();
      bool last = in.slice_count() <= 1;
      http::BodyStep step = body_.feed(view, eof && last);
      in.consume(step.consumed);
      if (step.status == http::BodyStep::Status::error) return Reply::wrong(step.error);
      if (body_.body_bytes() > kMaxBody) return Reply::wrong("response body over 64 MiB");
      if (step.consumed == 0 && !body_.done()) {
        if (in.empty()) return eof ? Reply::wrong("connection closed inside the body") : Reply::need_more();
        return Reply::wrong("body parser made no progress");
      }
    }
    return Reply::complete();
  }

  Reply finish() {
    in_body_ = false;
    std::size_t url = expected_[head_index_];
    head_index_ = (head_index_ + 1) % expected_.size();
    --inflight_;
    const HttpSettings& s = shard_.settings();
    auto got = static_cast<std::int64_t>(body_.body_bytes());
    if (s.expect_length >= 0) {
      if (got != s.expect_length) return Reply::wrong("body length differs from --expect-length");
    } else if (s.length_check && !s.head_request) {
      std::int64_t& want = shard_.learned(url);
      if (want < 0) want = got;
      if (got != want) return Reply::wrong("body length differs from earlier responses to the same URL");
    }
    return head_.keep_alive ? Reply::complete() : Reply::complete_then_close();
  }

  bool status_expected(int status) const {
    for (auto [lo, hi] : shard_.settings().expect_status) {
      if (status >= lo && status <= hi) return true;
    }
    return false;
  }

  HttpShard& shard_;
  std::size_t next_url_;
  std::vector<std::uint32_t> expected_;  // ring: URL index of each request in flight
  std::size_t head_index_ = 0;
  std::size_t inflight_ = 0;
  http::ResponseHeadParser parser_;
  http::ResponseHead head_;
  http::ResponseBodyReader body_;
  std::string gathered_;
  bool in_body_ = false;
  bool interim_ = false;
};

std::unique_ptr<WorkloadConnection> HttpShard::new_connection(const ConnectionContext& c) {
  std::size_t first = c.worker_index * 7919u + c.connection_index;
  return std::make_unique<HttpConnection>(*this, first, c.depth);
}

// "200", "2xx", "200-299", comma-separated.
bool parse_expect_status(std::string_view text, std::vector<std::pair<int, int>>& out) {
  out.clear();
  while (!text.empty()) {
    std::size_t comma = text.find(',');
    std::string item(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.size() == 3 && item[1] == 'x' && item[2] == 'x' && item[0] >= '1' && item[0] <= '5') {
      int base = (item[0] - '0') * 100;
      out.emplace_back(base, base + 99);
      continue;
    }
    int lo = 0, hi = 0;
    char dash = 0;
    int n = std::sscanf(item.c_str(), "%d%c%d", &lo, &dash, &hi);
    if (n == 1) hi = lo;
    else if (n != 3 || dash != '-') return false;
    if (lo < 100 || hi > 999 || lo > hi) return false;
    out.emplace_back(lo, hi);
  }
  return !out.empty();
}

class HttpWorkload final : public Workload {
 public:
  void declare_options(OptionSink& o) override {
    o.add_strings("--url", extra_urls_, "Another URL to request (repeatable; requests cycle through all URLs)");
    o.add_string("--urls-file", urls_file_, "A file with one URL per line (blank lines and # comments skipped)");
    o.add_string("--method", settings_.method, "Request method");
    o.add_string("--body", settings_.body, "Request body (sent with Content-Length)");
    o.add_uint("--body-size", body_size_, "Request body of this many bytes (instead of --body)", 0, kMaxBody);
    o.add_strings("--header,-H", settings_.headers, "Extra request header line \"Name: value\" (repeatable)");
    o.add_string("--expect-status", expect_status_,
                 "Statuses counted as correct: codes, ranges or classes, e.g. 200,304 or 200-299 or 2xx,3xx");
    o.add_uint("--expect-length", expect_length_,
               "Every response body must be this many bytes (default: as long as the first response to the same "
               "URL)", 0, kMaxBody);
    o.add_flag("--no-length-check", no_length_check_, "Do not compare body lengths between responses");
  }

  std::string configure(std::string_view target, const CommonConfig&) override {
    std::vector<std::string> texts;
    if (!target.empty()) texts.emplace_back(target);
    for (const std::string& u : extra_urls_) texts.push_back(u);
    if (!urls_file_.empty()) {
      std::ifstream f(urls_file_);
      if (!f) return "cannot read --urls-file " + urls_file_;
      std::string line;
      while (std::getline(f, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (line.empty() || line.front() == '#') continue;
        texts.push_back(line);
      }
    }
    if (texts.empty()) return "give a URL as TARGET (or with --url / --urls-file)";
    if (texts.size() > kMaxUrls) return "too many URLs (at most 100000)";
    std::string error;
    for (const std::string& t : texts) {
      Url u;
      if (!parse_url(t, u, error)) return error;
      if (!settings_.urls.empty() && (u.host != settings_.urls[0].host || u.port != settings_.urls[0].port)) {
        return "all URLs must name the same host and port";
      }
      settings_.urls.push_back(std::move(u));
    }
    const Url& first = settings_.urls[0];
    bool v6 = first.host.find(':') != std::string::npos;
    settings_.host_header = first.host;
    if (v6) {
      settings_.host_header.insert(settings_.host_header.begin(), '[');
      settings_.host_header.push_back(']');
    }
    if (first.port != 80) {
      settings_.host_header.push_back(':');
      settings_.host_header.append(std::to_string(first.port));
    }
    for (char c : settings_.method) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return "bad --method";
    }
    if (settings_.method.empty()) return "bad --method";
    settings_.head_request = settings_.method == "HEAD";
    if (body_size_ > 0) settings_.body.assign(body_size_, 'x');
    for (const std::string& h : settings_.headers) {
      if (h.find(':') == std::string::npos || h.find_first_of("\r\n") != std::string::npos) {
        return "--header must be \"Name: value\" on one line";
      }
    }
    if (!parse_expect_status(expect_status_, settings_.expect_status)) return "bad --expect-status " + expect_status_;
    if (expect_length_ != kUnset) settings_.expect_length = static_cast<std::int64_t>(expect_length_);
    settings_.length_check = !no_length_check_;
    return {};
  }
  std::string host() const override { return settings_.urls.at(0).host; }
  std::uint16_t port() const override { return settings_.urls.at(0).port; }
  std::unique_ptr<WorkloadShard> create_shard(const ShardContext&) const override {
    return std::make_unique<HttpShard>(settings_);
  }

 private:
  static constexpr std::uint64_t kUnset = std::numeric_limits<std::uint64_t>::max();
  HttpSettings settings_;
  std::vector<std::string> extra_urls_;
  std::string urls_file_;
  std::uint64_t body_size_ = 0;
  std::string expect_status_ = "2xx,3xx";
  std::uint64_t expect_length_ = kUnset;
  bool no_length_check_ = false;
};

}  // namespace

std::unique_ptr<Workload> make_http_workload() { return std::make_unique<HttpWorkload>(); }

}  // namespace ringlet::loadgen

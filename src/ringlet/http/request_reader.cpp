// request_reader.cpp — request heads and bodies from a Stream's receive queue. See request_reader.hpp.
//
// Like Stream::read_until (net/stream.cpp): look at what is queued, and when it is not enough, wait_more() and look
// again. The parser resumes where it stopped, so each wait costs only the new bytes.
#include "ringlet/http/request_reader.hpp"

#include <algorithm>
#include <cstring>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/buf/copy_counter.hpp"
#include "ringlet/runtime/timeout.hpp"

namespace ringlet::http {

namespace {

// Waits for more input than `baseline` bytes, until `deadline_ns` (0: no deadline). ok() with no new bytes means
// the peer closed or the receive failed.
Task<Status> wait_for_input(Stream& stream, std::int64_t deadline_ns) {
  if (deadline_ns == 0) {
    Status s = co_await stream.wait_more();
    co_return s;
  }
  Loop& loop = *Loop::current();
  if (loop.clock().now_ns() >= deadline_ns) co_return errc::timed_out;
  Status s = co_await WithTimeout<Stream::WaitMore>(stream.wait_more(), loop, deadline_ns);
  co_return s;
}

RequestHead head_error(const ParseResult& r) {
  RequestHead h;
  h.error_status = r.http_status;
  h.error_reason = r.reason;
  return h;
}

// A head that straddles receive buffers, copied into one pooled buffer as it arrives. Bytes of whole slices that
// were copied are popped from the queue at once; bytes copied from the current front slice stay queued until
// the head is complete, so whatever follows the head (a body, the next request) never leaves the queue.
struct Gather {
  Slice buf;
  std::size_t size = 0;    // bytes copied into buf
  std::size_t popped = 0;  // of those, bytes already removed from the queue
  std::size_t peeked = 0;  // of those, bytes copied from the current front slice, still queued

  std::string_view view() const noexcept { return {reinterpret_cast<const char*>(buf.data()), size}; }

  void start(SliceQueue& in, std::size_t capacity) {
    Buffer* b = BufferPool::local().acquire(capacity);
    buf = Slice(b, 0, static_cast<std::uint32_t>(capacity));
    const Slice& front = in.front();
    counted_copy(buf.mutable_data(), front.data(), front.size());
    size = popped = front.size();
    in.pop_front();
  }

  // Copies from the front slice through its next '\n' (or all of it): the parser never needs more than the next
  // complete line, so nothing past the head's end is copied. Returns false when nothing was copied.
  bool copy_line(SliceQueue& in) noexcept {
    if (in.empty()) return false;
    const Slice& front = in.front();
    if (peeked == front.size() && in.slice_count() > 1) {  // an older slice is never extended: drop it
      in.pop_front();
      popped += peeked;
      peeked = 0;
    }
    const Slice& f = in.front();
    std::size_t avail = std::min(f.size() - peeked, buf.size() - size);
    if (avail == 0) return false;
    const auto* from = reinterpret_cast<const char*>(f.data()) + peeked;
    if (const void* lf = std::memchr(from, '\n', avail)) {
      avail = static_cast<std::size_t>(static_cast<const char*>(lf) - from) + 1;
    }
    counted_copy(buf.mutable_data() + size, f.data() + peeked, avail);
    size += avail;
    peeked += avail;
    return true;
  }
};

}  // namespace

Task<Result<RequestHead>> read_request(Stream& stream, ParserLimits limits, std::int64_t deadline_ns, bool* started) {
  RequestParser parser(limits);
  SliceQueue& in = stream.inbound();
  Gather gather;
  for (;;) {
    ParseResult r;
    if (!gather.buf.empty()) {
      bool copied = gather.copy_line(in);
      while (copied) {
        r = parser.parse(gather.view());
        if (!r.incomplete()) break;
        copied = gather.copy_line(in);
      }
      if (r.complete()) {
        in.consume(r.head_length - gather.popped);
        RequestHead head;
        head.bytes = gather.buf.sub(0, r.head_length);
        head.request = parser.request();
        head.request.rebase(reinterpret_cast<const char*>(head.bytes.data()));
        co_return std::move(head);
      }
      if (r.incomplete() && gather.size == gather.buf.size()) {
        // Unreachable with a correct max_head_bytes(): the parser answers before that many bytes.
        r = ParseResult{ParseStatus::error, 0, 431, "request head too large"};
      }
    } else if (!in.empty()) {
      r = parser.parse(in.front().view());
      if (r.complete()) {
        RequestHead head;
        head.bytes = in.front().sub(0, r.head_length);
        in.consume(r.head_length);
        head.request = parser.request();
        head.request.rebase(reinterpret_cast<const char*>(head.bytes.data()));
        co_return std::move(head);
      }
      if (r.incomplete() && in.slice_count() > 1) {
        // The head continues in the next receive buffer: from now on, gather it.
        gather.start(in, limits.max_head_bytes());
        continue;
      }
    }
    if (r.error()) co_return head_error(r);

    // The wait is written out here rather than through wait_for_input(): the keep-alive wait for the next request
    // is the common case, and this saves it a coroutine frame.
    const std::size_t before = in.bytes();
    Status s;
    if (deadline_ns == 0) {
      s = co_await stream.wait_more();
    } else if (Loop& loop = *Loop::current(); loop.clock().now_ns() >= deadline_ns) {
      s = errc::timed_out;
    } else {
      s = co_await WithTimeout<Stream::WaitMore>(stream.wait_more(), loop, deadline_ns);
    }
    if (started != nullptr) *started = parser.started() || !gather.buf.empty();
    if (!s) co_return s.error();
    if (in.bytes() == before) co_return errc::eof;
  }
}

// ---- bodies ----------------------------------------------------------------------------------------------------

BodyReader::BodyReader(const Request& request, const ChunkedLimits& chunked_limits) noexcept
    : chunked_(chunked_limits), framing_(request.framing()) {
  remaining_ = request.content_length();
  done_ = !request.has_body();
}

Result<Slice> BodyReader::take(SliceQueue& in) noexcept {
  if (status_ != 0) return bad_body;
  while (!done_ && !in.empty()) {
    const Slice& front = in.front();
    if (framing_ == BodyFraming::content_length) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, front.size()));
      Slice out = front.sub(0, n);
      in.consume(n);
      remaining_ -= n;
      bytes_read_ += n;
      done_ = remaining_ == 0;
      return out;
    }
    const ChunkedStep step = chunked_.decode(front.view());
    switch (step.status) {
      case ChunkedStatus::data: {
        Slice out = front.sub(step.consumed - step.data.size(), step.data.size());
        in.consume(step.consumed);
        bytes_read_ += out.size();
        return out;
      }
      case ChunkedStatus::done:
        in.consume(step.consumed);
        done_ = true;
        return Slice{};
      case ChunkedStatus::error:
        status_ = step.http_status;
        reason_ = step.reason;
        return bad_body;
      case ChunkedStatus::need_more:
        in.consume(step.consumed);  // all of the front slice: framing bytes only
        break;
    }
  }
  return Slice{};
}

Task<Result<Slice>> read_body_some(Stream& stream, BodyReader& body, std::int64_t deadline_ns) {
  SliceQueue& in = stream.inbound();
  for (;;) {
    Result<Slice> piece = body.take(in);
    if (!piece || !piece->empty() || body.done()) co_return std::move(piece);
    const std::size_t before = in.bytes();
    Status s = co_await wait_for_input(stream, deadline_ns);
    if (!s) co_return s.error();
    if (in.bytes() == before) co_return errc::eof;
  }
}

Task<Status> discard_body(Stream& stream, BodyReader& body, std::uint64_t max_bytes, std::int64_t deadline_ns) {
  SliceQueue& in = stream.inbound();
  if (body.framing() == BodyFraming::content_length && body.bytes_read() + body.remaining() > max_bytes) {
    co_return errc::frame_too_long;
  }
  for (;;) {
    Result<Slice> piece = body.take(in);
    if (!piece) co_return piece.error();
    if (body.bytes_read() > max_bytes) co_return errc::frame_too_long;
    if (body.done()) co_return Status{};
    if (!piece->empty()) continue;
    const std::size_t before = in.bytes();
    Status s = co_await wait_for_input(stream, deadline_ns);
    if (!s) co_return s;
    if (in.bytes() == before) co_return errc::eof;
  }
}

Task<Result<Slice>> read_whole_body(Stream& stream, const Request& request, std::uint64_t max_bytes,
                                    std::int64_t deadline_ns) {
  ChunkedLimits limits;
  limits.max_body_bytes = max_bytes;
  BodyReader body(request, limits);
  std::size_t capacity = request.framing() == BodyFraming::content_length
                             ? static_cast<std::size_t>(request.content_length())
                             : 4096;
  Slice holder(BufferPool::local().acquire(capacity), 0, static_cast<std::uint32_t>(capacity));
  std::size_t used = 0;
  for (;;) {
    Result<Slice> piece = co_await read_body_some(stream, body, deadline_ns);
    if (!piece) co_return piece.error();
    if (piece->empty()) break;
    if (used + piece->size() > max_bytes) co_return errc::frame_too_long;
    if (used + piece->size() > holder.size()) {
      std::size_t grown = std::max<std::size_t>(used + piece->size(), used * 2);
      Slice bigger(BufferPool::local().acquire(grown), 0, static_cast<std::uint32_t>(grown));
      std::memcpy(bigger.mutable_data(), holder.data(), used);
      holder = std::move(bigger);
    }
    std::memcpy(holder.mutable_data() + used, piece->data(), piece->size());
    used += piece->size();
  }
  co_return holder.sub(0, used);
}

}  // namespace ringlet::http

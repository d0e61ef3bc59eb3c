// slice_queue_fuzz.cpp — libFuzzer target for SliceQueue's framing readers.
//
// The input drives a session: receive a piece of bytes (cut wherever the fuzzer likes, into a new buffer or
// appended into the previous receive buffer, which exercises joining), then run a framing reader until it stops
// producing frames. Every answer is checked against a naive reference over the concatenated bytes still queued,
// and every frame's copy cost is checked (zero inside one slice, exactly the frame length across slices). At the
// end no buffer may be left outstanding.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ringlet/buf/copy_counter.hpp"
#include "ringlet/buf/slice_queue.hpp"

namespace {

using ringlet::FrameResult;
using Status = FrameResult::Status;

constexpr std::string_view kDelimiters[] = {"\n", "\r\n", "\r\n\r\n", "--", "aab", ":", "\r\n.\r\n"};
constexpr std::size_t kDelimiterCount = sizeof kDelimiters / sizeof kDelimiters[0];

struct Expected {
  Status status;
  std::size_t frame_len = 0;
  std::size_t consumed = 0;
};

// The rules, read naively over everything queued.
Expected reference_line(std::string_view avail, std::size_t max_len) {
  const std::size_t nl = avail.substr(0, max_len + 2).find('\n');
  if (nl == std::string_view::npos) return {avail.size() >= max_len + 2 ? Status::too_long : Status::need_more};
  const std::size_t len = nl > 0 && avail[nl - 1] == '\r' ? nl - 1 : nl;
  if (len > max_len) return {Status::too_long};
  return {Status::frame, len, nl + 1};
}

Expected reference_until(std::string_view avail, std::string_view delim, std::size_t max_len) {
  for (std::size_t start = 0; start <= max_len; ++start) {
    if (start >= avail.size()) return {Status::need_more};
    const std::string_view rest = avail.substr(start, delim.size());
    if (rest == delim) return {Status::frame, start, start + delim.size()};
    if (delim.starts_with(rest)) return {Status::need_more};
  }
  return {Status::too_long};
}

Expected reference_exactly(std::string_view avail, std::size_t n) {
  if (avail.size() < n) return {Status::need_more};
  return {Status::frame, n, n};
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "slice_queue_fuzz: %s\n", what);
    std::abort();
  }
}

void run_session(FuzzedDataProvider& in) {
  ringlet::SliceQueue q;
  std::string avail;                  // what the queue should hold
  std::size_t consumed = 0;           // stream offset of avail[0]
  std::vector<std::size_t> new_buffers;  // stream offsets where a piece started a new receive buffer
  ringlet::Buffer* receive = nullptr;  // the buffer the last piece was received into
  std::size_t receive_fill = 0;

  while (in.remaining_bytes() > 0) {
    // Receive one piece.
    const auto len = in.ConsumeIntegralInRange<std::size_t>(0, 40);
    const bool append = in.ConsumeBool();
    const std::string piece = in.ConsumeBytesAsString(len);
    if (!piece.empty()) {
      if (!append || !receive || receive_fill + piece.size() > receive->capacity) {
        if (receive) ringlet::buffer_unref(receive);
        receive = ringlet::BufferPool::local().acquire(piece.size());
        receive_fill = 0;
        new_buffers.push_back(consumed + avail.size());
      }
      // Filling a receive buffer plays the kernel's part, so it is not a counted copy.
      std::memcpy(receive->data + receive_fill, piece.data(), piece.size());
      ringlet::buffer_ref(receive);
      q.push(ringlet::Slice(receive, static_cast<std::uint32_t>(receive_fill),
                            static_cast<std::uint32_t>(piece.size())));
      receive_fill += piece.size();
      avail += piece;
    }

    // Frame until the reader stops.
    const auto op = in.ConsumeIntegralInRange<unsigned>(0, kDelimiterCount + 1);
    const auto arg = in.ConsumeIntegralInRange<std::size_t>(0, 64);
    for (;;) {
      Expected want;
      FrameResult got;
      const std::uint64_t copied_before = ringlet::bytes_copied();
      if (op == 0) {
        want = reference_line(avail, arg);
        got = q.take_line(arg);
      } else if (op <= kDelimiterCount) {
        want = reference_until(avail, kDelimiters[op - 1], arg);
        got = q.take_until(kDelimiters[op - 1], arg);
      } else {
        const std::size_t n = arg + 1;  // take_exactly(0) always succeeds and would never stop
        want = reference_exactly(avail, n);
        got = q.take_exactly(n);
      }
      const std::uint64_t copied = ringlet::bytes_copied() - copied_before;
      check(got.status == want.status, "status differs from the reference");
      if (got.status != Status::frame) {
        check(copied == 0, "a reader without a frame copied bytes");
        check(q.bytes() == avail.size(), "a reader without a frame consumed bytes");
        break;
      }
      check(got.frame.view() == std::string_view(avail).substr(0, want.frame_len), "frame differs");
      // Pieces appended into one buffer are joined, so a frame straddles only where a new buffer began.
      bool straddles = false;
      for (const std::size_t b : new_buffers) straddles |= consumed < b && b < consumed + want.frame_len;
      check(copied == (straddles ? want.frame_len : 0), "a frame inside one slice was copied, or a straddling "
                                                         "frame was not copied exactly once");
      avail.erase(0, want.consumed);
      consumed += want.consumed;
      check(q.bytes() == avail.size(), "queue size differs after a frame");
    }
  }
  if (receive) ringlet::buffer_unref(receive);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  run_session(in);
  check(ringlet::BufferPool::local().outstanding() == 0, "a buffer leaked");
  return 0;
}

// slice_queue.hpp — received bytes waiting to be parsed, as a queue of Slices, with framing readers.
// Core-local.
//
// Bytes arrive as Slices of receive buffers and leave as frames. A frame that lies inside one slice comes back as a
// view into that receive buffer (no copy); only a frame that straddles two or more slices is gathered into a fresh
// pooled buffer, and that copy is counted. A slice pushed right behind the previous one in the same buffer (a
// receive that appended into the buffer's free space) is joined to it, so such data never straddles.
//
// Framing readers are incremental: a reader that answers need_more remembers the first position where the
// delimiter could still start (for the same delimiter), and the next call resumes there, so each start position is
// tried once. Only a partial delimiter at the very end (at most delim.size() - 1 bytes) is looked at again. Anything
// that consumes from the queue resets the search.
//
// Limits: `max_len` bounds the frame, not counting its delimiter (nor a "\r" stripped by take_line). A reader
// answers too_long once it can tell the frame will exceed max_len: a delimiter found too far in, or max_len +
// delimiter bytes buffered with no delimiter. too_long consumes nothing; the caller decides what to drop.
#pragma once

#include <cstddef>
#include <cstring>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ringlet/buf/slice.hpp"
#include "ringlet/buf/slice_ring.hpp"

namespace ringlet {

struct FrameResult {
  enum class Status { frame, need_more, too_long } status;
  Slice frame;  // set when status == frame; empty for an empty frame
};

class SliceQueue {
 public:
  void push(Slice s);
  std::size_t bytes() const noexcept { return bytes_; }
  bool empty() const noexcept { return bytes_ == 0; }
  std::size_t slice_count() const noexcept { return ring_.size(); }
  const Slice& front() const noexcept {
    RINGLET_ASSERT(!ring_.empty());
    return ring_[0];
  }

  Slice pop_front() noexcept;                      // the whole front slice, zero copy; empty Slice if none
  std::size_t copy_out(std::span<std::byte> dst);  // copies and consumes up to dst.size() bytes (counted)
  void consume(std::size_t n) noexcept;            // n <= bytes()
  void clear() noexcept;
  // Copies loans from the shared receive ring and sparse slices out of their buffers (SliceRing::compact): a queue
  // nobody is reading gives back what it borrowed. Keeps the search state. Returns the bytes copied.
  std::size_t compact();

  FrameResult take_line(std::size_t max_len);  // up to "\n", also stripping a "\r" before it
  FrameResult take_until(std::string_view delim, std::size_t max_len);  // delim is consumed, not returned
  FrameResult take_exactly(std::size_t n);

  // Bytes the framing readers have examined since construction: lets tests prove that a slowly arriving frame is
  // not rescanned from the start on every call.
  // Bytes the framing readers of this thread have examined, in total (a per-thread counter, like bytes_copied():
  // a per-queue one would cost every connection 8 bytes). Tests use the difference to prove there is no rescan.
  static std::uint64_t bytes_scanned() noexcept;

 private:
  enum class Search { found, need_more, exhausted };  // exhausted: no delimiter starts at or before max_start
  enum class Match { yes, no, unknown };              // unknown: the queue ends inside a partial match
  Search search(std::string_view delim, std::size_t max_start);
  Match match_across(std::size_t slice, std::size_t offset, std::string_view delim);
  bool byte_before_match_is(char c) const noexcept;
  Slice take_front(std::size_t len, std::size_t skip);
  void reset_scan() noexcept;

  SliceRing ring_;
  std::size_t bytes_ = 0;

  // Search state: every delimiter start position before scan_pos_ has been ruled out for scan_delim_.
  // (scan_slice_, scan_offset_) is scan_pos_ located in the ring; scan_offset_ may equal that slice's size.
  // The delimiter the scan state belongs to, kept inline (a std::string would cost 32 bytes per connection).
  // Delimiters longer than kMaxDelim are never remembered: their searches restart, correct but without resume.
  struct DelimKey {
    static constexpr std::size_t kMaxDelim = 15;
    char bytes[kMaxDelim] = {};
    std::uint8_t len = 0xff;  // 0xff: none
    bool matches(std::string_view d) const noexcept {
      return d.size() == len && std::memcmp(bytes, d.data(), d.size()) == 0;
    }
    void set(std::string_view d) noexcept {
      if (d.size() > kMaxDelim) {
        len = 0xff;
        return;
      }
      std::memcpy(bytes, d.data(), d.size());
      len = static_cast<std::uint8_t>(d.size());
    }
  };
  DelimKey scan_delim_;
  std::uint32_t scan_slice_ = 0;
  std::uint32_t scan_offset_ = 0;
  std::size_t scan_pos_ = 0;
};

}  // namespace ringlet

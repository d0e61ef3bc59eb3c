// slice_queue.cpp — consuming from the queue and the incremental delimiter search behind the framing readers.
#include "ringlet/buf/slice_queue.hpp"

#include <algorithm>
#include <cstring>

#include "ringlet/buf/copy_counter.hpp"

namespace ringlet {

namespace {
thread_local std::uint64_t t_bytes_scanned = 0;
}  // namespace

std::uint64_t SliceQueue::bytes_scanned() noexcept { return t_bytes_scanned; }

void SliceQueue::push(Slice s) {
  if (s.empty()) return;
  const std::size_t n = s.size();
  if (ring_.empty() || !ring_.back().try_join(s)) ring_.push_back(std::move(s));
  bytes_ += n;
}

Slice SliceQueue::pop_front() noexcept {
  if (ring_.empty()) return {};
  Slice s = ring_.pop_front();
  bytes_ -= s.size();
  reset_scan();
  return s;
}

std::size_t SliceQueue::copy_out(std::span<std::byte> dst) {
  const std::size_t n = std::min(dst.size(), bytes_);
  std::size_t done = 0;
  for (std::size_t i = 0; done < n; ++i) {
    const Slice& s = ring_[i];
    const std::size_t k = std::min(s.size(), n - done);
    counted_copy(dst.data() + done, s.data(), k);
    done += k;
  }
  consume(n);
  return n;
}

void SliceQueue::consume(std::size_t n) noexcept {
  RINGLET_ASSERT(n <= bytes_);
  bytes_ -= n;
  ring_.consume_front(n);
  reset_scan();
}

void SliceQueue::clear() noexcept {
  ring_.clear();
  bytes_ = 0;
  reset_scan();
}

std::size_t SliceQueue::compact() {
  const std::size_t copied = ring_.compact(SliceRing::Copy::loans_and_sparse);
  if (copied == 0) return 0;
  // The slices moved: find scan_pos_ again (the bytes before it are the same bytes, so what was ruled out stays
  // ruled out). A position on a boundary may sit at the end of one slice, as search() leaves it.
  std::size_t i = 0;
  std::size_t pos = scan_pos_;
  while (i + 1 < ring_.size() && pos > ring_[i].size()) pos -= ring_[i++].size();
  if (ring_.empty()) pos = 0;
  scan_slice_ = static_cast<std::uint32_t>(i);
  scan_offset_ = static_cast<std::uint32_t>(pos);
  return copied;
}

FrameResult SliceQueue::take_line(std::size_t max_len) {
  // The "\n" may sit one byte past max_len when a "\r" precedes it.
  const std::size_t max_start = max_len == SIZE_MAX ? max_len : max_len + 1;
  switch (search("\n", max_start)) {
    case Search::found: {
      const std::size_t newline = scan_pos_;
      const std::size_t len = byte_before_match_is('\r') ? newline - 1 : newline;
      if (len > max_len) return {FrameResult::Status::too_long, {}};
      return {FrameResult::Status::frame, take_front(len, newline + 1 - len)};
    }
    case Search::need_more:
      return {FrameResult::Status::need_more, {}};
    case Search::exhausted:
      break;
  }
  return {FrameResult::Status::too_long, {}};
}

FrameResult SliceQueue::take_until(std::string_view delim, std::size_t max_len) {
  RINGLET_ASSERT(!delim.empty());
  switch (search(delim, max_len)) {
    case Search::found:
      return {FrameResult::Status::frame, take_front(scan_pos_, delim.size())};
    case Search::need_more:
      return {FrameResult::Status::need_more, {}};
    case Search::exhausted:
      break;
  }
  return {FrameResult::Status::too_long, {}};
}

FrameResult SliceQueue::take_exactly(std::size_t n) {
  if (bytes_ < n) return {FrameResult::Status::need_more, {}};
  return {FrameResult::Status::frame, take_front(n, 0)};
}

// Finds the first start position p >= scan_pos_, p <= max_start, where `delim` occurs. On `found`, the scan state
// points at the match; otherwise at the first position not yet ruled out.
//
// Within one slice the search is a plain string_view::find (memchr for one-byte delimiters). Only the last
// delim.size() - 1 start positions of a slice, where the delimiter would run into the next slice, are compared
// piecewise across slices.
SliceQueue::Search SliceQueue::search(std::string_view delim, std::size_t max_start) {
  if (!scan_delim_.matches(delim)) {
    scan_delim_.set(delim);
    reset_scan();
  }
  const std::size_t d = delim.size();
  std::size_t i = scan_slice_;
  std::size_t off = scan_offset_;
  std::size_t pos = scan_pos_;
  Search result = Search::need_more;
  for (;;) {
    if (pos > max_start) {
      result = Search::exhausted;
      break;
    }
    if (i == ring_.size()) break;
    const std::string_view sv = ring_[i].view();
    if (off == sv.size()) {
      ++i;
      off = 0;
      continue;
    }
    // Last start position to try in this slice, bounded by max_start (written to avoid overflow at SIZE_MAX).
    const std::size_t room = max_start - pos;
    const std::size_t last = room >= sv.size() - 1 - off ? sv.size() - 1 : off + room;
    if (off + d <= sv.size()) {
      const std::size_t end = std::min(last, sv.size() - d);
      const std::size_t len = end - off + d;
      const std::size_t hit = sv.substr(off, len).find(delim);
      if (hit != std::string_view::npos) {
        t_bytes_scanned += hit + d;
        off += hit;
        pos += hit;
        result = Search::found;
        break;
      }
      t_bytes_scanned += len;
      pos += end + 1 - off;
      off = end + 1;
    }
    Match m = Match::no;
    for (; off <= last; ++off, ++pos) {
      m = match_across(i, off, delim);
      if (m != Match::no) break;
    }
    if (m == Match::yes) {
      result = Search::found;
      break;
    }
    if (m == Match::unknown) break;
  }
  if (i == ring_.size() && i > 0) {  // park at the end of the last slice, so a joined push extends it in place
    --i;
    off = ring_[i].size();
  }
  scan_slice_ = static_cast<std::uint32_t>(i);
  scan_offset_ = static_cast<std::uint32_t>(off);
  scan_pos_ = pos;
  return result;
}

SliceQueue::Match SliceQueue::match_across(std::size_t slice, std::size_t offset, std::string_view delim) {
  std::size_t matched = 0;
  for (std::size_t j = slice; matched < delim.size(); ++j, offset = 0) {
    if (j == ring_.size()) return Match::unknown;
    const std::string_view sv = ring_[j].view();
    const std::size_t n = std::min(sv.size() - offset, delim.size() - matched);
    t_bytes_scanned += n;
    if (std::memcmp(sv.data() + offset, delim.data() + matched, n) != 0) return Match::no;
    matched += n;
  }
  return Match::yes;
}

bool SliceQueue::byte_before_match_is(char c) const noexcept {
  if (scan_offset_ > 0) return ring_[scan_slice_].view()[scan_offset_ - 1] == c;
  if (scan_slice_ > 0) return ring_[scan_slice_ - 1].view().back() == c;
  return false;
}

// Removes and returns the first `len` bytes as one Slice, then drops `skip` more (the delimiter).
Slice SliceQueue::take_front(std::size_t len, std::size_t skip) {
  Slice frame;
  if (len > 0) {
    Slice& f = ring_.front();
    if (len == f.size()) {
      frame = ring_.pop_front();
      bytes_ -= len;
    } else if (len < f.size()) {
      frame = f.sub(0, len);
      f.remove_prefix(len);
      bytes_ -= len;
    } else {
      // The frame straddles slices: the only copy a framing reader makes.
      RINGLET_ASSERT(len <= UINT32_MAX);
      Buffer* b = BufferPool::local().acquire(len);
      frame = Slice(b, 0, static_cast<std::uint32_t>(len));
      copy_out({b->data, len});
    }
  }
  consume(skip);
  return frame;
}

void SliceQueue::reset_scan() noexcept {
  scan_slice_ = 0;
  scan_offset_ = 0;
  scan_pos_ = 0;
}

}  // namespace ringlet

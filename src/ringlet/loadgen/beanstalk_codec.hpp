// beanstalk_codec.hpp — `ringlet bench beanstalk`'s side of beanstalkd's protocol: the commands of a put -> reserve
// -> delete cycle and the checking of their replies. The wire grammar itself (spelling commands, reading reply
// lines) is proto/beanstalk/client.hpp; what is here is the load generator's: self-checking job bodies, and
// whether a reply is the one its command must get. Pure: no I/O, no clock. Core-local (one per connection;
// BodyPattern holds a Slice).
//
// Commands and the one reply each accepts (any other line is wrong, and named):
//   use <tube>                         USING <tube>
//   watch <tube> / ignore <tube>       WATCHING <count>
//   put <pri> <delay> <ttr> <bytes>    INSERTED <id>
//   reserve-with-timeout <seconds>     RESERVED <id> <bytes>\r\n<body>\r\n      (TIMED_OUT is wrong: see the doc)
//   reserve                            same
//   delete <id>                        DELETED
//
// Job bodies check themselves, because the job a connection reserves is usually another connection's:
//   bytes [0, 16)   hex16(seed)          any 64-bit number, fresh per put
//   bytes [16, 24)  hex8(size)           the body's own length
//   bytes [24, n)   pattern[off, off + n - 24), off = mix(seed) % kPatternSlack
// so whoever reserves a job can check every byte of it from the body alone. A body is at least 24 bytes.
// If you change this layout, jobs left in a tube by an older ringlet no longer verify.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ringlet/buf/slice.hpp"
#include "ringlet/buf/slice_queue.hpp"
#include "ringlet/loadgen/workload.hpp"
#include "ringlet/proto/beanstalk/client.hpp"

namespace ringlet::loadgen::beanstalk {

inline constexpr std::size_t kCopyBodyBelow = 512;     // shorter body tails are copied into the request

// The self-checking job bodies. Core-local.
class BodyPattern {
 public:
  static constexpr std::size_t kHeaderSize = 24;
  static constexpr std::size_t kPatternSlack = 256;

  // Bodies of up to max_size bytes can be written and checked.
  explicit BodyPattern(std::size_t max_size);
  std::size_t max_size() const noexcept { return max_size_; }

  void header(std::uint64_t seed, std::size_t size, char out[kHeaderSize]) const noexcept;
  Slice tail(std::uint64_t seed, std::size_t size) const noexcept;  // bytes [24, size)
  // Whether `data` equals bytes [pos, pos + data.size()) of the tail (pos counts from the body's start, >= 24).
  bool tail_matches(std::uint64_t seed, std::size_t pos, std::string_view data) const noexcept;
  // Parses a received header; false if it is not one of ours or names another size.
  static bool parse_header(std::string_view header, std::size_t size, std::uint64_t& seed) noexcept;

 private:
  static std::uint32_t offset_of(std::uint64_t seed) noexcept;
  std::size_t max_size_;
  Slice pattern_;
};

struct PutArgs {
  std::uint32_t priority = 1024;
  std::uint32_t delay_s = 0;
  std::uint32_t ttr_s = 60;
};

// Composes commands into a RequestSink. Formats on the stack: no allocation.
class RequestWriter {
 public:
  explicit RequestWriter(const BodyPattern& bodies) noexcept : bodies_(&bodies) {}

  void use(RequestSink& out, std::string_view tube);
  void watch(RequestSink& out, std::string_view tube);
  void ignore(RequestSink& out, std::string_view tube);
  void put(RequestSink& out, const PutArgs& args, std::uint64_t seed, std::size_t size);
  // timeout_s < 0: plain "reserve" (waits forever).
  void reserve(RequestSink& out, int timeout_s);
  void delete_job(RequestSink& out, std::uint64_t id);

 private:
  const BodyPattern* bodies_;
};

// What the reply to one command must be.
enum class Expect : std::uint8_t { use, watch, put, reserve, delete_job };

// Parses and verifies the reply to the oldest command in flight. Call reset() before each new reply.
class ReplyParser {
 public:
  explicit ReplyParser(const BodyPattern& bodies) noexcept : bodies_(&bodies) {}

  void reset() noexcept;
  Reply parse(SliceQueue& in, Expect e);
  // After a reserve completes: the job's id. After a put: the new job's id.
  std::uint64_t job_id() const noexcept { return id_; }

 private:
  enum class Phase : std::uint8_t { line, header, body, body_end };
  Reply on_line(const ::ringlet::beanstalk::ReplyLine& line, Expect e);
  Reply parse_body(SliceQueue& in);

  const BodyPattern* bodies_;
  ::ringlet::beanstalk::ReplyParser lines_;
  Phase phase_ = Phase::line;
  std::uint64_t id_ = 0;
  std::size_t size_ = 0;        // the reserved body's length
  std::size_t pos_ = 0;         // bytes of it checked
  std::uint64_t seed_ = 0;      // from the body's header
  char header_[BodyPattern::kHeaderSize] = {};
};

}  // namespace ringlet::loadgen::beanstalk

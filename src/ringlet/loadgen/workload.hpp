// workload.hpp — what a `ringlet bench` workload is: the protocol a load-generator connection speaks.
//
// The generator core (loadgen/driver.*) owns connections, timing, scheduling, histograms and error counting; a
// workload only writes requests and checks replies. Three levels, by lifetime and thread:
//
//   Workload            one per run, built on the main thread from the command line. declare_options() binds its
//                       options, configure() validates them and the TARGET. Immutable afterwards, and then read
//                       by every worker thread at once: thread-safe because nothing changes.
//   WorkloadShard       one per worker (per thread / loop), created on that worker's thread. Holds what must be
//                       core-local: prebuilt request bytes as Slices (a Buffer's refcount is not atomic), RNGs,
//                       key generators. setup() runs once before any connection of this worker starts.
//   WorkloadConnection  one per connection, created by its shard on the same thread. Writes requests, parses
//                       replies, remembers what it expects back. Core-local.
//
// The request/reply contract (the core relies on it):
//   - write_request() appends exactly one request to `out` (queue a prebuilt Slice: no copy, no allocation) and
//     returns true, or returns false when it cannot issue one now (e.g. it needs a reply first, as a beanstalk
//     delete needs the reserved job's id). The core calls it when a request slot is free (closed loop: up to
//     --depth in flight; open loop: when a scheduled send time has come and a slot is free), and never while
//     parse_reply() is running. The core flushes the stream once per loop turn, so requests written in one turn
//     go out in one send.
//   - Replies arrive in request order. parse_reply() looks at the reply to the OLDEST request in flight, at the
//     front of `in` (the stream's received bytes, zero copy). It returns
//       complete   — the whole reply was verified and consumed from `in`; the core records one operation and its
//                    latency, and may call write_request() again;
//       need_more  — not all of the reply is here yet; it consumed nothing it will need again (it may consume
//                    and remember progress, e.g. body bytes already counted). `eof` true means the peer closed:
//                    a close-delimited reply completes then; anything else answering need_more at eof is counted
//                    as a reset;
//       wrong      — the reply is not what was expected (a byte differs, a bad status, a bad length, a protocol
//                    error). `what` names the problem (a static string). The core counts an error of kind
//                    wrong_reply, closes the connection and reconnects with a new WorkloadConnection.
//   - parse_reply() is called only while at least one request is in flight.
//   - Verification is the workload's job: every reply is checked (echo: every byte; http: status and length).
//
// Adding a workload: one file (loadgen/<name>.cpp with a make_<name>_workload() factory) and one line in the
// table in loadgen/registry.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ringlet/buf/output_chain.hpp"
#include "ringlet/buf/slice.hpp"
#include "ringlet/buf/slice_queue.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/net/stream.hpp"
#include "ringlet/base/result.hpp"
#include "ringlet/runtime/task.hpp"

namespace ringlet::loadgen {

// Errors the generator counts, by kind. Keep kErrorKindNames in the same order.
enum class ErrorKind : std::uint8_t { connect, reset, timeout, wrong_reply, other };
inline constexpr std::size_t kErrorKindCount = 5;
inline constexpr std::string_view kErrorKindNames[kErrorKindCount] = {"connect", "reset", "timeout", "wrong_reply",
                                                                      "other"};
constexpr std::string_view error_kind_name(ErrorKind k) noexcept { return kErrorKindNames[static_cast<int>(k)]; }

// Where requests go: appends to a stream's output chain (sent once per loop turn) or, in tests, to an OutputChain.
class RequestSink {
 public:
  explicit RequestSink(Stream& stream) noexcept : stream_(&stream) {}
  explicit RequestSink(OutputChain& chain) noexcept : chain_(&chain) {}

  // Appends without copying (a prebuilt request: refcount bump only).
  void queue(Slice slice) {
    if (stream_ != nullptr) {
      stream_->queue(std::move(slice));
    } else {
      chain_->append(std::move(slice));
    }
  }
  // Copies small, varying bytes (a key, a job id) into the chain's pooled tail.
  void queue_copy(std::string_view text) {
    if (stream_ != nullptr) {
      stream_->queue_copy(text);
    } else {
      chain_->append_copy(text);
    }
  }

 private:
  Stream* stream_ = nullptr;
  OutputChain* chain_ = nullptr;
};

struct Reply {
  enum class Status : std::uint8_t { complete, need_more, wrong } status;
  const char* what = nullptr;  // for wrong: a static description ("echoed byte differs", "status 500")
  // With complete: the server closes the connection after this reply (HTTP "Connection: close"). The core
  // reconnects without counting an error; requests still in flight on this connection are dropped.
  bool close_after = false;

  static Reply complete() noexcept { return {Status::complete, nullptr, false}; }
  static Reply complete_then_close() noexcept { return {Status::complete, nullptr, true}; }
  static Reply need_more() noexcept { return {Status::need_more, nullptr, false}; }
  static Reply wrong(const char* what) noexcept { return {Status::wrong, what, false}; }
};

inline const char* to_string(Reply::Status s) noexcept {
  switch (s) {
    case Reply::Status::complete:
      return "complete";
    case Reply::Status::need_more:
      return "need_more";
    case Reply::Status::wrong:
      return "wrong";
  }
  return "?";
}

// Options every workload sees (the common command-line options, already validated).
struct CommonConfig {
  unsigned connections = 50;  // in total, over all workers
  unsigned depth = 1;         // requests in flight per connection
  unsigned threads = 1;
};

// A workload declares its options through this (the command line implements it; workloads never see CLI11).
// Each call binds an option to a variable the workload owns; values are stored there when the command line is
// parsed, before configure(). Flags are spelled with their dashes: "--size".
class OptionSink {
 public:
  virtual void add_string(std::string_view flag, std::string& value, std::string_view help) = 0;
  virtual void add_strings(std::string_view flag, std::vector<std::string>& values, std::string_view help) = 0;
  virtual void add_choice(std::string_view flag, std::string& value, std::string_view help,
                          std::vector<std::string> choices) = 0;
  virtual void add_uint(std::string_view flag, std::uint64_t& value, std::string_view help, std::uint64_t min,
                        std::uint64_t max) = 0;
  virtual void add_double(std::string_view flag, double& value, std::string_view help, double min, double max) = 0;
  virtual void add_flag(std::string_view flag, bool& value, std::string_view help) = 0;

 protected:
  ~OptionSink() = default;
};

struct ConnectionContext {
  unsigned worker_index;      // 0 .. worker_count - 1
  unsigned connection_index;  // index of this connection inside its worker
  std::uint64_t generation;   // how many times this connection slot has (re)connected, from 0
  unsigned depth;             // most requests this connection will have in flight
};

struct ShardContext {
  unsigned worker_index;
  unsigned worker_count;
  unsigned connections;  // this worker's share
  Address target;        // resolved
};

class WorkloadConnection {
 public:
  virtual ~WorkloadConnection() = default;
  // Runs once after connecting, before any request (e.g. "use <tube>" for beanstalk). May do I/O on `stream`;
  // must leave nothing unread. An error counts as kind `other` and the connection is retried.
  virtual Task<Status> start(Stream& stream) {
    (void)stream;
    co_return Status{};
  }
  // See the contract at the top of this file.
  virtual bool write_request(RequestSink& out) = 0;
  virtual Reply parse_reply(SliceQueue& in, bool eof) = 0;
};

class WorkloadShard {
 public:
  virtual ~WorkloadShard() = default;
  // Runs once per worker before its connections start (e.g. worker 0 preloads keys). An error aborts the run.
  virtual Task<Status> setup(const ShardContext& context) {
    (void)context;
    co_return Status{};
  }
  virtual std::unique_ptr<WorkloadConnection> new_connection(const ConnectionContext& context) = 0;
};

class Workload {
 public:
  virtual ~Workload() = default;
  // Binds this workload's own options (called once, before parsing).
  virtual void declare_options(OptionSink& options) = 0;
  // Validates the options and TARGET (a URL for http, HOST:PORT otherwise) after parsing. On failure returns a
  // message for the user (no "error:" prefix); empty means fine.
  virtual std::string configure(std::string_view target, const CommonConfig& common) = 0;
  // Where to connect, after configure(): a host name or numeric address and a port.
  virtual std::string host() const = 0;
  virtual std::uint16_t port() const = 0;
  // Called on each worker's thread. Must be safe to call from several threads at once (read-only use of this).
  virtual std::unique_ptr<WorkloadShard> create_shard(const ShardContext& context) const = 0;
};

// The registry (loadgen/registry.cpp): every workload `ringlet bench` offers.
struct WorkloadEntry {
  std::string_view name;      // the subcommand: "echo"
  std::string_view summary;   // one line for --help
  std::string_view target;    // what TARGET is: "HOST:PORT" or "URL"
  std::unique_ptr<Workload> (*make)();
};
std::span<const WorkloadEntry> workloads() noexcept;

// Splits "host:port" / "[v6]:port" into its parts (no name resolution). Helper for configure().
Result<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view text);

}  // namespace ringlet::loadgen

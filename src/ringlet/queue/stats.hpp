// stats.hpp — the YAML documents of stats, stats-tube, stats-job, list-tubes and list-tubes-watched, field for field
// as beanstalkd 1.12/1.13 writes them (monitoring tools parse these names), from a QueueState plus the facts only the
// server knows (command counts, process, binlog). Pure formatting; core-local like the state it reads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringlet/proto/beanstalk/command.hpp"
#include "ringlet/queue/state.hpp"

namespace ringlet::queue {

// What `stats` reports besides the queue state.
struct ServerFacts {
  const std::uint64_t* command_counts = nullptr;  // indexed by beanstalk::Command (kCommandCount entries)
  std::uint64_t max_job_size = 0;
  long pid = 0;
  std::string_view version;
  std::int64_t utime_us = 0;
  std::int64_t stime_us = 0;
  std::uint64_t uptime_s = 0;
  std::uint64_t binlog_oldest_index = 0;
  std::uint64_t binlog_current_index = 0;
  std::uint64_t binlog_records_migrated = 0;
  std::uint64_t binlog_records_written = 0;
  std::uint64_t binlog_max_size = 0;
  std::uint64_t binlog_live_bytes = 0;  // ours, not beanstalkd's: bytes of records still needed
  std::uint64_t binlog_dead_bytes = 0;  // bytes on disk no longer needed (compaction reclaims them)
  bool binlog_enabled = false;
  bool draining = false;
  std::string_view instance_id;  // 16 hex digits, fixed for the process's life
  std::string_view hostname;
  std::string_view os;
  std::string_view platform;
};

void write_server_stats(std::string& out, const QueueState& state, const ServerFacts& facts);
void write_tube_stats(std::string& out, const Tube& tube, std::int64_t now);
// `file`: the binlog segment holding the job (0 without a binlog).
void write_job_stats(std::string& out, const Job& job, std::int64_t now, std::uint64_t file);
void write_tube_list(std::string& out, const QueueState& state);
void write_watched_list(std::string& out, const Session& session);

}  // namespace ringlet::queue

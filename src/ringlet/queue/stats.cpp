// stats.cpp — beanstalkd's stats documents (prot.c: STATS_FMT, STATS_TUBE_FMT, STATS_JOB_FMT), in its field order.
#include "ringlet/queue/stats.hpp"

#include <cstdio>

#include "ringlet/proto/beanstalk/reply.hpp"

namespace ringlet::queue {

namespace {

using beanstalk::Command;
using beanstalk::YamlWriter;

std::string_view seconds_and_micros(char (&buf)[32], std::int64_t us) {
  int n = std::snprintf(buf, sizeof buf, "%lld.%06lld", static_cast<long long>(us / 1'000'000),
                        static_cast<long long>(us % 1'000'000));
  return std::string_view(buf, static_cast<std::size_t>(n));
}

}  // namespace

void write_server_stats(std::string& out, const QueueState& state, const ServerFacts& f) {
  const QueueCounters& c = state.counters();
  auto cmd = [&](Command k) { return f.command_counts ? f.command_counts[static_cast<std::size_t>(k)] : 0; };
  char utime[32];
  char stime[32];
  YamlWriter w(out);
  w.field("current-jobs-urgent", c.urgent)
      .field("current-jobs-ready", c.ready)
      .field("current-jobs-reserved", c.reserved)
      .field("current-jobs-delayed", c.delayed)
      .field("current-jobs-buried", c.buried)
      .field("cmd-put", cmd(Command::put))
      .field("cmd-peek", cmd(Command::peek))
      .field("cmd-peek-ready", cmd(Command::peek_ready))
      .field("cmd-peek-delayed", cmd(Command::peek_delayed))
      .field("cmd-peek-buried", cmd(Command::peek_buried))
      .field("cmd-reserve", cmd(Command::reserve))
      .field("cmd-reserve-with-timeout", cmd(Command::reserve_with_timeout))
      .field("cmd-delete", cmd(Command::delete_job))
      .field("cmd-release", cmd(Command::release))
      .field("cmd-use", cmd(Command::use))
      .field("cmd-watch", cmd(Command::watch))
      .field("cmd-ignore", cmd(Command::ignore))
      .field("cmd-bury", cmd(Command::bury))
      .field("cmd-kick", cmd(Command::kick))
      .field("cmd-touch", cmd(Command::touch))
      .field("cmd-stats", cmd(Command::stats))
      .field("cmd-stats-job", cmd(Command::stats_job))
      .field("cmd-stats-tube", cmd(Command::stats_tube))
      .field("cmd-list-tubes", cmd(Command::list_tubes))
      .field("cmd-list-tube-used", cmd(Command::list_tube_used))
      .field("cmd-list-tubes-watched", cmd(Command::list_tubes_watched))
      .field("cmd-pause-tube", cmd(Command::pause_tube))
      .field("job-timeouts", c.timeouts)
      .field("total-jobs", c.total_jobs)
      .field("max-job-size", f.max_job_size)
      .field("current-tubes", state.tubes().size())
      .field("current-connections", c.sessions)
      .field("current-producers", c.producers)
      .field("current-workers", c.workers)
      .field("current-waiting", c.waiting)
      .field("total-connections", c.total_sessions)
      .field("pid", f.pid)
      .quoted("version", f.version)
      .field("rusage-utime", seconds_and_micros(utime, f.utime_us))
      .field("rusage-stime", seconds_and_micros(stime, f.stime_us))
      .field("uptime", f.uptime_s)
      .field("binlog-oldest-index", f.binlog_oldest_index)
      .field("binlog-current-index", f.binlog_current_index)
      .field("binlog-records-migrated", f.binlog_records_migrated)
      .field("binlog-records-written", f.binlog_records_written)
      .field("binlog-max-size", f.binlog_max_size)
      .field("binlog-live-bytes", f.binlog_live_bytes)
      .field("binlog-dead-bytes", f.binlog_dead_bytes)
      .field("draining", f.draining ? std::string_view("true") : std::string_view("false"))
      .field("id", f.instance_id)
      .quoted("hostname", f.hostname)
      .quoted("os", f.os)
      .quoted("platform", f.platform);
}

void write_tube_stats(std::string& out, const Tube& t, std::int64_t now) {
  const std::int64_t left = t.pause_ns > 0 ? std::max<std::int64_t>(0, QueueState::seconds(t.unpause_at - now)) : 0;
  YamlWriter w(out);
  w.quoted("name", t.name)
      .field("current-jobs-urgent", t.urgent)
      .field("current-jobs-ready", t.ready.size())
      .field("current-jobs-reserved", t.reserved)
      .field("current-jobs-delayed", t.delayed.size())
      .field("current-jobs-buried", t.buried.size())
      .field("total-jobs", t.total_jobs)
      .field("current-using", t.using_count)
      .field("current-watching", t.watching_count)
      .field("current-waiting", t.waiting_count)
      .field("cmd-delete", t.deletes)
      .field("cmd-pause-tube", t.pauses)
      .field("pause", QueueState::seconds(t.pause_ns))
      .field("pause-time-left", left);
}

void write_job_stats(std::string& out, const Job& j, std::int64_t now, std::uint64_t file) {
  const bool timed = j.state == JobState::reserved || j.state == JobState::delayed;
  YamlWriter w(out);
  w.field("id", j.id)
      .quoted("tube", j.tube->name)
      .field("state", job_state_name(j.state))
      .field("pri", j.priority)
      .field("age", QueueState::seconds(now - j.created_ns))
      .field("delay", QueueState::seconds(j.delay_ns))
      .field("ttr", QueueState::seconds(j.ttr_ns))
      .field("time-left", timed ? QueueState::seconds(j.deadline_ns - now) : std::int64_t{0})
      .field("file", file)
      .field("reserves", j.reserves)
      .field("timeouts", j.timeouts)
      .field("releases", j.releases)
      .field("buries", j.buries)
      .field("kicks", j.kicks);
}

void write_tube_list(std::string& out, const QueueState& state) {
  YamlWriter w(out);
  for (const Tube* t : state.tubes()) w.item(t->name);
}

void write_watched_list(std::string& out, const Session& s) {
  YamlWriter w(out);
  for (const Tube* t : s.watched) w.item(t->name);
}

}  // namespace ringlet::queue

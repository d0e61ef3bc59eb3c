// command.hpp — beanstalkd's commands (protocol 1.12/1.13) as one constexpr table: name, how the name is matched,
// the arguments in order and what may follow them. The request parser (request_parser.hpp) walks this table; the
// client (client.hpp) spells commands with the same names. Pure data, no state: thread-safe.
//
// How a name is matched, as beanstalkd's which_cmd() does (so that every line gets beanstalkd's answer):
//   Match::word    the name and one space start the line ("delete 5"). "delete" alone is UNKNOWN_COMMAND.
//   Match::prefix  the name starts the line, whatever follows ("reserve", "stats", "peek-ready", "quit",
//                  "pause-tube"). What follows is then judged by the arguments and Tail: "reservex" is the reserve
//                  command with trailing bytes (BAD_FORMAT), "quit now" quits.
// The first entry that matches wins. No entry may match a prefix of what a later one matches (reserve-job and
// reserve-with-timeout come before reserve, stats-job and stats-tube before stats, list-tubes-watched before
// list-tubes): then the first match is the longest, and a static_assert below keeps it so.
//
// If you add a command: one row here, one enumerator in Command (same order as kCommandNames), and the server's
// handler. Argument kinds are parsed in request_parser.cpp (rules at the top of request_parser.hpp).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ringlet::beanstalk {

enum class Command : std::uint8_t {
  put,
  use,
  reserve,
  reserve_with_timeout,
  reserve_job,
  delete_job,
  release,
  bury,
  touch,
  watch,
  ignore,
  peek,
  peek_ready,
  peek_delayed,
  peek_buried,
  kick,
  kick_job,
  stats_job,
  stats_tube,
  stats,
  list_tubes,
  list_tube_used,
  list_tubes_watched,
  pause_tube,
  quit,
};
inline constexpr std::size_t kCommandCount = 25;

// The wire names, indexed by Command.
inline constexpr std::string_view kCommandNames[kCommandCount] = {
    "put",        "use",          "reserve",     "reserve-with-timeout", "reserve-job",    "delete",
    "release",    "bury",         "touch",       "watch",                "ignore",         "peek",
    "peek-ready", "peek-delayed", "peek-buried", "kick",                 "kick-job",       "stats-job",
    "stats-tube", "stats",        "list-tubes",  "list-tube-used",       "list-tubes-watched",
    "pause-tube", "quit",
};
constexpr std::string_view command_name(Command c) noexcept { return kCommandNames[static_cast<std::size_t>(c)]; }

// What an argument is; also names the Request field it is stored in.
enum class Arg : std::uint8_t {
  id,         // u64 job id
  priority,   // u32
  delay,      // u32 seconds
  ttr,        // u32 seconds
  bytes,      // u32 body length
  timeout,    // u32 seconds, at most 2^31 - 1 (beanstalkd keeps it in an int)
  bound,      // u32: kick's most jobs
  tube,       // the rest of the line is a tube name (no space before it, none after)
  tube_word,  // spaces, then a run of tube-name bytes (pause-tube: a number follows)
};

enum class Match : std::uint8_t { word, prefix };
// What may follow the last argument: nothing (else BAD_FORMAT), or anything, ignored (beanstalkd reads these
// arguments with strtoul and never looks at what follows).
enum class Tail : std::uint8_t { nothing, ignored };

struct CommandSpec {
  Command command;
  Match match;
  Tail tail;
  std::uint8_t arity;
  std::array<Arg, 4> args;

  constexpr std::string_view name() const noexcept { return command_name(command); }
  // The bytes a line must start with to be this command.
  constexpr std::size_t match_length() const noexcept { return name().size() + (match == Match::word ? 1 : 0); }
  constexpr bool matches(std::string_view line) const noexcept {
    const std::string_view n = name();
    if (line.size() < match_length() || line.substr(0, n.size()) != n) return false;
    return match == Match::prefix || line[n.size()] == ' ';
  }
};

// In lookup order: the busiest commands first, each longer name before any name that is its prefix.
inline constexpr CommandSpec kCommands[kCommandCount] = {
    {Command::put, Match::word, Tail::nothing, 4, {Arg::priority, Arg::delay, Arg::ttr, Arg::bytes}},
    {Command::reserve_with_timeout, Match::word, Tail::ignored, 1, {Arg::timeout}},
    {Command::reserve_job, Match::word, Tail::nothing, 1, {Arg::id}},
    {Command::reserve, Match::prefix, Tail::nothing, 0, {}},
    {Command::delete_job, Match::word, Tail::nothing, 1, {Arg::id}},
    {Command::release, Match::word, Tail::nothing, 3, {Arg::id, Arg::priority, Arg::delay}},
    {Command::bury, Match::word, Tail::nothing, 2, {Arg::id, Arg::priority}},
    {Command::touch, Match::word, Tail::nothing, 1, {Arg::id}},
    {Command::use, Match::word, Tail::nothing, 1, {Arg::tube}},
    {Command::watch, Match::word, Tail::nothing, 1, {Arg::tube}},
    {Command::ignore, Match::word, Tail::nothing, 1, {Arg::tube}},
    {Command::peek, Match::word, Tail::nothing, 1, {Arg::id}},
    {Command::peek_ready, Match::prefix, Tail::nothing, 0, {}},
    {Command::peek_delayed, Match::prefix, Tail::nothing, 0, {}},
    {Command::peek_buried, Match::prefix, Tail::nothing, 0, {}},
    {Command::kick, Match::word, Tail::ignored, 1, {Arg::bound}},
    {Command::kick_job, Match::word, Tail::nothing, 1, {Arg::id}},
    {Command::stats_job, Match::word, Tail::nothing, 1, {Arg::id}},
    {Command::stats_tube, Match::word, Tail::nothing, 1, {Arg::tube}},
    {Command::stats, Match::prefix, Tail::nothing, 0, {}},
    {Command::list_tubes_watched, Match::prefix, Tail::nothing, 0, {}},
    {Command::list_tube_used, Match::prefix, Tail::nothing, 0, {}},
    {Command::list_tubes, Match::prefix, Tail::nothing, 0, {}},
    {Command::pause_tube, Match::prefix, Tail::nothing, 2, {Arg::tube_word, Arg::delay}},
    {Command::quit, Match::prefix, Tail::ignored, 0, {}},
};

// The table row of a command.
constexpr const CommandSpec& command_spec(Command c) noexcept {
  for (const CommandSpec& spec : kCommands) {
    if (spec.command == c) return spec;
  }
  return kCommands[0];  // unreachable: the static_assert below proves every command has a row
}

// The entry a command line (without its CRLF) is, or nullptr: UNKNOWN_COMMAND.
constexpr const CommandSpec* find_command(std::string_view line) noexcept {
  for (const CommandSpec& spec : kCommands) {
    if (spec.matches(line)) return &spec;
  }
  return nullptr;
}

namespace detail {
// Byte i of what a line must start with to be `spec`: its name, then a space for Match::word.
constexpr char match_byte(const CommandSpec& spec, std::size_t i) noexcept {
  return i < spec.name().size() ? spec.name()[i] : ' ';
}
// Every line that `later` matches is matched by `earlier` too: earlier's match bytes start later's.
constexpr bool hides(const CommandSpec& earlier, const CommandSpec& later) noexcept {
  if (earlier.match_length() > later.match_length()) return false;
  for (std::size_t i = 0; i < earlier.match_length(); ++i) {
    if (match_byte(earlier, i) != match_byte(later, i)) return false;
  }
  return true;
}
// Every command appears once, has at most four arguments, and no entry is hidden by an earlier one.
constexpr bool command_table_is_sound() noexcept {
  bool seen[kCommandCount] = {};
  for (std::size_t i = 0; i < kCommandCount; ++i) {
    const auto c = static_cast<std::size_t>(kCommands[i].command);
    if (seen[c] || kCommands[i].arity > kCommands[i].args.size()) return false;
    seen[c] = true;
    for (std::size_t j = 0; j < i; ++j) {
      if (hides(kCommands[j], kCommands[i])) return false;
    }
  }
  return true;
}
}  // namespace detail
static_assert(detail::command_table_is_sound(), "kCommands: a duplicate, or an entry hidden by an earlier one");

}  // namespace ringlet::beanstalk

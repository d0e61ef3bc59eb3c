// command.hpp — the memcached request commands as one constexpr table: name -> command, syntax, arity, and for
// meta commands which flags each accepts. Pure data, no state; shared by the request parser and a server's
// dispatch. Core-local by construction (constants only).
//
// Arity counts the tokens of the command line, the command itself included (memcached 1.6.18 rejects a line
// with a token count outside [min_tokens, max_tokens] with a bare "ERROR", before looking at any argument).
// kUnbounded means "no upper bound" (get keys, stats arguments, meta flags: those have their own limits).
//
// Meta flags are single letters; some carry a token written right after the letter ("T30", "Oabc"). A flag set
// is a 64-bit mask, one bit per letter, so "which flags does ms accept" is one AND. Which flags take a token,
// and of which type, is a property of the letter (MetaArg), the same for every command, as in memcached.
// If you add a command: add it to Command, to kCommands, and a case to the request parser's syntax table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

namespace ringlet::memcache {

enum class Command : std::uint8_t {
  get, gets, gat, gats,                          // retrieval
  set, add, replace, append, prepend, cas,       // storage (a data block follows)
  delete_, incr, decr, touch,                    // one key
  flush_all, version, verbosity, quit, stats,    // no key
  mg, ms, md, ma, mn, me,                        // meta
};

// How the rest of the line is read (the parser has one function per syntax).
enum class Syntax : std::uint8_t {
  retrieval,        // get/gets <key>*
  touch_retrieval,  // gat/gats <exptime> <key>*
  storage,          // <cmd> <key> <flags> <exptime> <bytes> [noreply]
  cas,              // cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]
  delete_,          // delete <key> [0] [noreply]
  arithmetic,       // incr/decr <key> <value> [noreply]
  touch,            // touch <key> <exptime> [noreply]
  flush_all,        // flush_all [delay] [noreply]
  verbosity,        // verbosity <level> [noreply]
  bare,             // version, quit: further tokens are ignored
  stats,            // stats [args]: the arguments are handed over as text
  meta_key,         // mg/md/ma/me <key> <flag>*
  meta_set,         // ms <key> <datalen> <flag>*
  meta_noop,        // mn: further tokens are ignored
};

// Limits of the protocol itself (a server's own limits are RequestLimits in request_parser.hpp).
inline constexpr std::size_t kMaxKeyLength = 250;  // memcached KEY_MAX_LENGTH
inline constexpr std::size_t kMaxOpaque = 32;      // meta O token, memcached MFLAG_MAX_OPAQUE_LENGTH
// Tokens of a meta line, command included: memcached 1.6.18 refuses 20 (its MFLAG_MAX_OPT_LENGTH, 20, counts the
// empty token after the last one).
inline constexpr std::size_t kMaxMetaTokens = 19;

// ---- meta flags ------------------------------------------------------------------------------------------------

// A letter's bit in a FlagSet: 'a'..'z' -> 0..25, 'A'..'Z' -> 26..51; anything else is not a flag (-1).
constexpr int meta_flag_index(char c) noexcept {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return 26 + (c - 'A');
  return -1;
}

class FlagSet {
 public:
  constexpr FlagSet() = default;
  // A set from a string of letters: FlagSet("bcfk").
  constexpr explicit FlagSet(std::string_view letters) noexcept {
    for (char c : letters) add(c);
  }
  constexpr bool has(char c) const noexcept {
    int i = meta_flag_index(c);
    return i >= 0 && (bits_ >> i & 1) != 0;
  }
  constexpr void add(char c) noexcept {
    int i = meta_flag_index(c);
    if (i >= 0) bits_ |= std::uint64_t{1} << i;
  }
  constexpr bool empty() const noexcept { return bits_ == 0; }
  constexpr std::uint64_t bits() const noexcept { return bits_; }
  friend constexpr bool operator==(FlagSet, FlagSet) = default;

 private:
  std::uint64_t bits_ = 0;
};

// What follows a flag letter.
enum class MetaArg : std::uint8_t {
  none,     // b c f h k l q s t u v x I ...: any bytes after the letter are ignored (memcached does the same)
  ttl,      // N R T: signed 32-bit seconds (same rules as exptime)
  u32,      // F: client flags
  u64,      // C E J D: cas values, initial value, delta
  opaque,   // O: up to kMaxOpaque bytes, echoed back
  mode,     // M: one character, checked per command
  ignored,  // P L: proxy hints, any token, ignored
};

constexpr MetaArg meta_arg(char c) noexcept {
  switch (c) {
    case 'N': case 'R': case 'T': return MetaArg::ttl;
    case 'F': return MetaArg::u32;
    case 'C': case 'E': case 'J': case 'D': return MetaArg::u64;
    case 'O': return MetaArg::opaque;
    case 'M': return MetaArg::mode;
    case 'P': case 'L': return MetaArg::ignored;
    default: return MetaArg::none;
  }
}

// ---- the table -------------------------------------------------------------------------------------------------

inline constexpr std::uint8_t kUnbounded = std::numeric_limits<std::uint8_t>::max();

struct CommandSpec {
  std::string_view name;
  Command command;
  Syntax syntax;
  std::uint8_t min_tokens;  // command included
  std::uint8_t max_tokens;  // command included; kUnbounded for none
  FlagSet meta_flags;       // meta commands: the flags this command accepts (doc/protocol.txt)
};

// Flags per meta command, from memcached's doc/protocol.txt (P and L, the proxy hints, everywhere).
inline constexpr FlagSet kMgFlags{"bcfhklOqstuvCENRTPL"};
inline constexpr FlagSet kMsFlags{"bcCEFIkOqsTMNPL"};
inline constexpr FlagSet kMdFlags{"bCEIkOqTxPL"};
inline constexpr FlagSet kMaFlags{"bCENJDTMOqtcvkPL"};
inline constexpr FlagSet kMeFlags{"bPL"};

inline constexpr CommandSpec kCommands[] = {
    {"get", Command::get, Syntax::retrieval, 2, kUnbounded, {}},
    {"gets", Command::gets, Syntax::retrieval, 2, kUnbounded, {}},
    {"gat", Command::gat, Syntax::touch_retrieval, 3, kUnbounded, {}},
    {"gats", Command::gats, Syntax::touch_retrieval, 3, kUnbounded, {}},
    {"set", Command::set, Syntax::storage, 5, 6, {}},
    {"add", Command::add, Syntax::storage, 5, 6, {}},
    {"replace", Command::replace, Syntax::storage, 5, 6, {}},
    {"append", Command::append, Syntax::storage, 5, 6, {}},
    {"prepend", Command::prepend, Syntax::storage, 5, 6, {}},
    {"cas", Command::cas, Syntax::cas, 6, 7, {}},
    {"delete", Command::delete_, Syntax::delete_, 2, 4, {}},
    {"incr", Command::incr, Syntax::arithmetic, 3, 4, {}},
    {"decr", Command::decr, Syntax::arithmetic, 3, 4, {}},
    {"touch", Command::touch, Syntax::touch, 3, 4, {}},
    {"flush_all", Command::flush_all, Syntax::flush_all, 1, 3, {}},
    {"version", Command::version, Syntax::bare, 1, kUnbounded, {}},
    {"verbosity", Command::verbosity, Syntax::verbosity, 2, 3, {}},
    {"quit", Command::quit, Syntax::bare, 1, kUnbounded, {}},
    {"stats", Command::stats, Syntax::stats, 1, kUnbounded, {}},
    {"mg", Command::mg, Syntax::meta_key, 2, kUnbounded, kMgFlags},
    {"ms", Command::ms, Syntax::meta_set, 2, kUnbounded, kMsFlags},
    {"md", Command::md, Syntax::meta_key, 2, kUnbounded, kMdFlags},
    {"ma", Command::ma, Syntax::meta_key, 2, kUnbounded, kMaFlags},
    {"mn", Command::mn, Syntax::meta_noop, 1, kUnbounded, {}},
    {"me", Command::me, Syntax::meta_key, 2, kUnbounded, kMeFlags},
};

// Where a command name sits in kCommandSlots: a hash of its first two bytes and its length that no two names of
// kCommands share (checked below; a new command that collides needs other multipliers). Every command is looked
// up once per request, so this is one probe and one compare instead of a walk over the table ("mg" was 20th).
constexpr std::size_t command_slot(std::string_view name) noexcept {
  return (3u * static_cast<unsigned char>(name[0]) + 3u * static_cast<unsigned char>(name[1]) + name.size()) & 63u;
}

inline constexpr auto kCommandSlots = [] {
  struct Slots {
    std::int8_t index[64];
  } slots{};
  for (std::int8_t& i : slots.index) i = -1;
  for (std::size_t i = 0; i < std::size(kCommands); ++i) {
    slots.index[command_slot(kCommands[i].name)] = static_cast<std::int8_t>(i);
  }
  return slots;
}();
static_assert([] {
  for (std::size_t i = 0; i < std::size(kCommands); ++i) {
    if (kCommandSlots.index[command_slot(kCommands[i].name)] != static_cast<std::int8_t>(i)) return false;
  }
  return true;
}(), "two command names share a slot of kCommandSlots: change command_slot's multipliers");

// The entry for a command name (case-sensitive, as in memcached), or nullptr: the server answers ERROR.
constexpr const CommandSpec* find_command(std::string_view name) noexcept {
  if (name.size() < 2) return nullptr;  // every command has two bytes or more
  const int i = kCommandSlots.index[command_slot(name)];
  return i >= 0 && kCommands[i].name == name ? &kCommands[i] : nullptr;
}

constexpr const CommandSpec& spec_of(Command c) noexcept { return kCommands[static_cast<std::size_t>(c)]; }

constexpr std::string_view to_string(Command c) noexcept { return spec_of(c).name; }

// The table is indexed by Command: keep the two in the same order.
static_assert([] {
  for (std::size_t i = 0; i < std::size(kCommands); ++i) {
    if (static_cast<std::size_t>(kCommands[i].command) != i) return false;
  }
  return true;
}());

}  // namespace ringlet::memcache

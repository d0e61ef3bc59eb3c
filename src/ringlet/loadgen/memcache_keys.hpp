// memcache_keys.hpp — the key space, key choice (uniform or Zipf) and self-checking values of the memcache
// workload of `ringlet bench`. No I/O.
//
// Thread-safety: KeySpace and ZipfSampler are immutable after construction and may be read by every worker at
// once. Rng and ValuePattern are core-local (ValuePattern holds a Slice: a Buffer's refcount is not atomic).
//
// Keys are "k" followed by the key's index in decimal, zero-padded to exactly key_size characters: "k0000042".
// A reply's key text therefore parses back to its index, so a multiget reply can be matched against the request.
//
// Values check themselves. The value stored under key K with client flags V (the "version" of the value) is
//   bytes [0, 16)  hex8(mix(K, V)) hex8(K)                — the header: names the key and the version
//   bytes [16, n)  pattern[off, off + n - 16)             — off = mix(K, V) % kPatternSlack
// where `pattern` is one fixed pseudo-random byte string (the same on every thread and every run). Any reader that
// knows K (from the request or the reply's key) and V (from the flags the server returns) can check every byte,
// whoever wrote the value, and a value of another key or of another version differs in its header. Values shorter
// than 16 bytes are a prefix of the header (weaker: 8 bytes or less check only the mix).
// If you change this layout, values preloaded by an older ringlet no longer verify: that is fine (they are
// overwritten by --preload), but say so in docs/design/loadgen-protocols.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ringlet/buf/slice.hpp"

namespace ringlet::loadgen::memcache {

// splitmix64: a fast, well-mixed 64-bit generator; deterministic from its seed. Core-local.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) (Lemire's multiply-shift; the bias is below 2^-32 for any n that fits a key space).
  std::uint64_t below(std::uint64_t n) noexcept {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  // Uniform in [0, 1).
  double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

// A 64-bit mix of several integers, for seeds and value headers.
std::uint64_t mix64(std::uint64_t a, std::uint64_t b) noexcept;

// Zipf(n, s) over ranks 1..n, P(k) proportional to k^-s, by rejection-inversion (W. Hörmann and G. Derflinger,
// "Rejection-inversion to generate variates from monotone discrete distributions", 1996): O(1) memory and about
// one uniform per sample, so a key space of a billion costs nothing to set up. Immutable; sample() is const.
class ZipfSampler {
 public:
  ZipfSampler(std::uint64_t n, double exponent);  // n >= 1, exponent > 0
  std::uint64_t sample(Rng& rng) const noexcept;  // a rank in [1, n]
  std::uint64_t n() const noexcept { return n_; }
  double exponent() const noexcept { return s_; }

 private:
  double h(double x) const noexcept;              // x^-s
  double H(double x) const noexcept;              // integral of h: (x^(1-s) - 1) / (1-s), log(x) when s == 1
  double H_inverse(double y) const noexcept;

  std::uint64_t n_;
  double s_;
  double h_integral_x1_;  // H(1.5) - 1
  double h_integral_n_;   // H(n + 0.5)
  double threshold_;      // 2 - H_inverse(H(2.5) - h(2)): the squeeze that accepts most samples at once
};

// Which key the next operation uses. Immutable; draws from the caller's Rng.
class KeyChooser {
 public:
  static KeyChooser uniform(std::uint64_t keys) { return KeyChooser(keys, std::nullopt); }
  // Rank 1 (the most popular) is key 0, rank 2 key 1, and so on.
  static KeyChooser zipf(std::uint64_t keys, double exponent) { return KeyChooser(keys, ZipfSampler(keys, exponent)); }
  std::uint64_t next(Rng& rng) const noexcept { return zipf_ ? zipf_->sample(rng) - 1 : rng.below(keys_); }
  std::uint64_t keys() const noexcept { return keys_; }

 private:
  KeyChooser(std::uint64_t keys, std::optional<ZipfSampler> zipf) : keys_(keys), zipf_(zipf) {}
  std::uint64_t keys_;
  std::optional<ZipfSampler> zipf_;
};

// The key space: `count` keys of exactly `key_size` characters. Immutable.
class KeySpace {
 public:
  static constexpr std::size_t kMaxKeySize = 250;  // memcached's limit
  // Empty when fine, else a message for the user (the key size cannot hold the largest index).
  static std::string validate(std::uint64_t count, std::size_t key_size);
  KeySpace(std::uint64_t count, std::size_t key_size) noexcept : count_(count), key_size_(key_size) {}

  std::uint64_t count() const noexcept { return count_; }
  std::size_t key_size() const noexcept { return key_size_; }
  // Writes the key_size characters of key `index` to out.
  void write(std::uint64_t index, char* out) const noexcept;
  // The index named by `text`, if it is one of our keys.
  std::optional<std::uint64_t> parse(std::string_view text) const noexcept;

 private:
  std::uint64_t count_;
  std::size_t key_size_;
};

// The self-checking values (see the top of this file). Core-local: holds the pattern as a Slice so that a set can
// queue the value's bulk without copying it.
class ValuePattern {
 public:
  static constexpr std::size_t kHeaderSize = 16;
  static constexpr std::size_t kPatternSlack = 256;

  explicit ValuePattern(std::size_t value_size);
  std::size_t value_size() const noexcept { return value_size_; }

  // The header of the value of (key, version): the first min(16, value_size) bytes.
  void header(std::uint64_t key, std::uint32_t version, char out[kHeaderSize]) const noexcept;
  // The value's bytes after the header, as a view of the pattern (empty when value_size <= 16).
  Slice tail(std::uint64_t key, std::uint32_t version) const noexcept;

  // Checks `data` against bytes [pos, pos + data.size()) of the value of (key, version). `hdr` is header(key,
  // version), computed once per reply by the caller.
  bool matches(const char hdr[kHeaderSize], std::uint32_t offset, std::size_t pos,
               std::string_view data) const noexcept;
  static std::uint32_t offset_of(std::uint64_t key, std::uint32_t version) noexcept {
    return static_cast<std::uint32_t>(mix64(key, version) % kPatternSlack);
  }

 private:
  std::size_t value_size_;
  Slice pattern_;  // value_size + kPatternSlack bytes (at least kPatternSlack)
};

}  // namespace ringlet::loadgen::memcache

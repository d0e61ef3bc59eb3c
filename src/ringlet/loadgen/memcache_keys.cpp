// memcache_keys.cpp — key space, Zipf sampling and self-checking values (see memcache_keys.hpp).
#include "ringlet/loadgen/memcache_keys.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ringlet/buf/buffer.hpp"

namespace ringlet::loadgen::memcache {

std::uint64_t mix64(std::uint64_t a, std::uint64_t b) noexcept {
  Rng rng(a * 0xd6e8feb86659fd93ULL + b);
  rng.next();
  return rng.next();
}

// ---- Zipf by rejection-inversion ------------------------------------------------------------------------------

namespace {

// log1p(x) / x and expm1(x) / x, accurate near 0 where the plain quotients lose every digit. They make H and
// H_inverse continuous through s == 1, where (x^(1-s) - 1) / (1-s) becomes log(x).
double log1p_over_x(double x) noexcept {
  if (std::fabs(x) > 1e-8) return std::log1p(x) / x;
  return 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

double expm1_over_x(double x) noexcept {
  if (std::fabs(x) > 1e-8) return std::expm1(x) / x;
  return 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

}  // namespace

ZipfSampler::ZipfSampler(std::uint64_t n, double exponent) : n_(n), s_(exponent) {
  RINGLET_ASSERT(n >= 1 && exponent > 0);
  h_integral_x1_ = H(1.5) - 1.0;
  h_integral_n_ = H(static_cast<double>(n_) + 0.5);
  threshold_ = 2.0 - H_inverse(H(2.5) - h(2.0));
}

double ZipfSampler::h(double x) const noexcept { return std::exp(-s_ * std::log(x)); }

double ZipfSampler::H(double x) const noexcept {
  double log_x = std::log(x);
  return expm1_over_x((1.0 - s_) * log_x) * log_x;
}

double ZipfSampler::H_inverse(double y) const noexcept {
  double t = std::max(y * (1.0 - s_), -1.0);  // rounding may push t just below -1, where log1p is undefined
  return std::exp(log1p_over_x(t) * y);
}

// Draws u uniformly over the area under the hat function, inverts it to a real x, and rounds to the rank k.
// The hat is the integral of h over [k - 0.5, k + 0.5]; the sample is accepted when u falls under the true
// probability mass of k. The threshold accepts most samples without evaluating H again.
std::uint64_t ZipfSampler::sample(Rng& rng) const noexcept {
  for (;;) {
    double u = h_integral_n_ + rng.unit() * (h_integral_x1_ - h_integral_n_);
    double x = H_inverse(u);
    double kd = std::floor(x + 0.5);
    kd = std::clamp(kd, 1.0, static_cast<double>(n_));
    if (kd - x <= threshold_ || u >= H(kd + 0.5) - h(kd)) return static_cast<std::uint64_t>(kd);
  }
}

// ---- keys -----------------------------------------------------------------------------------------------------

namespace {

std::size_t decimal_digits(std::uint64_t v) noexcept {
  std::size_t d = 1;
  while (v >= 10) {
    v /= 10;
    ++d;
  }
  return d;
}

}  // namespace

std::string KeySpace::validate(std::uint64_t count, std::size_t key_size) {
  if (count == 0) return "--keys must be at least 1";
  if (count > (std::uint64_t{1} << 32)) return "--keys must be at most 4294967296";
  std::size_t need = 1 + decimal_digits(count - 1);
  if (key_size < need) {
    return "--key-size " + std::to_string(key_size) + " cannot hold " + std::to_string(count) + " keys (needs " +
           std::to_string(need) + ")";
  }
  if (key_size > kMaxKeySize) return "--key-size must be at most 250 (memcached's limit)";
  return {};
}

void KeySpace::write(std::uint64_t index, char* out) const noexcept {
  out[0] = 'k';
  for (std::size_t i = key_size_; i > 1; --i) {
    out[i - 1] = static_cast<char>('0' + index % 10);
    index /= 10;
  }
}

std::optional<std::uint64_t> KeySpace::parse(std::string_view text) const noexcept {
  if (text.size() != key_size_ || text[0] != 'k') return std::nullopt;
  std::uint64_t v = 0;
  for (std::size_t i = 1; i < text.size(); ++i) {
    char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
    if (v >= count_) return std::nullopt;  // v only grows, and stays below 2^32 here: no overflow
  }
  return v;
}

// ---- values ---------------------------------------------------------------------------------------------------

namespace {

void write_hex8(std::uint32_t v, char* out) noexcept {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 7; i >= 0; --i) {
    out[i] = kDigits[v & 0xf];
    v >>= 4;
  }
}

}  // namespace

ValuePattern::ValuePattern(std::size_t value_size) : value_size_(value_size) {
  std::size_t size = std::max(value_size, kHeaderSize) - kHeaderSize + kPatternSlack;
  Buffer* buf = BufferPool::local().acquire(size);
  pattern_ = Slice(buf, 0, static_cast<std::uint32_t>(size));
  // Printable bytes, so a captured value reads well in a packet dump; the fixed seed makes every thread and every
  // run produce the same pattern.
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
  Rng rng(0x72696e676c6574ULL);  // "ringlet"
  auto* out = reinterpret_cast<char*>(pattern_.mutable_data());
  for (std::size_t i = 0; i < size; ++i) out[i] = kAlphabet[rng.next() & 63];
}

void ValuePattern::header(std::uint64_t key, std::uint32_t version, char out[kHeaderSize]) const noexcept {
  write_hex8(static_cast<std::uint32_t>(mix64(key, version) >> 32), out);
  write_hex8(static_cast<std::uint32_t>(key), out + 8);
}

Slice ValuePattern::tail(std::uint64_t key, std::uint32_t version) const noexcept {
  if (value_size_ <= kHeaderSize) return {};
  return pattern_.sub(offset_of(key, version), value_size_ - kHeaderSize);
}

bool ValuePattern::matches(const char hdr[kHeaderSize], std::uint32_t offset, std::size_t pos,
                           std::string_view data) const noexcept {
  if (pos + data.size() > value_size_) return false;
  if (pos < kHeaderSize) {
    std::size_t n = std::min(data.size(), kHeaderSize - pos);
    if (std::memcmp(hdr + pos, data.data(), n) != 0) return false;
    data.remove_prefix(n);
    pos += n;
  }
  if (data.empty()) return true;
  const char* expected = pattern_.view().data() + offset + (pos - kHeaderSize);
  return std::memcmp(expected, data.data(), data.size()) == 0;
}

}  // namespace ringlet::loadgen::memcache

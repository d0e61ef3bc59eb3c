// metrics.cpp — summing metric sets and writing them in the Prometheus text format.
#include "ringlet/base/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "ringlet/base/fatal.hpp"

namespace ringlet {

MetricSet::Sample& MetricSet::sample(std::string_view name, std::string_view help, MetricType type,
                                     MetricCombine combine, MetricLabels labels) {
  Family* family = nullptr;
  for (Family& f : families_) {
    if (f.name == name) {
      family = &f;
      break;
    }
  }
  if (family == nullptr) {
    families_.push_back(Family{std::string(name), std::string(help), type, combine, {}});
    family = &families_.back();
  } else if (family->type != type || family->combine != combine) {
    fatal("a metric described with two types (or two ways of combining)");
  }
  for (Sample& s : family->samples) {
    if (s.labels == labels) return s;
  }
  // A maximum starts below every value, so the first one described is taken as it is (even a negative one).
  const double start = combine == MetricCombine::max ? -std::numeric_limits<double>::infinity() : 0;
  family->samples.push_back(Sample{std::move(labels), start, {}});
  return family->samples.back();
}

void MetricSet::add(Sample& s, MetricCombine combine, double value) noexcept {
  if (combine == MetricCombine::max) {
    s.value = std::max(s.value, value);
  } else {
    s.value += value;
  }
}

void MetricSet::counter(std::string_view name, std::string_view help, double value, MetricLabels labels) {
  sample(name, help, MetricType::counter, MetricCombine::sum, std::move(labels)).value += value;
}

void MetricSet::gauge(std::string_view name, std::string_view help, double value, MetricLabels labels) {
  sample(name, help, MetricType::gauge, MetricCombine::sum, std::move(labels)).value += value;
}

void MetricSet::gauge_max(std::string_view name, std::string_view help, double value, MetricLabels labels) {
  add(sample(name, help, MetricType::gauge, MetricCombine::max, std::move(labels)), MetricCombine::max, value);
}

void MetricSet::histogram(std::string_view name, std::string_view help, const LatencyHistogram& h,
                          MetricLabels labels) {
  sample(name, help, MetricType::histogram, MetricCombine::sum, std::move(labels)).histogram.merge(h);
}

void MetricSet::merge(const MetricSet& other) {
  for (const Family& f : other.families_) {
    for (const Sample& s : f.samples) {
      Sample& mine = sample(f.name, f.help, f.type, f.combine, s.labels);
      add(mine, f.combine, s.value);
      mine.histogram.merge(s.histogram);
    }
  }
}

double MetricSet::value(std::string_view name, const MetricLabels& labels) const {
  for (const Family& f : families_) {
    if (f.name != name) continue;
    for (const Sample& s : f.samples) {
      if (s.labels == labels) return f.type == MetricType::histogram ? static_cast<double>(s.histogram.count()) : s.value;
    }
  }
  return -1;
}

namespace {

std::string_view type_name(MetricType type) {
  switch (type) {
    case MetricType::counter: return "counter";
    case MetricType::gauge: return "gauge";
    case MetricType::histogram: return "histogram";
  }
  return "untyped";
}

// HELP text escapes backslash and newline; label values also the double quote.
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// Integers (every counter we keep) as integers, exactly up to 2^53; anything else in the shortest form that reads
// back the same (fmt's default for double), which Prometheus parses (Go's ParseFloat).
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    fmt::format_to(std::back_inserter(out), "{}", static_cast<std::int64_t>(v));
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

// Nanoseconds as decimal seconds, exactly: 50000 -> "0.00005", 2500000000 -> "2.5", 1000000000 -> "1".
std::string seconds_text(std::int64_t ns) {
  std::string text = fmt::format("{}.{:09}", ns / 1'000'000'000, ns % 1'000'000'000);
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text;
}

void append_labels(std::string& out, const MetricLabels& labels, std::string_view le = {}) {
  if (labels.empty() && le.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += key;
    out += "=\"";
    append_escaped(out, value, true);
    out += '"';
  }
  if (!le.empty()) {
    if (!first) out += ',';
    out += "le=\"";
    out += le;
    out += '"';
  }
  out += '}';
}

void append_histogram(std::string& out, const std::string& name, const MetricSet::Sample& s) {
  const LatencyHistogram& h = s.histogram;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < LatencyHistogram::kBuckets; ++i) {
    cumulative += h.counts()[i];
    out += name;
    out += "_bucket";
    append_labels(out, s.labels, i < LatencyHistogram::kBoundsNs.size() ? seconds_text(LatencyHistogram::kBoundsNs[i])
                                                                         : std::string("+Inf"));
    out += ' ';
    append_number(out, static_cast<double>(cumulative));
    out += '\n';
  }
  out += name;
  out += "_sum";
  append_labels(out, s.labels);
  out += ' ';
  append_number(out, static_cast<double>(h.sum_ns()) / 1e9);
  out += '\n';
  out += name;
  out += "_count";
  append_labels(out, s.labels);
  out += ' ';
  append_number(out, static_cast<double>(cumulative));
  out += '\n';
}

}  // namespace

void write_prometheus(const MetricSet& set, std::string& out) {
  for (const MetricSet::Family& f : set.families()) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    append_escaped(out, f.help, false);
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += type_name(f.type);
    out += '\n';
    for (const MetricSet::Sample& s : f.samples) {
      if (f.type == MetricType::histogram) {
        append_histogram(out, f.name, s);
        continue;
      }
      out += f.name;
      append_labels(out, s.labels);
      out += ' ';
      append_number(out, s.value);
      out += '\n';
    }
  }
}

}  // namespace ringlet

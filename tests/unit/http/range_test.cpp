#include "ringlet/http/range.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ringlet::http {
namespace {

struct Case {
  const char* header;
  std::uint64_t size;
  RangeOutcome outcome;
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

TEST(Range, decides_200_206_or_416) {
  const Case cases[] = {
      {"bytes=0-0", 100, RangeOutcome::single, 0, 0},
      {"bytes=0-99", 100, RangeOutcome::single, 0, 99},
      {"bytes=10-19", 100, RangeOutcome::single, 10, 19},
      {"bytes=10-1000", 100, RangeOutcome::single, 10, 99},  // last clamped to the end
      {"bytes=90-", 100, RangeOutcome::single, 90, 99},
      {"bytes=-10", 100, RangeOutcome::single, 90, 99},
      {"bytes=-1000", 100, RangeOutcome::single, 0, 99},  // suffix longer than the file: all of it
      {"BYTES=1-2", 100, RangeOutcome::single, 1, 2},     // the unit is case-insensitive
      {"bytes= 1-2 ", 100, RangeOutcome::single, 1, 2},
      {"bytes=1-2, 500-600", 100, RangeOutcome::single, 1, 2},  // only one satisfiable: served alone
      {"bytes=100-", 100, RangeOutcome::unsatisfiable},
      {"bytes=100-200", 100, RangeOutcome::unsatisfiable},
      {"bytes=-0", 100, RangeOutcome::unsatisfiable},
      {"bytes=0-", 0, RangeOutcome::unsatisfiable},  // nothing to select in an empty file
      {"bytes=200-300, 400-", 100, RangeOutcome::unsatisfiable},
      {"bytes=0-1,5-6", 100, RangeOutcome::ignore},  // multiple ranges: 200 with the whole file
      // An invalid bytes ranges-specifier is rejected (416), as nginx does; another unit is ignored.
      {"bytes=5-2", 100, RangeOutcome::unsatisfiable},
      {"bytes=", 100, RangeOutcome::unsatisfiable},
      {"bytes=abc", 100, RangeOutcome::unsatisfiable},
      {"bytes=1-2x", 100, RangeOutcome::unsatisfiable},
      {"bytes=--1", 100, RangeOutcome::unsatisfiable},
      {"bytes=99999999999999999999-", 100, RangeOutcome::unsatisfiable},  // overflow
      {"items=0-5", 100, RangeOutcome::ignore},
      {"bytes 0-5", 100, RangeOutcome::ignore},
  };
  for (const Case& c : cases) {
    RangeDecision d = evaluate_range(c.header, c.size);
    EXPECT_EQ(d.outcome, c.outcome) << c.header;
    if (c.outcome == RangeOutcome::single && d.outcome == RangeOutcome::single) {
      EXPECT_EQ(d.first, c.first) << c.header;
      EXPECT_EQ(d.last, c.last) << c.header;
    }
  }
}

TEST(Range, too_many_specs_are_ignored) {
  std::string header = "bytes=";
  for (int i = 0; i <= kMaxRangeSpecs; ++i) header += "1000-1001,";
  EXPECT_EQ(evaluate_range(header, 100).outcome, RangeOutcome::ignore);
}

}  // namespace
}  // namespace ringlet::http

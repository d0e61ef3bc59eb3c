// date.cpp — civil-calendar arithmetic for HTTP dates, without the C library's locale- and TZ-dependent calls.
#include "ringlet/proto/http/date.hpp"

#include <ctime>

namespace ringlet::http {

namespace {

constexpr std::string_view kWeekdays[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view kLongWeekdays[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                               "Thursday", "Friday", "Saturday"};
constexpr std::string_view kMonths[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). Eras of 400 years repeat exactly, so the
// computation is done within one era starting in March (leap day last).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);                // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;    // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;              // [0, 146096]
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
  std::int64_t year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
};

constexpr Civil civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}
static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);

constexpr bool is_leap(std::int64_t y) noexcept { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

constexpr unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
  constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

void put2(char* out, unsigned v) noexcept {
  out[0] = static_cast<char>('0' + v / 10);
  out[1] = static_cast<char>('0' + v % 10);
}

// A small cursor over the header text; every reader fails (returns false) on anything unexpected.
struct Cursor {
  std::string_view s;
  std::size_t i = 0;

  bool literal(std::string_view lit) noexcept {
    if (s.substr(i, lit.size()) != lit) return false;
    i += lit.size();
    return true;
  }
  bool digits(std::size_t n, unsigned& out) noexcept {
    if (i + n > s.size()) return false;
    unsigned v = 0;
    for (std::size_t k = 0; k < n; ++k) {
      char c = s[i + k];
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    i += n;
    out = v;
    return true;
  }
  bool month(unsigned& out) noexcept {
    for (unsigned m = 0; m < 12; ++m) {
      if (literal(kMonths[m])) {
        out = m + 1;
        return true;
      }
    }
    return false;
  }
  bool time_of_day(unsigned& h, unsigned& mi, unsigned& se) noexcept {
    return digits(2, h) && literal(":") && digits(2, mi) && literal(":") && digits(2, se);
  }
  bool at_end() const noexcept { return i == s.size(); }
};

std::optional<std::int64_t> to_unix(std::int64_t year, unsigned month, unsigned day, unsigned h, unsigned mi,
                                    unsigned se) noexcept {
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) return std::nullopt;
  if (h > 23 || mi > 59 || se > 60) return std::nullopt;  // 60: a leap second, read as the next second
  return days_from_civil(year, month, day) * 86400 + h * 3600 + mi * 60 + se;
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<std::int64_t> parse_imf_fixdate(std::string_view text) noexcept {
  Cursor c{text};
  unsigned day = 0, month = 0, year = 0, h = 0, mi = 0, se = 0;
  bool weekday = false;
  for (std::string_view w : kWeekdays) weekday = weekday || c.literal(w);
  if (!weekday || !c.literal(", ") || !c.digits(2, day) || !c.literal(" ") || !c.month(month) || !c.literal(" ") ||
      !c.digits(4, year) || !c.literal(" ") || !c.time_of_day(h, mi, se) || !c.literal(" GMT") || !c.at_end()) {
    return std::nullopt;
  }
  return to_unix(year, month, day, h, mi, se);
}

// "Sunday, 06-Nov-94 08:49:37 GMT"
std::optional<std::int64_t> parse_rfc850(std::string_view text) noexcept {
  Cursor c{text};
  unsigned day = 0, month = 0, yy = 0, h = 0, mi = 0, se = 0;
  bool weekday = false;
  for (std::string_view w : kLongWeekdays) weekday = weekday || c.literal(w);
  if (!weekday || !c.literal(", ") || !c.digits(2, day) || !c.literal("-") || !c.month(month) || !c.literal("-") ||
      !c.digits(2, yy) || !c.literal(" ") || !c.time_of_day(h, mi, se) || !c.literal(" GMT") || !c.at_end()) {
    return std::nullopt;
  }
  std::int64_t year = yy < 50 ? 2000 + yy : 1900 + yy;
  return to_unix(year, month, day, h, mi, se);
}

// "Sun Nov  6 08:49:37 1994"
std::optional<std::int64_t> parse_asctime(std::string_view text) noexcept {
  Cursor c{text};
  unsigned day = 0, month = 0, year = 0, h = 0, mi = 0, se = 0;
  bool weekday = false;
  for (std::string_view w : kWeekdays) weekday = weekday || c.literal(w);
  if (!weekday || !c.literal(" ") || !c.month(month) || !c.literal(" ")) return std::nullopt;
  if (c.literal(" ")) {
    if (!c.digits(1, day)) return std::nullopt;
  } else if (!c.digits(2, day)) {
    return std::nullopt;
  }
  if (!c.literal(" ") || !c.time_of_day(h, mi, se) || !c.literal(" ") || !c.digits(4, year) || !c.at_end()) {
    return std::nullopt;
  }
  return to_unix(year, month, day, h, mi, se);
}

}  // namespace

void format_http_date(std::int64_t unix_seconds, char* out) noexcept {
  std::int64_t days = unix_seconds >= 0 ? unix_seconds / 86400 : (unix_seconds - 86399) / 86400;
  std::int64_t secs = unix_seconds - days * 86400;
  Civil c = civil_from_days(days);
  unsigned weekday = static_cast<unsigned>((days % 7 + 11) % 7);  // 1970-01-01 was a Thursday
  std::string_view wd = kWeekdays[weekday];
  std::string_view mon = kMonths[c.month - 1];
  unsigned year = static_cast<unsigned>(c.year < 0 ? 0 : c.year > 9999 ? 9999 : c.year);
  out[0] = wd[0];
  out[1] = wd[1];
  out[2] = wd[2];
  out[3] = ',';
  out[4] = ' ';
  put2(out + 5, c.day);
  out[7] = ' ';
  out[8] = mon[0];
  out[9] = mon[1];
  out[10] = mon[2];
  out[11] = ' ';
  put2(out + 12, year / 100);
  put2(out + 14, year % 100);
  out[16] = ' ';
  put2(out + 17, static_cast<unsigned>(secs / 3600));
  out[19] = ':';
  put2(out + 20, static_cast<unsigned>(secs / 60 % 60));
  out[22] = ':';
  put2(out + 23, static_cast<unsigned>(secs % 60));
  out[25] = ' ';
  out[26] = 'G';
  out[27] = 'M';
  out[28] = 'T';
}

std::optional<std::int64_t> parse_http_date(std::string_view text) noexcept {
  if (text.size() == kHttpDateLength && text[3] == ',') return parse_imf_fixdate(text);
  if (text.size() > 3 && text[3] == ' ') return parse_asctime(text);
  return parse_rfc850(text);
}

void DateCache::refresh(std::int64_t now_ns) noexcept {
  timespec wall{};
  ::clock_gettime(CLOCK_REALTIME, &wall);
  seconds_ = static_cast<std::int64_t>(wall.tv_sec);
  format_http_date(seconds_, text_);
  // Valid until the wall clock's next second begins (measured on the monotonic scale the loop gives us).
  refresh_at_ns_ = now_ns + (1'000'000'000 - static_cast<std::int64_t>(wall.tv_nsec));
}

}  // namespace ringlet::http

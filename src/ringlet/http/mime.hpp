// mime.hpp — Content-Type by file extension, from a static table. Core-agnostic (constant data, no state).
//
// The table holds the types a static site serves in practice; an extension it does not know is served as
// application/octet-stream, so a browser downloads it instead of guessing (nginx's default_type does the same).
// Types carry no charset parameter, as nginx's default mime.types (a page can declare its own with <meta>).
#pragma once

#include <string_view>

namespace ringlet::http {

inline constexpr std::string_view kDefaultContentType = "application/octet-stream";

// The Content-Type for `path` (a file name or a whole path): looks at the text after the last '.' of the last
// segment, case-insensitively. No extension, or one not in the table: kDefaultContentType.
std::string_view content_type_for(std::string_view path) noexcept;

}  // namespace ringlet::http

// static_files.hpp — answering a request from the document root: GET and HEAD of files (from memory or with a
// pending sendfile), conditional requests (304, 412), one byte range (206, 416), the directory redirect, index.html
// and the optional HTML listing. Core-local; the rules are in docs/design/http.md ("Static files").
//
// serve_static_file() queues the whole answer on the stream (heads into its output chain, no flush) and returns
// the Outcome; a body too large for memory is left in Outcome::pending for the caller to send
// (send_pending_file) before it queues the next response, which keeps pipelined responses in order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringlet/http/file_cache.hpp"
#include "ringlet/http/response.hpp"
#include "ringlet/net/stream.hpp"
#include "ringlet/proto/http/request.hpp"

namespace ringlet::http {

// What serving a file needs from its server besides the cache; all of it core-local.
struct StaticContext {
  FileCache& files;
  std::string_view date;      // the Date header's text for this turn
  std::int64_t now_seconds;   // the same instant, as Unix time (If-Modified-Since in the future is ignored)
  std::int64_t now_ns;        // the loop's monotonic time (the cache's revalidation clock)
  bool dir_listing = false;   // an HTML index for a directory without index.html (else 403)
  std::string& scratch;       // per-loop text, used between two awaits and never across one
};

Outcome serve_static_file(Stream& stream, StaticContext& ctx, const Request& request, After after);

// The HTML index of the directory at `dir` (normalised path): names sorted, escaped for the URL and for the HTML
// around it. Errors: as FileCache::list_directory.
Result<std::string> render_listing(FileCache& files, std::string_view dir);

// Escapes for an HTML text or attribute value (& < > " ').
void append_html_escaped(std::string& out, std::string_view text);
// Percent-encodes everything but RFC 3986 unreserved characters, so a name is one path segment of a URL.
void append_url_escaped(std::string& out, std::string_view text);

}  // namespace ringlet::http

// static_files.cpp — files, directories and listings from the document root.
#include "ringlet/http/static_files.hpp"

#include <algorithm>
#include <vector>

#include "ringlet/base/log.hpp"
#include "ringlet/http/conditional.hpp"
#include "ringlet/http/path.hpp"
#include "ringlet/http/range.hpp"

namespace ringlet::http {

namespace {

constexpr std::string_view kRangeNotSatisfiableBody = "416 Range Not Satisfiable\n";

ConditionalHeaders conditional_headers(const Request& r) {
  ConditionalHeaders h;
  if (r.has(KnownHeader::if_none_match)) h.if_none_match = r.if_none_match();
  if (r.has(KnownHeader::if_modified_since)) h.if_modified_since = r.if_modified_since();
  if (r.has(KnownHeader::if_range)) h.if_range = r.if_range();
  // Not indexed by the parser: looked up only when the request has more fields than the indexed ones could be.
  if (r.header_count() > 1) {
    h.if_match = r.find("If-Match");
    h.if_unmodified_since = r.find("If-Unmodified-Since");
  }
  return h;
}

std::uint16_t status_for_open_error(Error e) noexcept {
  switch (e.code) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
      return 404;
    case EACCES:
    case EPERM:
    case EXDEV:  // RESOLVE_BENEATH: the path leaves the root through a symlink
    case ELOOP:
      return 403;
    default:
      return 500;
  }
}

// Renders "Location: /dir/" (+ "?query") into `s` for the directory redirect.
std::string_view redirect_location(std::string& s, const Request& request) {
  s.assign("Location: ");
  s.append(request.path());
  s.push_back('/');
  if (request.has_query()) {
    s.push_back('?');
    s.append(request.query());
  }
  s.append("\r\n");
  return s;
}

Outcome queue_listing(Stream& stream, StaticContext& ctx, const Request& request, std::string_view dir,
                      After after) {
  Result<std::string> html = render_listing(ctx.files, dir);
  if (!html) {
    std::uint16_t status = status_for_open_error(html.error());
    return Outcome{status, queue_simple(stream, status, ctx.date, &request, after), {}};
  }
  {
    HeadWriter head(stream.output());
    head.status_line(200, ctx.date);
    head.raw(kContentTypeHtml).header("Content-Length", html->size());
    head.raw(connection_line(&request, after));
    head.end();
  }
  if (request.method() == Method::head) return Outcome{200, 0, {}};
  stream.queue(Slice::copy_of(std::string_view(*html)));
  return Outcome{200, html->size(), {}};
}

}  // namespace

Outcome serve_static_file(Stream& stream, StaticContext& ctx, const Request& request, After after) {
  const Method method = request.method();
  if (method != Method::get && method != Method::head) {
    if (method == Method::other) return Outcome{501, queue_simple(stream, 501, ctx.date, &request, after)};
    return Outcome{405, queue_simple(stream, 405, ctx.date, &request, after, kAllowGetHead)};
  }
  std::string& path = ctx.scratch;
  NormalizedPath normalized = normalize_path(request.path(), path);
  if (normalized.status != 0) return Outcome{normalized.status, queue_simple(stream, 400, ctx.date, &request, after)};
  FileCache& files = ctx.files;
  Result<FileRef> opened = files.open(path, ctx.now_ns);
  if (opened && (*opened)->is_directory) {
    if (!normalized.trailing_slash) {
      std::string_view location = redirect_location(ctx.scratch, request);
      return Outcome{301, queue_simple(stream, 301, ctx.date, &request, after, location)};
    }
    std::size_t dir_length = path.size();
    path.append(path.size() == 1 ? "index.html" : "/index.html");
    Result<FileRef> index = files.open(path, ctx.now_ns);
    if (!index && (index.error().code == ENOENT) && ctx.dir_listing) {
      path.resize(dir_length);
      return queue_listing(stream, ctx, request, path, after);
    }
    if (!index && index.error().code == ENOENT) {
      return Outcome{403, queue_simple(stream, 403, ctx.date, &request, after)};
    }
    opened = std::move(index);
    if (opened && (*opened)->is_directory) return Outcome{403, queue_simple(stream, 403, ctx.date, &request, after)};
  } else if (opened && normalized.trailing_slash) {
    opened = Error{ENOTDIR};  // "/file.txt/" names a directory that is not there
  }
  if (!opened) {
    std::uint16_t status = status_for_open_error(opened.error());
    if (status == 500) log_warn("http: open {}: {}", path, opened.error().message());
    return Outcome{status, queue_simple(stream, status, ctx.date, &request, after)};
  }
  const CachedFile& file = **opened;
  ConditionalHeaders conditions = conditional_headers(request);
  Validators validators{file.etag(), file.mtime, ctx.now_seconds};
  Precondition pre = evaluate_preconditions(conditions, validators, true);
  if (pre == Precondition::failed) return Outcome{412, queue_simple(stream, 412, ctx.date, &request, after)};
  HeadWriter head(stream.output());
  if (pre == Precondition::not_modified) {
    head.status_line(304, ctx.date);
    head.header("Last-Modified", file.last_modified()).header("ETag", file.etag());
    head.raw(connection_line(&request, after));
    head.end();
    return Outcome{304, 0, {}};
  }
  std::uint16_t status = 200;
  std::uint64_t first = 0;
  std::uint64_t length = file.size;
  RangeDecision range;
  if (method == Method::get && request.has(KnownHeader::range) && !request.repeated(KnownHeader::range) &&
      if_range_allows(conditions, validators)) {
    range = evaluate_range(request.range(), file.size);
  }
  if (range.outcome == RangeOutcome::unsatisfiable) {
    head.status_line(416, ctx.date);
    head.raw(kContentTypeText).header("Content-Length", kRangeNotSatisfiableBody.size());
    head.raw("Content-Range: bytes */").number(file.size);
    head.raw("\r\n");
    head.raw(connection_line(&request, after));
    head.raw(kHeadEnd).raw(kRangeNotSatisfiableBody);
    head.flush();
    return Outcome{416, kRangeNotSatisfiableBody.size(), {}};
  }
  if (range.outcome == RangeOutcome::single) {
    status = 206;
    first = range.first;
    length = range.length();
  }
  head.status_line(status, ctx.date);
  head.header("Content-Type", file.content_type).header("Content-Length", length);
  head.header("Last-Modified", file.last_modified()).header("ETag", file.etag());
  if (status == 206) {
    head.raw("Content-Range: bytes ").number(range.first).raw("-").number(range.last).raw("/").number(file.size);
    head.raw("\r\n");
  } else {
    head.raw(kAcceptRanges);
  }
  head.raw(connection_line(&request, after));
  head.end();
  Outcome out{status, 0, {}};
  if (method == Method::head || length == 0) return out;
  out.body_bytes = length;
  if (file.fd < 0) {
    queue_body_slice(stream, file.body, first, length);
    return out;
  }
  out.pending = PendingFile{std::move(*opened), first, length};
  return out;
}

void append_html_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}

void append_url_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    bool plain = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
                 c == '_' || c == '.' || c == '~';
    if (plain) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
}

Result<std::string> render_listing(FileCache& files, std::string_view dir) {
  std::vector<std::string> names;
  Status listed = files.list_directory(dir, names);
  if (!listed) return listed.error();
  std::sort(names.begin(), names.end());
  std::string html;
  html.reserve(256 + names.size() * 64);
  html += "<!DOCTYPE html>\n<html><head><title>Index of ";
  append_html_escaped(html, dir);
  html += "/</title></head><body><h1>Index of ";
  append_html_escaped(html, dir);
  html += "/</h1><hr><pre>\n<a href=\"../\">../</a>\n";
  for (const std::string& name : names) {
    bool is_dir = !name.empty() && name.back() == '/';
    std::string url;
    append_url_escaped(url, std::string_view(name).substr(0, name.size() - (is_dir ? 1 : 0)));
    if (is_dir) url += '/';
    html += "<a href=\"";
    append_html_escaped(html, url);
    html += "\">";
    append_html_escaped(html, name);
    html += "</a>\n";
  }
  html += "</pre><hr></body></html>\n";
  return html;
}

}  // namespace ringlet::http

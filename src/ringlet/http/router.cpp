// router.cpp — route table lookup and the benchmark routes.
#include "ringlet/http/router.hpp"

#include <cstring>

#include "ringlet/buf/buffer.hpp"

namespace ringlet::http {

namespace {

bool path_matches(const Router::Route& r, std::string_view path) noexcept {
  if (r.match == PathMatch::exact) return path == r.path;
  return path.substr(0, r.path.size()) == r.path;
}

}  // namespace

void Router::add(Method method, std::string path, RouteHandler handler, void* user, PathMatch match) {
  routes_.push_back(Route{method, match, std::move(path), handler, user});
  rebuild_allow();
}

void Router::rebuild_allow() {
  allow_.assign(routes_.size(), std::string());
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    std::string& allow = allow_[i];
    auto append = [&allow](std::string_view m) {
      if (allow.find(m) != std::string::npos) return;
      if (!allow.empty()) allow += ", ";
      allow += m;
    };
    for (const Route& other : routes_) {
      if (other.path != routes_[i].path || other.match != routes_[i].match) continue;
      append(method_name(other.method));
      if (other.method == Method::get) append("HEAD");
    }
  }
}

Router::Found Router::find(Method method, std::string_view path) const noexcept {
  Found found;
  // HEAD is answered by the GET handler.
  Method wanted = method == Method::head ? Method::get : method;
  const Route* best_prefix = nullptr;
  const Route* any_path = nullptr;
  std::size_t any_index = 0;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const Route& r = routes_[i];
    if (!path_matches(r, path)) continue;
    if (r.method != wanted) {
      if (any_path == nullptr || r.match == PathMatch::exact) {
        any_path = &r;
        any_index = i;
      }
      continue;
    }
    if (r.match == PathMatch::exact) {
      found.route = &r;
      return found;
    }
    if (best_prefix == nullptr || r.path.size() > best_prefix->path.size()) {
      best_prefix = &r;
    }
  }
  if (best_prefix != nullptr) {
    found.route = best_prefix;
    return found;
  }
  if (any_path != nullptr) {
    found.path_known = true;
    found.allow = allow_[any_index];
  }
  return found;
}

// ---- TechEmpower routes ------------------------------------------------------------------------------------

namespace {

constexpr std::string_view kHello = "Hello, World!";

// A tiny JSON serialiser for one object of string members: escapes quotes, backslashes and control characters.
std::size_t json_escape_into(std::string_view s, char* out) noexcept {
  std::size_t n = 0;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = c;
    } else if (u < 0x20) {
      static constexpr char kHex[] = "0123456789abcdef";
      std::memcpy(out + n, "\\u00", 4);
      out[n + 4] = kHex[u >> 4];
      out[n + 5] = kHex[u & 15];
      n += 6;
    } else {
      out[n++] = c;
    }
  }
  return n;
}

Slice serialize_message(std::string_view key, std::string_view value) {
  std::size_t worst = 2 + (key.size() + value.size()) * 6 + 6;
  Buffer* b = BufferPool::local().acquire(worst);
  char* out = reinterpret_cast<char*>(b->data);
  std::size_t n = 0;
  out[n++] = '{';
  out[n++] = '"';
  n += json_escape_into(key, out + n);
  out[n++] = '"';
  out[n++] = ':';
  out[n++] = '"';
  n += json_escape_into(value, out + n);
  out[n++] = '"';
  out[n++] = '}';
  return Slice(b, 0, static_cast<std::uint32_t>(n));
}

Task<void> plaintext(RequestContext& ctx) {
  ctx.response.set_content_type("text/plain");
  ctx.response.set_body(kHello);
  co_return;
}

Task<void> json(RequestContext& ctx) {
  ctx.response.set_content_type("application/json");
  ctx.response.set_body(serialize_message("message", kHello));
  co_return;
}

}  // namespace

void add_bench_routes(Router& router) {
  router.add(Method::get, "/plaintext", &plaintext);
  router.add(Method::get, "/json", &json);
}

}  // namespace ringlet::http

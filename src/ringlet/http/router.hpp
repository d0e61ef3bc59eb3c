// router.hpp — the routing API for C++ users: coroutine handlers registered for a method and a path.
// Core-local: a Router is filled before the server starts and only read afterwards (one per loop).
//
//   Task<void> hello(RequestContext& ctx) {
//     ctx.response.set_content_type("text/plain");
//     ctx.response.set_body(std::string_view("Hello, World!"));
//     co_return;
//   }
//   router.add(Method::get, "/hello", &hello);
//
// A handler runs on the connection's task, between reading its request (head and whole body, bounded by
// --max-body) and sending its response; it may await anything (a timer, another connection, the blocking pool).
// Pipelined requests wait for it: responses always go out in request order. A handler for GET also answers
// HEAD (the body is not sent). Matching: exact paths first, then the longest registered prefix; the path is
// compared in its encoded form, without the query. A path that matches with another method gets 405 with an
// Allow header listing the registered methods.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringlet/buf/slice.hpp"
#include "ringlet/proto/http/request.hpp"
#include "ringlet/http/response.hpp"
#include "ringlet/runtime/task.hpp"

namespace ringlet::http {

struct RequestContext {
  const Request& request;
  Slice body;          // the whole request body (empty if none)
  Response& response;  // cleared; status 200, text/plain, no body
  void* user;          // the pointer given to Router::add
};

using RouteHandler = Task<void> (*)(RequestContext& ctx);

enum class PathMatch : std::uint8_t { exact, prefix };

class Router {
 public:
  void add(Method method, std::string path, RouteHandler handler, void* user = nullptr,
           PathMatch match = PathMatch::exact);

  struct Route {
    Method method;
    PathMatch match;
    std::string path;
    RouteHandler handler;
    void* user;
  };

  struct Found {
    const Route* route = nullptr;  // the handler to run
    bool path_known = false;       // no route for this method, but the path has routes (405)
    std::string_view allow;        // then: "GET, HEAD, POST" etc.
  };
  Found find(Method method, std::string_view path) const noexcept;
  bool empty() const noexcept { return routes_.empty(); }

 private:
  void rebuild_allow();
  std::vector<Route> routes_;
  std::vector<std::string> allow_;  // per route index: the Allow value for its path
};

// Adds TechEmpower's /plaintext and /json endpoints (Server, Date, Content-Type and Content-Length headers; the
// JSON object is serialised per request).
void add_bench_routes(Router& router);

}  // namespace ringlet::http

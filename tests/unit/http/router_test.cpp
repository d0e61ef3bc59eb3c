#include "ringlet/http/router.hpp"

#include <gtest/gtest.h>

namespace ringlet::http {
namespace {

Task<void> handler_a(RequestContext&) { co_return; }
Task<void> handler_b(RequestContext&) { co_return; }
Task<void> handler_c(RequestContext&) { co_return; }

TEST(Router, exact_routes_win_over_prefixes_and_the_longest_prefix_wins) {
  Router r;
  int user = 0;
  r.add(Method::get, "/api/", &handler_a, nullptr, PathMatch::prefix);
  r.add(Method::get, "/api/v2/", &handler_b, nullptr, PathMatch::prefix);
  r.add(Method::get, "/api/v2/exact", &handler_c, &user);
  EXPECT_EQ(r.find(Method::get, "/api/x").route->handler, &handler_a);
  EXPECT_EQ(r.find(Method::get, "/api/v2/x").route->handler, &handler_b);
  Router::Found exact = r.find(Method::get, "/api/v2/exact");
  EXPECT_EQ(exact.route->handler, &handler_c);
  EXPECT_EQ(exact.route->user, &user);
  EXPECT_EQ(r.find(Method::get, "/other").route, nullptr);
  EXPECT_FALSE(r.find(Method::get, "/other").path_known);
}

TEST(Router, head_uses_the_get_handler) {
  Router r;
  r.add(Method::get, "/x", &handler_a);
  EXPECT_EQ(r.find(Method::head, "/x").route->handler, &handler_a);
}

TEST(Router, a_known_path_with_another_method_reports_allow) {
  Router r;
  r.add(Method::get, "/x", &handler_a);
  r.add(Method::post, "/x", &handler_b);
  Router::Found f = r.find(Method::delete_, "/x");
  EXPECT_EQ(f.route, nullptr);
  EXPECT_TRUE(f.path_known);
  EXPECT_EQ(f.allow, "GET, HEAD, POST");
  EXPECT_EQ(r.find(Method::post, "/x").route->handler, &handler_b);
}

TEST(Router, bench_routes_are_plaintext_and_json) {
  Router r;
  add_bench_routes(r);
  EXPECT_NE(r.find(Method::get, "/plaintext").route, nullptr);
  EXPECT_NE(r.find(Method::get, "/json").route, nullptr);
  EXPECT_EQ(r.find(Method::get, "/json/x").route, nullptr);
}

}  // namespace
}  // namespace ringlet::http

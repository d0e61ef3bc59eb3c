// tls_test.cpp — TlsContext's start-up checks and TlsStream on both backends over a socketpair: a handshake and
// bytes both ways, a body crossing many records, close_notify, and the handshakes that must fail (garbage instead
// of a ClientHello, a hello cut short, a stalled one, a missing or foreign client certificate). Certificates are
// made at test time with OpenSSL's API in a fresh temp dir (no key is committed). Every wait is bounded.
#include "ringlet/net/tls.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/stream_fixture.hpp"

namespace ringlet {
namespace {

using namespace std::chrono_literals;
using testing::pattern;

// ---- certificates made for the test -------------------------------------------------------------------------------

EVP_PKEY* new_key() { return EVP_EC_gen("P-256"); }

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `cn`, signed by (issuer, issuer_key), or self-signed when issuer is null.
X509* new_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool is_ca, long serial) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(cert, issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509* signer = issuer != nullptr ? issuer : cert;
  if (is_ca) {
    add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert, signer, NID_basic_constraints, "CA:FALSE");
    add_ext(cert, signer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  }
  X509_sign(cert, issuer_key != nullptr ? issuer_key : key, EVP_sha256());
  return cert;
}

void write_pem(const std::string& path, X509* cert, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  if (cert != nullptr) PEM_write_X509(f, cert);
  if (key != nullptr) PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

// A CA, a server certificate it signed, a client certificate it signed, and a client certificate signed by a
// second CA nobody trusts.
struct Pki {
  std::string dir;
  std::string path(const char* name) const { return dir + "/" + name; }

  Pki() {
    std::string tmpl = "/tmp/ringlet-tls-XXXXXX";
    if (::mkdtemp(tmpl.data()) != nullptr) dir = tmpl;
    EVP_PKEY* ca_key = new_key();
    X509* ca = new_cert(ca_key, "ringlet test CA", nullptr, nullptr, true, 1);
    EVP_PKEY* server_key = new_key();
    X509* server = new_cert(server_key, "localhost", ca, ca_key, false, 2);
    EVP_PKEY* client_key = new_key();
    X509* client = new_cert(client_key, "worker-1", ca, ca_key, false, 3);
    EVP_PKEY* rogue_ca_key = new_key();
    X509* rogue_ca = new_cert(rogue_ca_key, "rogue CA", nullptr, nullptr, true, 4);
    EVP_PKEY* rogue_key = new_key();
    X509* rogue = new_cert(rogue_key, "intruder", rogue_ca, rogue_ca_key, false, 5);
    write_pem(path("ca.pem"), ca, nullptr);
    write_pem(path("server.pem"), server, nullptr);
    write_pem(path("server.key"), nullptr, server_key);
    write_pem(path("client.pem"), client, nullptr);
    write_pem(path("client.key"), nullptr, client_key);
    write_pem(path("rogue.pem"), rogue, nullptr);
    write_pem(path("rogue.key"), nullptr, rogue_key);
    for (X509* c : {ca, server, client, rogue_ca, rogue}) X509_free(c);
    for (EVP_PKEY* k : {ca_key, server_key, client_key, rogue_ca_key, rogue_key}) EVP_PKEY_free(k);
  }
  ~Pki() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

const Pki& pki() {
  static const Pki made;
  return made;
}

std::shared_ptr<const TlsContext> server_context(bool require_client_cert) {
  std::string why;
  TlsServerFiles files{pki().path("server.pem"), pki().path("server.key"),
                       require_client_cert ? pki().path("ca.pem") : std::string()};
  auto ctx = TlsContext::create_server(files, why);
  EXPECT_TRUE(ctx.ok()) << why;
  return ctx.ok() ? *ctx : nullptr;
}

std::shared_ptr<const TlsContext> client_context(const char* cert = nullptr, const char* key = nullptr) {
  std::string why;
  TlsClientFiles files{pki().path("ca.pem"), cert ? pki().path(cert) : "", key ? pki().path(key) : ""};
  auto ctx = TlsContext::create_client(files, why);
  EXPECT_TRUE(ctx.ok()) << why;
  return ctx.ok() ? *ctx : nullptr;
}

// ---- the context's start-up checks ---------------------------------------------------------------------------

TEST(TlsContext, a_missing_file_is_named_with_its_option) {
  std::string why;
  auto ctx = TlsContext::create_server({"/nonexistent/cert.pem", pki().path("server.key"), ""}, why);
  EXPECT_FALSE(ctx.ok());
  EXPECT_NE(why.find("--tls-cert /nonexistent/cert.pem: No such file"), std::string::npos) << why;
}

TEST(TlsContext, a_key_that_does_not_match_the_certificate_is_refused) {
  std::string why;
  auto ctx = TlsContext::create_server({pki().path("server.pem"), pki().path("client.key"), ""}, why);
  EXPECT_FALSE(ctx.ok());
  EXPECT_NE(why.find("does not match the certificate"), std::string::npos) << why;
}

TEST(TlsContext, a_file_that_is_not_pem_is_refused) {
  std::string why;
  const std::string junk = pki().path("junk.pem");
  std::ofstream(junk) << "not a certificate\n";
  auto ctx = TlsContext::create_server({junk, pki().path("server.key"), ""}, why);
  EXPECT_FALSE(ctx.ok());
  EXPECT_NE(why.find("--tls-cert " + junk + ": not a PEM certificate"), std::string::npos) << why;
  auto ca = TlsContext::create_server({pki().path("server.pem"), pki().path("server.key"), junk}, why);
  EXPECT_FALSE(ca.ok());
  EXPECT_NE(why.find("--tls-client-ca " + junk), std::string::npos) << why;
}

// ---- streams -------------------------------------------------------------------------------------------------------

// Reads plaintext until `n` bytes are queued or the peer is done; returns them (consumed).
Task<Result<std::string>> read_n(TlsStream* s, std::size_t n) {
  while (s->inbound().bytes() < n && !s->peer_closed()) {
    Status more = co_await s->wait_more();
    if (!more) co_return more.error();
  }
  std::string out(std::min(n, s->inbound().bytes()), '\0');
  s->inbound().copy_out(std::as_writable_bytes(std::span(out.data(), out.size())));
  co_return out;
}

// The server side of most tests: handshake, read `n` bytes, answer "got <n>", close_notify.
Task<Result<std::string>> serve_once(TlsStream* s, std::size_t n) {
  Status hs = co_await s->handshake(5s);
  if (!hs) co_return hs.error();
  Result<std::string> got = co_await read_n(s, n);
  if (!got) co_return got.error();
  s->queue_copy("got " + std::to_string(got->size()));
  (void)co_await s->close_notify(5s);
  co_return got;
}

struct Outcome {
  Status handshake;
  Result<std::string> reply = std::string();
};

// The client side: handshake, send `body`, read the answer until the server's close_notify.
Task<Outcome> client_once(TlsStream* s, std::string body) {
  Outcome o;
  o.handshake = co_await s->handshake(5s);
  if (!o.handshake) co_return o;
  Status sent = co_await s->write(Slice::copy_of(body));
  if (!sent) {
    o.reply = sent.error();
    co_return o;
  }
  o.reply = co_await read_n(s, 1 << 20);
  if (o.reply && s->status().ok() == false) o.reply = s->status().error();
  co_return o;
}

// Streams over a Unix socketpair (socket_pair()): the TLS layer sees the same Stream API as over TCP.
class TlsStreamTest : public testing::StreamFixture {};

Task<Outcome> exchange(TlsStream* client, TlsStream* server, std::string body, Result<std::string>* served) {
  JoinHandle<Result<std::string>> s = Loop::current()->spawn_joinable(serve_once(server, body.size()));
  Outcome o = co_await client_once(client, body);
  *served = co_await s;
  co_return o;
}

TEST_P(TlsStreamTest, a_handshake_then_bytes_both_ways_and_close_notify) {
  auto [a, b] = socket_pair();
  TlsStream client(std::move(a), *client_context(), TlsRole::client, "localhost");
  TlsStream server(std::move(b), *server_context(false), TlsRole::server);
  Result<std::string> served = std::string();
  Outcome o = run(exchange(&client, &server, "put 0 0 60 5\r\nhello\r\n", &served));
  ASSERT_TRUE(o.handshake.ok()) << client.failure();
  ASSERT_TRUE(served.ok()) << served.error().message() << " " << server.failure();
  EXPECT_EQ(*served, "put 0 0 60 5\r\nhello\r\n");
  ASSERT_TRUE(o.reply.ok()) << o.reply.error().message();
  EXPECT_EQ(*o.reply, "got 21");
  EXPECT_TRUE(client.peer_closed());  // the server's close_notify: a clean end
  EXPECT_TRUE(client.status().ok());
}

TEST_P(TlsStreamTest, a_large_body_crosses_many_records_intact) {
  auto [a, b] = socket_pair();
  TlsStream client(std::move(a), *client_context(), TlsRole::client, "localhost");
  TlsStream server(std::move(b), *server_context(false), TlsRole::server);
  const std::string body = pattern(3 * 1024 * 1024 + 17);  // about 190 records of 16 KiB
  Result<std::string> served = std::string();
  Outcome o = run(exchange(&client, &server, body, &served));
  ASSERT_TRUE(o.handshake.ok()) << client.failure();
  ASSERT_TRUE(served.ok()) << served.error().message() << " " << server.failure();
  EXPECT_TRUE(*served == body) << "the body came through changed (" << served->size() << " bytes)";
  ASSERT_TRUE(o.reply.ok());
  EXPECT_EQ(*o.reply, "got " + std::to_string(body.size()));
}

TEST_P(TlsStreamTest, a_client_certificate_signed_by_the_ca_is_accepted_and_named) {
  auto [a, b] = socket_pair();
  TlsStream client(std::move(a), *client_context("client.pem", "client.key"), TlsRole::client, "127.0.0.1");
  TlsStream server(std::move(b), *server_context(true), TlsRole::server);
  Result<std::string> served = std::string();
  Outcome o = run(exchange(&client, &server, "reserve\r\n", &served));
  ASSERT_TRUE(o.handshake.ok()) << client.failure();
  ASSERT_TRUE(served.ok()) << server.failure();
  EXPECT_EQ(*served, "reserve\r\n");
  EXPECT_EQ(server.peer_subject(), "CN=worker-1");
}

// With client certificates required, a client without one (or with one from another CA) gets no plaintext
// through: the server's handshake fails with a reason, and the client sees the handshake or its first read fail
// (TLS 1.3 finishes the client's side before the server has judged its certificate).
void expect_refused(const Outcome& o, const Result<std::string>& served, const TlsStream& server) {
  ASSERT_FALSE(served.ok());
  EXPECT_EQ(served.error(), errc::tls_handshake_failed);
  EXPECT_FALSE(server.failure().empty());
  if (o.handshake.ok()) {
    EXPECT_TRUE(!o.reply.ok() || o.reply.value().empty()) << "the client read " << o.reply.value();
  }
}

TEST_P(TlsStreamTest, a_client_without_a_certificate_is_refused_when_one_is_required) {
  auto [a, b] = socket_pair();
  TlsStream client(std::move(a), *client_context(), TlsRole::client, "localhost");
  TlsStream server(std::move(b), *server_context(true), TlsRole::server);
  Result<std::string> served = std::string();
  Outcome o = run(exchange(&client, &server, "stats\r\n", &served));
  expect_refused(o, served, server);
}

TEST_P(TlsStreamTest, a_client_certificate_from_another_ca_is_refused) {
  auto [a, b] = socket_pair();
  TlsStream client(std::move(a), *client_context("rogue.pem", "rogue.key"), TlsRole::client, "localhost");
  TlsStream server(std::move(b), *server_context(true), TlsRole::server);
  Result<std::string> served = std::string();
  Outcome o = run(exchange(&client, &server, "stats\r\n", &served));
  expect_refused(o, served, server);
  EXPECT_NE(server.failure().find("certificate"), std::string::npos) << server.failure();
}

TEST_P(TlsStreamTest, a_server_whose_name_does_not_match_is_refused_by_the_client) {
  auto [a, b] = socket_pair();
  TlsStream client(std::move(a), *client_context(), TlsRole::client, "queue.example.org");
  TlsStream server(std::move(b), *server_context(false), TlsRole::server);
  Result<std::string> served = std::string();
  Outcome o = run(exchange(&client, &server, "x", &served));
  EXPECT_EQ(o.handshake.error(), errc::tls_handshake_failed);
  EXPECT_FALSE(served.ok());
}

// Raw bytes from a plain Stream at a TLS server: the handshake fails cleanly, whatever they are.
// The handshake as a task of its own (handshake() is an awaitable, not a task one can spawn).
Task<Status> handshake_within(TlsStream* s, Duration timeout) { co_return co_await s->handshake(timeout); }

Task<Status> raw_peer_then_server(Stream* raw, TlsStream* server, std::string bytes, bool hang_up) {
  JoinHandle<Status> hs = Loop::current()->spawn_joinable(handshake_within(server, 500ms));
  if (!bytes.empty()) (void)co_await raw->write(bytes);
  if (hang_up) (void)raw->shutdown_write();
  co_return co_await hs;
}

TEST_P(TlsStreamTest, garbage_instead_of_a_client_hello_fails_the_handshake) {
  auto [a, b] = socket_pair();
  TlsStream server(std::move(b), *server_context(false), TlsRole::server);
  Status s = run(raw_peer_then_server(&a, &server, "put 0 0 60 5\r\nhello\r\n", false));
  EXPECT_EQ(s.error(), errc::tls_handshake_failed) << s.error().message();
  EXPECT_FALSE(server.failure().empty());
  EXPECT_TRUE(server.inbound().empty());
}

TEST_P(TlsStreamTest, a_client_hello_cut_short_by_a_hang_up_ends_with_eof) {
  auto [a, b] = socket_pair();
  TlsStream server(std::move(b), *server_context(false), TlsRole::server);
  // A handshake record header announcing 512 bytes, and only the first few of them.
  Status s = run(raw_peer_then_server(&a, &server, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
                                      true));
  EXPECT_EQ(s.error(), errc::eof) << s.error().message();
}

TEST_P(TlsStreamTest, a_client_hello_that_stalls_ends_with_the_handshake_timeout) {
  auto [a, b] = socket_pair();
  TlsStream server(std::move(b), *server_context(false), TlsRole::server);
  // The peer never sends the rest, so only the timeout can end the wait: the verdict does not depend on speed.
  Status s = run(raw_peer_then_server(&a, &server, std::string("\x16\x03\x01\x02\x00", 5), false));
  EXPECT_EQ(s.error(), errc::timed_out) << s.error().message();
}

Task<Status> cancel_a_waiting_read(TlsStream* client, TlsStream* server) {
  JoinHandle<Result<std::string>> s = Loop::current()->spawn_joinable(serve_once(server, 100));
  Status hs = co_await client->handshake(5s);
  if (!hs) co_return hs;
  // Nothing comes (the server waits for 100 bytes): only the timeout ends this read, and no byte is lost after it.
  auto waited = co_await with_timeout(client->wait_more(), 50ms);
  (void)co_await client->write(Slice::copy_of(pattern(100)));
  Result<std::string> reply = co_await read_n(client, 7);
  (void)co_await s;
  if (!reply || *reply != "got 100") co_return errc::invalid_argument;
  co_return waited.ok() ? Status{errc::invalid_argument} : Status{waited.error()};
}

TEST_P(TlsStreamTest, a_wait_for_more_ended_by_a_timeout_loses_nothing) {
  auto [a, b] = socket_pair();
  TlsStream client(std::move(a), *client_context(), TlsRole::client, "localhost");
  TlsStream server(std::move(b), *server_context(false), TlsRole::server);
  Status s = run(cancel_a_waiting_read(&client, &server));
  EXPECT_EQ(s.error(), errc::timed_out) << s.error().message();
}

Task<Status> wait_for_input(TlsStream* s, CancelState** cs) {
  *cs = &co_await this_task_cancel_state();
  co_return co_await s->wait_more();
}

Task<Status> handshake_only(TlsStream* s) { co_return co_await s->handshake(5s); }

Task<Status> handshake_then_report(TlsStream* s, CancelState** cs) {
  *cs = &co_await this_task_cancel_state();
  co_return co_await s->handshake(60s);
}

// A graceful stop asks tasks to drain: a task waiting for TLS input must end (errc::eof) as it would on a Stream,
// although the record reader is a task of its own.
Task<Status> drain_a_waiting_read(TlsStream* client, TlsStream* server) {
  JoinHandle<Status> hs = Loop::current()->spawn_joinable(handshake_only(server));
  Status ch = co_await client->handshake(5s);
  Status sh = co_await hs;
  if (!ch || !sh) co_return errc::invalid_argument;
  CancelState* cs = nullptr;
  JoinHandle<Status> reader = Loop::current()->spawn_joinable(wait_for_input(server, &cs));
  while (cs == nullptr) (void)co_await sleep_for(1ms);  // the reader is suspended in wait_more once cs is set
  cs->request_drain();
  co_return co_await with_timeout(std::move(reader), 5s);
}

// Issue 11: a graceful stop must not wait for a client that connected and never sent its hello: the drain ends the
// handshake's wait for the peer (errc::eof) long before its timeout.
Task<Status> drain_a_waiting_handshake(TlsStream* server) {
  CancelState* cs = nullptr;
  JoinHandle<Status> hs = Loop::current()->spawn_joinable(handshake_then_report(server, &cs));
  while (cs == nullptr) (void)co_await sleep_for(1ms);  // the task is suspended in the handshake once cs is set
  cs->request_drain();
  co_return co_await with_timeout(std::move(hs), 5s);  // the handshake's own limit is a minute: only the drain ends it
}

TEST_P(TlsStreamTest, a_graceful_stop_ends_a_handshake_whose_peer_sends_nothing) {
  auto [a, b] = socket_pair();
  TlsStream server(std::move(b), *server_context(false), TlsRole::server);
  Status s = run(drain_a_waiting_handshake(&server));
  EXPECT_EQ(s.error(), errc::eof) << s.error().message();
}

TEST_P(TlsStreamTest, a_graceful_stop_ends_a_wait_for_tls_input) {
  auto [a, b] = socket_pair();
  TlsStream client(std::move(a), *client_context(), TlsRole::client, "localhost");
  TlsStream server(std::move(b), *server_context(false), TlsRole::server);
  Status s = run(drain_a_waiting_read(&client, &server));
  EXPECT_EQ(s.error(), errc::eof) << s.error().message();
}

RINGLET_BOTH_BACKENDS(TlsStreamTest);

}  // namespace
}  // namespace ringlet

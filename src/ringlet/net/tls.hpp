// tls.hpp — TLS over a Stream, on OpenSSL, for any ringlet server or client (docs/design/tls.md).
//
// TlsContext is the configuration every connection shares: certificate, key, and what to verify (built once at
// start-up, so a missing or mismatched file stops the server before it listens). Thread-safe: one context serves
// every shard (OpenSSL locks its reference counts and session cache itself).
//
// TlsStream is one connection: an SSL object whose I/O is a small custom BIO over the Stream, so the bytes move
// through the loop's ordinary receive and send paths on both backends — no blocking socket call and no fd BIO.
// OpenSSL reads ciphertext out of the Stream's receive queue (one copy, into OpenSSL's record buffer) and decrypts
// into pooled buffers that become the plaintext queue, inbound(); what it writes (records, alerts, tickets) is
// copied into the Stream's output chain, which the loop sends once per turn. Core-local.
//
// The read side mirrors Stream's: parse inbound() in place, wait_more() when a frame is incomplete. The write side
// encrypts at once: queue_copy() turns plaintext into records in the output chain; write() waits for room and
// flush() for everything sent, as the Stream's do. Errors are values: the handshake returns
// errc::tls_handshake_failed (a bad hello, a refused certificate), errc::eof (the peer left mid-handshake) or
// errc::timed_out; a record that fails after it is errc::tls_protocol, sticky, and reads then report end of input.
// failure() says what OpenSSL objected to, for a log line.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ringlet/base/result.hpp"
#include "ringlet/buf/slice.hpp"
#include "ringlet/buf/slice_queue.hpp"
#include "ringlet/net/stream.hpp"
#include "ringlet/runtime/task.hpp"
#include "ringlet/runtime/timeout.hpp"

// OpenSSL's own type names, so this header does not pull in OpenSSL's.
struct ssl_st;
struct ssl_ctx_st;

namespace ringlet {

// A server's files: `cert` may hold the chain (leaf first); with `client_ca`, every client must present a
// certificate signed by one of those CAs (the handshake fails otherwise).
struct TlsServerFiles {
  std::string cert;
  std::string key;
  std::string client_ca;  // empty: no client certificates asked for
};

// A client's files: `ca` verifies the server (empty: the server is not verified — tests and private networks
// only); `cert` and `key` answer a server that asks for a client certificate.
struct TlsClientFiles {
  std::string ca;
  std::string cert;
  std::string key;
};

class TlsContext {
 public:
  // On failure `why` says which file and what is wrong with it, for the user ("--tls-key k.pem: ...").
  static Result<std::shared_ptr<const TlsContext>> create_server(const TlsServerFiles& files, std::string& why);
  static Result<std::shared_ptr<const TlsContext>> create_client(const TlsClientFiles& files, std::string& why);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  ssl_ctx_st* native() const noexcept { return ctx_; }
  bool verifies_peer() const noexcept { return verifies_peer_; }

 private:
  explicit TlsContext(ssl_ctx_st* ctx, bool verifies_peer) noexcept : ctx_(ctx), verifies_peer_(verifies_peer) {}
  ssl_ctx_st* ctx_;
  bool verifies_peer_;
};

enum class TlsRole : bool { client, server };

class TlsStream {
 public:
  // Takes the connected Stream. A client's `host` is sent as SNI and, when the context verifies, checked against
  // the server's certificate (a name or an IP address).
  TlsStream(Stream transport, const TlsContext& context, TlsRole role, std::string_view host = {});
  TlsStream(TlsStream&& o) noexcept;
  TlsStream& operator=(TlsStream&&) = delete;
  ~TlsStream();

  // Runs the handshake to its end, at most `timeout` (then errc::timed_out). A failed handshake sends its alert
  // before returning. Errors: tls_handshake_failed, eof (the peer hung up first, or a graceful stop's drain ended
  // the wait for its next flight), timed_out, cancelled.
  // (An input wait, as wait_more() is: a stopping server does not keep a silent client until the timeout, #11.)
  using Handshake = InputWait<Status>;
  Handshake handshake(Duration timeout) { return as_input_wait(handshake_within(timeout)); }

  // ---- reading: plaintext, parsed in place as with Stream::inbound() -------------------------------------------

  SliceQueue& inbound() noexcept { return plain_; }
  bool peer_closed() const noexcept { return peer_closed_; }  // close_notify, EOF or a fatal error: no more input

  // Waits until more plaintext is queued or the peer is done (then it returns success with nothing new, like
  // Stream::WaitMore at EOF). A partial record is not progress: the wait goes on until the record is whole.
  // Cancelling ends the wait (errc::cancelled), a graceful stop's drain ends it with errc::eof (it is an input
  // wait), a stream timeout with errc::timed_out; ciphertext received meanwhile stays queued. Plaintext already
  // queued is never lost. A bad record or an alert ends input like EOF (peer_closed(); status() holds
  // errc::tls_protocol), so plaintext decrypted before it is still parsed.
  // (An input wait: the child task that reads records hears a drain request as Stream's own waits do.)
  using WaitMore = InputWait<Status>;
  WaitMore wait_more() { return as_input_wait(read_more()); }

  // ---- writing: encrypted at once into the transport's output chain -------------------------------------------

  // Encrypts `text` into records queued on the transport (the loop sends them this turn). After an error, does
  // nothing: status() has it.
  void queue_copy(std::string_view text);
  void queue(const Slice& plain) { queue_copy(plain.view()); }
  // Queues `plain` and waits only while the transport holds more than its send watermark.
  Stream::WaitSent write(const Slice& plain) {
    queue(plain);
    return transport_.write(Slice{});
  }
  // Waits until every queued record is sent.
  Stream::WaitSent flush() noexcept { return transport_.flush(); }
  std::size_t queued_bytes() const noexcept { return transport_.queued_bytes(); }

  // Sends close_notify (when the handshake finished and nothing failed), flushes for at most `timeout`, and
  // half-closes the transport. The peer's own close_notify is not awaited (TLS lets the closing side go).
  Task<Status> close_notify(Duration timeout);

  Status status() const noexcept;
  std::string_view failure() const noexcept { return failure_; }
  // The verified peer certificate's subject ("CN=worker-1,O=..."), empty without one.
  std::string peer_subject() const;
  bool handshake_done() const noexcept { return handshake_done_; }

  Stream& transport() noexcept { return transport_; }
  Loop& loop() const noexcept { return transport_.loop(); }
  int fd() const noexcept { return transport_.fd(); }

 private:
  friend struct TlsBio;
  Task<Status> handshake_within(Duration timeout);
  Task<Status> run_handshake();
  Task<Status> read_more();
  Status decrypt_available();  // SSL_read everything that is whole; plaintext to plain_
  void bind() noexcept;        // points the BIO at this object (it may have moved)
  void note_failure(std::string_view what);

  Stream transport_;
  ssl_st* ssl_ = nullptr;
  SliceQueue plain_;
  Error error_{};
  std::string failure_;
  bool handshake_done_ = false;
  bool peer_closed_ = false;
};

}  // namespace ringlet

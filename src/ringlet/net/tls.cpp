// tls.cpp — TlsContext (OpenSSL's SSL_CTX, checked file by file) and TlsStream (an SSL object over a custom BIO
// that reads the Stream's receive queue and appends to its output chain). docs/design/tls.md has the byte paths.
#include "ringlet/net/tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/runtime/timeout.hpp"

namespace ringlet {

namespace {

// Plaintext lands in buffers of this size: one full TLS record's payload (16 KiB), so a record is never split
// across two buffers and a big job body arrives as few slices.
constexpr std::size_t kPlainBufferSize = 16 * 1024;

// The oldest reason OpenSSL queued on this thread, as text, and the queue emptied.
std::string openssl_reason() {
  unsigned long e = ERR_get_error();
  std::string out;
  if (e != 0) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    out = text;
  }
  ERR_clear_error();
  return out;
}

// A file OpenSSL could not read is most often one the process cannot open at all: say so in errno's words.
bool readable(const std::string& path, std::string_view option, std::string& why) {
  if (::access(path.c_str(), R_OK) == 0) return true;
  why = std::string(option) + " " + path + ": " + std::strerror(errno);
  return false;
}

struct CtxDeleter {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxDeleter>;

// The settings both roles share. TLS 1.2 is the floor (1.0 and 1.1 are deprecated by RFC 8996). Renegotiation is
// refused: a client could otherwise make the server redo the costly part of a handshake at will.
// SSL_MODE_RELEASE_BUFFERS gives OpenSSL's per-connection record buffers (about 34 KiB) back while a connection
// is idle, which is what most queue connections are most of the time.
CtxPtr new_context(const SSL_METHOD* method) {
  CtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) return ctx;
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

bool load_pair(SSL_CTX* ctx, const std::string& cert, const std::string& key, std::string_view cert_option,
               std::string_view key_option, std::string& why) {
  if (!readable(cert, cert_option, why) || !readable(key, key_option, why)) return false;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    why = std::string(cert_option) + " " + cert + ": not a PEM certificate (" + openssl_reason() + ")";
    return false;
  }
  // Loading the key also compares it with the certificate's public key: a mismatch fails here already.
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH && ERR_peek_last_error() != 0) {
      why = std::string(key_option) + " " + key + ": not a PEM private key (" + openssl_reason() + ")";
      return false;
    }
    why = std::string(key_option) + " " + key + ": does not match the certificate in " + cert;
    ERR_clear_error();
    return false;
  }
  return true;
}

}  // namespace

// ---- the context ---------------------------------------------------------------------------------------------------

Result<std::shared_ptr<const TlsContext>> TlsContext::create_server(const TlsServerFiles& files, std::string& why) {
  ERR_clear_error();
  CtxPtr ctx = new_context(TLS_server_method());
  if (!ctx) {
    why = "TLS: cannot create a context: " + openssl_reason();
    return errc::invalid_argument;
  }
  if (!load_pair(ctx.get(), files.cert, files.key, "--tls-cert", "--tls-key", why)) return errc::invalid_argument;
  const bool verify = !files.client_ca.empty();
  if (verify) {
    if (!readable(files.client_ca, "--tls-client-ca", why)) return errc::invalid_argument;
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca.c_str());
    if (names == nullptr || SSL_CTX_load_verify_locations(ctx.get(), files.client_ca.c_str(), nullptr) != 1) {
      if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
      why = "--tls-client-ca " + files.client_ca + ": no PEM CA certificate in it (" + openssl_reason() + ")";
      return errc::invalid_argument;
    }
    SSL_CTX_set_client_CA_list(ctx.get(), names);  // takes ownership: sent in the CertificateRequest
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return std::shared_ptr<const TlsContext>(new TlsContext(ctx.release(), verify));
}

Result<std::shared_ptr<const TlsContext>> TlsContext::create_client(const TlsClientFiles& files, std::string& why) {
  ERR_clear_error();
  CtxPtr ctx = new_context(TLS_client_method());
  if (!ctx) {
    why = "TLS: cannot create a context: " + openssl_reason();
    return errc::invalid_argument;
  }
  if (!files.cert.empty() && !load_pair(ctx.get(), files.cert, files.key, "cert", "key", why)) {
    return errc::invalid_argument;
  }
  const bool verify = !files.ca.empty();
  if (verify) {
    if (!readable(files.ca, "ca", why)) return errc::invalid_argument;
    if (SSL_CTX_load_verify_locations(ctx.get(), files.ca.c_str(), nullptr) != 1) {
      why = "ca " + files.ca + ": no PEM CA certificate in it (" + openssl_reason() + ")";
      return errc::invalid_argument;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  return std::shared_ptr<const TlsContext>(new TlsContext(ctx.release(), verify));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

// ---- the BIO: OpenSSL's view of the Stream -------------------------------------------------------------------------

// OpenSSL reads and writes through these three functions instead of a socket. The method table is built once per
// process and never changes (a constant, not mutable state); each connection's BIO points at its TlsStream, set
// again before every OpenSSL call (bind()) because a TlsStream may have moved.
struct TlsBio {
  static TlsStream* owner(BIO* b) noexcept { return static_cast<TlsStream*>(BIO_get_data(b)); }

  // Ciphertext out of the receive queue. Nothing queued is "retry later": the stream decides about EOF itself,
  // so OpenSSL never sees a read of 0 as the end (that would be a truncation error inside OpenSSL).
  static int read(BIO* b, char* out, std::size_t len, std::size_t* got) noexcept {
    BIO_clear_retry_flags(b);
    SliceQueue& in = owner(b)->transport_.inbound();
    if (in.empty()) {
      BIO_set_retry_read(b);
      *got = 0;
      return 0;
    }
    *got = in.copy_out(std::as_writable_bytes(std::span(out, len)));
    return 1;
  }

  // Records into the output chain: a copy into pooled buffers, sent by the loop's flush phase this turn. Never
  // short, never "retry": back-pressure is the writer's (TlsStream::write waits on the transport's watermark).
  static int write(BIO* b, const char* data, std::size_t len, std::size_t* written) noexcept {
    BIO_clear_retry_flags(b);
    owner(b)->transport_.queue_copy(std::string_view(data, len));
    *written = len;
    return 1;
  }

  static long ctrl(BIO*, int cmd, long, void*) noexcept {
    // Flush must succeed (OpenSSL flushes after each handshake flight; the loop sends on its own schedule).
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
  }

  static int create(BIO* b) noexcept {
    BIO_set_init(b, 1);
    return 1;
  }

  static const BIO_METHOD* method() {
    static const BIO_METHOD* const m = [] {
      BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringlet stream");
      BIO_meth_set_read_ex(made, &TlsBio::read);
      BIO_meth_set_write_ex(made, &TlsBio::write);
      BIO_meth_set_ctrl(made, &TlsBio::ctrl);
      BIO_meth_set_create(made, &TlsBio::create);
      return made;
    }();
    return m;
  }
};

// ---- the stream ----------------------------------------------------------------------------------------------------

TlsStream::TlsStream(Stream transport, const TlsContext& context, TlsRole role, std::string_view host)
    : transport_(std::move(transport)), ssl_(SSL_new(context.native())) {
  RINGLET_ASSERT(ssl_ != nullptr);  // only fails when out of memory
  BIO* bio = BIO_new(TlsBio::method());
  RINGLET_ASSERT(bio != nullptr);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; the SSL owns it
  if (role == TlsRole::server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    if (!host.empty()) {
      const std::string name(host);
      SSL_set_tlsext_host_name(ssl_, name.c_str());
      if (context.verifies_peer()) {
        // SSL_set1_host checks DNS names; an address literal is matched against the IP SANs instead.
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) SSL_set1_host(ssl_, name.c_str());
      }
    }
  }
}

TlsStream::TlsStream(TlsStream&& o) noexcept
    : transport_(std::move(o.transport_)),
      ssl_(std::exchange(o.ssl_, nullptr)),
      plain_(std::move(o.plain_)),
      error_(o.error_),
      failure_(std::move(o.failure_)),
      handshake_done_(o.handshake_done_),
      peer_closed_(o.peer_closed_) {}

TlsStream::~TlsStream() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void TlsStream::bind() noexcept { BIO_set_data(SSL_get_rbio(ssl_), this); }

void TlsStream::note_failure(std::string_view what) {
  failure_ = std::string(what);
  if (std::string reason = openssl_reason(); !reason.empty()) failure_ += ": " + reason;
  if (SSL_get_verify_result(ssl_) != X509_V_OK) {
    failure_ += " (certificate: ";
    failure_ += X509_verify_cert_error_string(SSL_get_verify_result(ssl_));
    failure_ += ")";
  }
}

Status TlsStream::status() const noexcept {
  if (error_.code != 0) return error_;
  return {};
}

Task<Status> TlsStream::handshake_within(Duration timeout) {
  // run_handshake is a child task: as_input_wait passes a drain request on to its wait for the peer's flight.
  Status s = co_await with_timeout(as_input_wait(run_handshake()), timeout);
  if (!s) {
    if (error_.code == 0) error_ = s.error();
    peer_closed_ = true;
  }
  co_return s;
}

// Each pass lets OpenSSL consume what has arrived and queue its answer (the loop sends it this turn), then waits
// for the peer's next flight. A handshake is two flights each way at most (TLS 1.3: one and a half round trips).
Task<Status> TlsStream::run_handshake() {
  for (;;) {
    bind();
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      handshake_done_ = true;
      co_return Status{};
    }
    if (SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) {
      note_failure("handshake");
      // The alert OpenSSL queued tells the peer why; it must leave before the stream is closed.
      (void)co_await transport_.flush();
      co_return errc::tls_handshake_failed;
    }
    const std::size_t before = transport_.inbound().bytes();
    Status more = co_await transport_.wait_more();
    if (!more) co_return more.error();
    if (transport_.inbound().bytes() <= before) {  // EOF or a reset mid-handshake
      failure_ = "the peer closed the connection during the handshake";
      co_return errc::eof;
    }
  }
}

Status TlsStream::decrypt_available() {
  if (error_.code != 0) return error_;
  if (!handshake_done_) return errc::tls_protocol;
  bind();
  Buffer* buf = nullptr;
  std::size_t used = 0;
  for (;;) {
    if (buf == nullptr || used == buf->capacity) {
      if (buf != nullptr) buffer_unref(buf);
      buf = BufferPool::local().acquire(kPlainBufferSize);
      used = 0;
    }
    std::size_t got = 0;
    ERR_clear_error();
    const int r = SSL_read_ex(ssl_, buf->data + used, buf->capacity - used, &got);
    if (r == 1) {
      buffer_ref(buf);  // the slice's reference; ours is dropped below
      plain_.push(Slice(buf, static_cast<std::uint32_t>(used), static_cast<std::uint32_t>(got)));
      used += got;
      continue;
    }
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) break;
    if (e == SSL_ERROR_ZERO_RETURN) {  // the peer's close_notify: a clean end of input
      peer_closed_ = true;
      break;
    }
    note_failure("read");
    error_ = errc::tls_protocol;
    peer_closed_ = true;
    break;
  }
  buffer_unref(buf);  // the buffer lives on while a slice of it is queued
  return status();
}

Task<Status> TlsStream::read_more() {
  const std::size_t before = plain_.bytes();
  for (;;) {
    Status s = decrypt_available();
    if (plain_.bytes() > before || peer_closed_) co_return Status{};
    if (!s) co_return s;
    const std::size_t cipher = transport_.inbound().bytes();
    Status more = co_await transport_.wait_more();
    if (!more) co_return more;
    if (transport_.inbound().bytes() <= cipher) {
      // EOF (or a reset) with no close_notify: a truncation the peer may not have meant, but the end all the same.
      // The plaintext already delivered was authenticated record by record, so it stands.
      peer_closed_ = true;
      co_return Status{};
    }
  }
}

void TlsStream::queue_copy(std::string_view text) {
  if (text.empty() || error_.code != 0 || !handshake_done_) return;
  bind();
  ERR_clear_error();
  std::size_t written = 0;
  // The BIO accepts everything, so a write is whole or a fatal error (SSL_write never waits here).
  if (SSL_write_ex(ssl_, text.data(), text.size(), &written) != 1) {
    note_failure("write");
    error_ = errc::tls_protocol;
  }
}

Task<Status> TlsStream::close_notify(Duration timeout) {
  if (handshake_done_ && error_.code == 0 && ssl_ != nullptr) {
    bind();
    ERR_clear_error();
    (void)SSL_shutdown(ssl_);  // queues close_notify; 0 means "the peer's is still to come", which we do not await
    ERR_clear_error();
  }
  Status sent = co_await with_timeout(transport_.flush(), timeout);
  (void)transport_.shutdown_write();
  co_return sent;
}

std::string TlsStream::peer_subject() const {
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr) return {};
  std::string out;
  if (BIO* mem = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long n = BIO_get_mem_data(mem, &data);
    if (n > 0) out.assign(data, static_cast<std::size_t>(n));
    BIO_free(mem);
  }
  X509_free(cert);
  return out;
}

}  // namespace ringlet

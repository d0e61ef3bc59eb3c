// simple_memcache_client.c — the "simple C client" `ringlet bench memcache` is measured against: blocking sockets,
// one connection per thread, one request at a time (no pipelining), a fixed number of operations, then ops/s.
//
//   simple_memcache_client HOST PORT [--threads N] [--ops N] [--keys N] [--value-size N] [--get-ratio F]
//                                    [--preload]
//
// Text protocol: "get k<n>" / "set k<n> 0 0 <size>", keys "k" + 15 zero-padded digits (the same 16-byte keys as
// `ringlet bench memcache --key-size 16`). Replies are read whole and checked for their shape and length (a value
// of the right size, STORED), not byte for byte. Prints "ops/s: <rate>" and exits 1 on any unexpected reply.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char* host = "127.0.0.1";
static int port = 11211;
static long ops = 100000;
static long keys = 10000;
static long value_size = 32;
static double get_ratio = 0.9;

struct conn {
  int fd;
  char buf[1 << 16];
  size_t len;  // bytes buffered
  uint64_t rng;
};

static uint64_t next_rand(uint64_t* s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void die(const char* what) {
  fprintf(stderr, "simple_memcache_client: %s\n", what);
  exit(1);
}

static void send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) die("write failed");
    p += w;
    n -= (size_t)w;
  }
}

// Reads until the buffer holds `need` bytes.
static void fill(struct conn* c, size_t need) {
  if (need > sizeof c->buf) die("reply too large");
  while (c->len < need) {
    ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (r <= 0) die("connection closed");
    c->len += (size_t)r;
  }
}

// Length of the first line including "\r\n", reading as needed.
static size_t line_end(struct conn* c) {
  for (size_t scanned = 0;;) {
    char* nl = memchr(c->buf + scanned, '\n', c->len - scanned);
    if (nl != NULL) return (size_t)(nl - c->buf) + 1;
    scanned = c->len;
    fill(c, c->len + 1);
  }
}

static void consume(struct conn* c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

// "VALUE ... <size>\r\n<data>\r\nEND\r\n" or "END\r\n".
static void read_get_reply(struct conn* c) {
  size_t n = line_end(c);
  if (n == 5 && memcmp(c->buf, "END\r\n", 5) == 0) {
    consume(c, n);
    return;
  }
  if (memcmp(c->buf, "VALUE ", 6) != 0) die("unexpected reply to get");
  long size = strtol(memrchr(c->buf, ' ', n - 2) + 1, NULL, 10);
  if (size != value_size) die("value of the wrong size");
  consume(c, n);
  fill(c, (size_t)size + 7);
  if (memcmp(c->buf + size, "\r\nEND\r\n", 7) != 0) die("value not followed by END");
  consume(c, (size_t)size + 7);
}

static void read_stored(struct conn* c) {
  size_t n = line_end(c);
  if (n != 8 || memcmp(c->buf, "STORED\r\n", 8) != 0) die("set not stored");
  consume(c, n);
}

static int connect_to_server(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) die("bad host (numeric IPv4 only)");
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) die("connect failed");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static size_t format_set(char* out, long key, const char* value) {
  int n = sprintf(out, "set k%015ld 0 0 %ld\r\n", key, value_size);
  memcpy(out + n, value, (size_t)value_size);
  memcpy(out + n + value_size, "\r\n", 2);
  return (size_t)n + (size_t)value_size + 2;
}

static void* run(void* arg) {
  struct conn* c = calloc(1, sizeof *c);
  c->fd = connect_to_server();
  c->rng = (uint64_t)(uintptr_t)arg * 7919 + 1;
  char* value = malloc((size_t)value_size);
  memset(value, 'v', (size_t)value_size);
  char* req = malloc((size_t)value_size + 64);
  for (long i = 0; i < ops; ++i) {
    long key = (long)(next_rand(&c->rng) % (uint64_t)keys);
    if ((double)(next_rand(&c->rng) >> 11) * 0x1.0p-53 < get_ratio) {
      int n = sprintf(req, "get k%015ld\r\n", key);
      send_all(c->fd, req, (size_t)n);
      read_get_reply(c);
    } else {
      send_all(c->fd, req, format_set(req, key, value));
      read_stored(c);
    }
  }
  close(c->fd);
  free(req);
  free(value);
  free(c);
  return NULL;
}

static void preload(void) {
  struct conn* c = calloc(1, sizeof *c);
  c->fd = connect_to_server();
  char* value = malloc((size_t)value_size);
  memset(value, 'v', (size_t)value_size);
  char* req = malloc((size_t)value_size + 64);
  for (long k = 0; k < keys; ++k) {
    send_all(c->fd, req, format_set(req, k, value));
    read_stored(c);
  }
  close(c->fd);
  free(req);
  free(value);
  free(c);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s HOST PORT [--threads N] [--ops N per thread] [--keys N] [--value-size N] "
                    "[--get-ratio F] [--preload]\n", argv[0]);
    return 2;
  }
  host = argv[1];
  port = atoi(argv[2]);
  int threads = 1, do_preload = 0;
  for (int i = 3; i < argc; ++i) {
    const char* v = i + 1 < argc ? argv[i + 1] : "0";
    if (strcmp(argv[i], "--threads") == 0) threads = atoi(v), ++i;
    else if (strcmp(argv[i], "--ops") == 0) ops = atol(v), ++i;
    else if (strcmp(argv[i], "--keys") == 0) keys = atol(v), ++i;
    else if (strcmp(argv[i], "--value-size") == 0) value_size = atol(v), ++i;
    else if (strcmp(argv[i], "--get-ratio") == 0) get_ratio = atof(v), ++i;
    else if (strcmp(argv[i], "--preload") == 0) do_preload = 1;
    else die("unknown option");
  }
  if (threads < 1 || ops < 1 || keys < 1 || value_size < 1 || value_size > 60000) die("bad option value");
  if (do_preload) preload();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  for (int t = 0; t < threads; ++t) pthread_create(&tids[t], NULL, run, (void*)(uintptr_t)(t + 1));
  for (int t = 0; t < threads; ++t) pthread_join(tids[t], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("ops/s: %.0f (%ld ops in %.3f s, %d threads)\n", (double)ops * threads / seconds, ops * threads, seconds,
         threads);
  free(tids);
  return 0;
}

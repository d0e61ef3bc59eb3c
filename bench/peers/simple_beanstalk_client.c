// simple_beanstalk_client.c — the "simple C client" `ringlet bench beanstalk` is measured against: blocking
// sockets, one connection per thread, one command at a time, a fixed number of put -> reserve -> delete cycles,
// then commands/s (3 per cycle, the unit `ringlet bench beanstalk` reports) and cycles/s.
//
//   simple_beanstalk_client HOST PORT [--threads N] [--cycles N per thread] [--body-size N]
//
// Every thread uses and watches tube "simple-client" and ignores "default": a tube of its own, because its plain
// bodies would fail the verification of `ringlet bench beanstalk` if they were left in a ringlet-bench-* tube.
// Replies are checked for their shape (INSERTED, RESERVED and its body's length, DELETED).
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
static int port = 11300;
static long cycles = 100000;
static long body_size = 64;

struct conn {
  int fd;
  char buf[1 << 17];
  size_t len;
};

static void die(const char* what) {
  fprintf(stderr, "simple_beanstalk_client: %s\n", what);
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

static void fill(struct conn* c, size_t need) {
  if (need > sizeof c->buf) die("reply too large");
  while (c->len < need) {
    ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (r <= 0) die("connection closed");
    c->len += (size_t)r;
  }
}

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

// Reads one reply line that must start with `prefix`; returns the number after it (0 if none).
static unsigned long long expect_line(struct conn* c, const char* prefix) {
  size_t n = line_end(c);
  size_t p = strlen(prefix);
  if (n < p + 2 || memcmp(c->buf, prefix, p) != 0) {
    fprintf(stderr, "simple_beanstalk_client: expected %s, got %.*s\n", prefix, (int)n, c->buf);
    exit(1);
  }
  unsigned long long v = strtoull(c->buf + p, NULL, 10);
  consume(c, n);
  return v;
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

static void* run(void* arg) {
  (void)arg;
  struct conn* c = calloc(1, sizeof *c);
  c->fd = connect_to_server();
  const char* setup = "use simple-client\r\nwatch simple-client\r\nignore default\r\n";
  send_all(c->fd, setup, strlen(setup));
  expect_line(c, "USING ");
  expect_line(c, "WATCHING ");
  expect_line(c, "WATCHING ");
  char* put = malloc((size_t)body_size + 64);
  int head = sprintf(put, "put 1024 0 60 %ld\r\n", body_size);
  memset(put + head, 'b', (size_t)body_size);
  memcpy(put + head + body_size, "\r\n", 2);
  size_t put_len = (size_t)head + (size_t)body_size + 2;
  char cmd[64];
  for (long i = 0; i < cycles; ++i) {
    send_all(c->fd, put, put_len);
    expect_line(c, "INSERTED ");
    send_all(c->fd, "reserve-with-timeout 2\r\n", 24);
    size_t n = line_end(c);
    unsigned long long id = 0;
    long size = 0;
    if (sscanf(c->buf, "RESERVED %llu %ld", &id, &size) != 2) die("unexpected reply to reserve");
    consume(c, n);
    fill(c, (size_t)size + 2);  // any job's body (leftovers of other runs may differ in size)
    consume(c, (size_t)size + 2);
    int m = sprintf(cmd, "delete %llu\r\n", id);
    send_all(c->fd, cmd, (size_t)m);
    expect_line(c, "DELETED");
  }
  close(c->fd);
  free(put);
  free(c);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s HOST PORT [--threads N] [--cycles N per thread] [--body-size N]\n", argv[0]);
    return 2;
  }
  host = argv[1];
  port = atoi(argv[2]);
  int threads = 1;
  for (int i = 3; i < argc; ++i) {
    const char* v = i + 1 < argc ? argv[i + 1] : "0";
    if (strcmp(argv[i], "--threads") == 0) threads = atoi(v), ++i;
    else if (strcmp(argv[i], "--cycles") == 0) cycles = atol(v), ++i;
    else if (strcmp(argv[i], "--body-size") == 0) body_size = atol(v), ++i;
    else die("unknown option");
  }
  if (threads < 1 || cycles < 1 || body_size < 1 || body_size > 65535) die("bad option value");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_t* tids = calloc((size_t)threads, sizeof *tids);
  for (int t = 0; t < threads; ++t) pthread_create(&tids[t], NULL, run, NULL);
  for (int t = 0; t < threads; ++t) pthread_join(tids[t], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  double total = (double)cycles * threads;
  printf("ops/s: %.0f (commands; cycles/s: %.0f; %.0f cycles in %.3f s, %d threads)\n", 3 * total / seconds,
         total / seconds, total, seconds, threads);
  free(tids);
  return 0;
}

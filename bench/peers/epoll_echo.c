/* epoll_echo: the "practical limit" echo server the benchmarks compare ringlet against.
 *
 * Single-threaded, edge-triggered epoll, written the way a careful C programmer would:
 * every socket is registered once for EPOLLIN|EPOLLOUT|EPOLLET (no epoll_ctl per event),
 * bytes are read into one shared scratch buffer and written straight back. Only when a
 * write is partial are the unsent bytes copied into a per-connection tail; while a tail
 * exists the connection is not read (back-pressure: a client that does not read its
 * echoes stops being read). The only per-connection state is one pointer in a table
 * indexed by fd, so this is also the idle-memory reference (8 bytes per connection).
 *
 * Usage: epoll_echo PORT   (listens on 127.0.0.1; SIGINT/SIGTERM exit 0)
 * Single-threaded; nothing here is thread-safe.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { SCRATCH_SIZE = 64 * 1024, MAX_EVENTS = 256 };

/* Bytes received but not yet accepted by the kernel's send buffer. */
struct tail {
    uint32_t off;
    uint32_t len;
    char bytes[];
};

static struct tail **tails; /* indexed by fd; NULL = nothing pending */
static size_t tails_cap;
static char scratch[SCRATCH_SIZE];

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void on_signal(int sig) {
    (void)sig;
    _exit(0);
}

static void ensure_slot(int fd) {
    if ((size_t)fd < tails_cap)
        return;
    size_t cap = tails_cap ? tails_cap : 1024;
    while (cap <= (size_t)fd)
        cap *= 2;
    struct tail **grown = realloc(tails, cap * sizeof *grown);
    if (!grown)
        die("realloc");
    memset(grown + tails_cap, 0, (cap - tails_cap) * sizeof *grown);
    tails = grown;
    tails_cap = cap;
}

static void close_conn(int fd) {
    free(tails[fd]);
    tails[fd] = NULL;
    close(fd); /* also removes fd from the epoll set: we never dup() it */
}

/* Writes what it can; keeps the rest as the connection's tail. Returns -1 on a dead socket. */
static int send_or_keep(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            break;
        return -1;
    }
    if (n == 0)
        return 0;
    struct tail *t = malloc(sizeof *t + n);
    if (!t)
        die("malloc");
    t->off = 0;
    t->len = (uint32_t)n;
    memcpy(t->bytes, p, n);
    tails[fd] = t;
    return 0;
}

/* Returns 1 when the tail is gone (reading may resume), 0 when bytes remain, -1 on error. */
static int flush_tail(int fd) {
    struct tail *t = tails[fd];
    while (t->off < t->len) {
        ssize_t w = write(fd, t->bytes + t->off, t->len - t->off);
        if (w > 0) {
            t->off += (uint32_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return 0;
        return -1;
    }
    free(t);
    tails[fd] = NULL;
    return 1;
}

static void serve(int fd, uint32_t events) {
    /* After the peer's FIN no further edge will come, so then we must read until EOF. */
    int may_stop_short = !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
    if (tails[fd]) {
        int r = flush_tail(fd);
        if (r < 0) {
            close_conn(fd);
            return;
        }
        /* Still blocked: EPOLLOUT will fire again when the send buffer drains. Unread input
         * stays queued in the kernel, and the edge we skip is recovered below once the tail
         * is gone, because then we read until the socket is empty. */
        if (r == 0)
            return;
    }
    for (;;) {
        ssize_t n = read(fd, scratch, sizeof scratch);
        if (n > 0) {
            if (send_or_keep(fd, scratch, (size_t)n) < 0) {
                close_conn(fd);
                return;
            }
            if (tails[fd])
                return;
            /* A short read drained the socket; any later arrival raises a new edge, so the
             * read that would only return EAGAIN is skipped (nginx does the same). */
            if ((size_t)n < sizeof scratch && may_stop_short)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        close_conn(fd); /* EOF or error */
        return;
    }
}

static void accept_all(int lfd, int ep) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN)
                return;
            if (errno == EMFILE || errno == ENFILE) {
                perror("accept4");
                return; /* the rest waits in the backlog until the next connection's edge */
            }
            die("accept4");
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ensure_slot(fd);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            die("epoll_ctl");
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    if (listen(lfd, SOMAXCONN) < 0)
        die("listen");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.fd = lfd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        die("epoll_ctl");

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd)
                accept_all(lfd, ep);
            else
                serve(fd, events[i].events);
        }
    }
}

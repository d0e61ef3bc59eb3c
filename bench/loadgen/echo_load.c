/* echo_load: the closed-loop load client used for every echo server in bench/.
 *
 * It shares no code with ringlet, so a ringlet bug cannot hide in the tool that measures it.
 * Single-threaded, edge-triggered epoll. Each connection is one byte stream that keeps
 * `depth` messages of `size` bytes in flight: a message is done when its `size` echoed
 * bytes are back, and each completed message lets one more be sent.
 *
 * Verification: connection c's stream is the shared random pattern read from offset
 * start[c], so byte p of the stream must equal pattern[(start[c] + p) % PATTERN_LEN].
 * Every received byte is compared; a message with any wrong byte counts one error, as do
 * bytes beyond what was sent and a connection the server closes. Reordered, duplicated,
 * dropped or cross-connection bytes all land on the wrong offset and are caught.
 *
 * Timing: the run is warmup, then the measured window. Only messages completed inside the
 * window count toward messages_per_sec; the window's ends are clock readings taken when the
 * count is snapshotted. With --markers the client prints "window_start" and "window_end"
 * lines at those instants, so a harness can sample the server's CPU time over exactly the
 * same window.
 *
 * --reconnect measures the connection rate instead: every connection slot opens a connection,
 * sends one message, checks its echo and closes, then opens the next (closed loop, so at most
 * `connections` descriptors are ever open). A message is then one whole connection. The client
 * closes with SO_LINGER 0 (a reset instead of a FIN): the side that closes first keeps its end
 * in TIME_WAIT for 60 s, and at tens of thousands of connections per second the client's
 * ephemeral ports (net.ipv4.ip_local_port_range, ~28,000) would run out within a second or two.
 * The server sees the reset as the end of the connection, as after any abortive close. Such a connection gets no
 * TCP_NODELAY: its one message is the first segment, which Nagle's algorithm never holds back, so the setsockopt
 * would only make the client dearer per connection (this mode must not be what sets the pace).
 *
 * Client CPU: the JSON's client_cpu gives this process's user and system time over the measured window (getrusage)
 * and "saturated" when it used more than 90% of its core: then the client, not the server, may set the pace. On
 * loopback the kernel runs much of the server side's TCP work (the handshake, the peer's receive path) in the
 * sending process's context, so the client's system time also carries some of the server's kernel work.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Not a power of two, so stream offsets do not line up with power-of-two message sizes.
 * Larger than any single read or write, so one doubled copy makes every chunk contiguous. */
enum { PATTERN_LEN = (1 << 20) + 7, RECV_BUF = 256 * 1024, MAX_EVENTS = 256 };

struct conn {
    int fd;
    bool dead;
    bool send_blocked; /* last write was short: wait for EPOLLOUT before writing again */
    bool msg_bad;      /* the message being received has a wrong byte */
    bool connecting;   /* --reconnect: a non-blocking connect is in progress */
    bool exchanged;    /* --reconnect: the one message is back: close and open the next */
    uint32_t start;    /* this stream's offset into the pattern */
    uint64_t sent;
    uint64_t recvd;
};

struct options {
    const char *host;
    const char *port;
    long connections;
    long depth;
    long size;
    double duration;
    double warmup;
    bool json;
    bool markers;
    bool reconnect;
    uint64_t seed;
};

static char *pattern; /* PATTERN_LEN bytes, then the same bytes again */
static char recv_buf[RECV_BUF];
static uint64_t messages;
static uint64_t errors;
static uint64_t connects; /* connections opened (--reconnect: one per message, errors included) */
static int ep;
static const struct addrinfo *target;
static uint64_t rng;
static struct options opt = {
    .host = "127.0.0.1", .connections = 1, .depth = 1, .size = 64, .duration = 5, .warmup = 1, .seed = 1};

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s --port P [--host H] [--connections N] [--depth D] [--size S]\n"
            "          [--duration SEC] [--warmup SEC] [--seed N] [--json] [--markers] [--reconnect]\n",
            argv0);
    exit(2);
}

static long parse_positive(const char *name, const char *text) {
    char *end;
    long v = strtol(text, &end, 10);
    if (*end || v <= 0) {
        fprintf(stderr, "--%s must be a positive integer, got '%s'\n", name, text);
        exit(2);
    }
    return v;
}

static double parse_seconds(const char *name, const char *text) {
    char *end;
    double v = strtod(text, &end);
    if (*end || v < 0) {
        fprintf(stderr, "--%s must be a non-negative number of seconds, got '%s'\n", name, text);
        exit(2);
    }
    return v;
}

static void parse_args(int argc, char **argv) {
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'h'},     {"port", required_argument, 0, 'p'},
        {"connections", required_argument, 0, 'c'}, {"depth", required_argument, 0, 'd'},
        {"size", required_argument, 0, 's'},     {"duration", required_argument, 0, 't'},
        {"warmup", required_argument, 0, 'w'},   {"seed", required_argument, 0, 'r'},
        {"json", no_argument, 0, 'j'},           {"markers", no_argument, 0, 'm'},
        {"reconnect", no_argument, 0, 'n'},      {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = optarg; break;
        case 'c': opt.connections = parse_positive("connections", optarg); break;
        case 'd': opt.depth = parse_positive("depth", optarg); break;
        case 's': opt.size = parse_positive("size", optarg); break;
        case 't': opt.duration = parse_seconds("duration", optarg); break;
        case 'w': opt.warmup = parse_seconds("warmup", optarg); break;
        case 'r': opt.seed = (uint64_t)parse_positive("seed", optarg); break;
        case 'j': opt.json = true; break;
        case 'm': opt.markers = true; break;
        case 'n': opt.reconnect = true; break;
        default: usage(argv[0]);
        }
    }
    if (!opt.port || optind != argc || opt.duration <= 0)
        usage(argv[0]);
    if (opt.reconnect && opt.depth != 1) {
        fprintf(stderr, "--reconnect sends one message per connection: --depth must be 1\n");
        exit(2);
    }
}

static void make_pattern(uint64_t *rng) {
    pattern = malloc(2 * (size_t)PATTERN_LEN);
    if (!pattern) {
        perror("malloc");
        exit(2);
    }
    for (size_t i = 0; i < PATTERN_LEN; i += 8) {
        uint64_t r = splitmix64(rng);
        size_t n = PATTERN_LEN - i < 8 ? PATTERN_LEN - i : 8;
        memcpy(pattern + i, &r, n);
    }
    memcpy(pattern + PATTERN_LEN, pattern, PATTERN_LEN);
}

static int connect_one(const struct addrinfo *ai) {
    for (; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0)
                return fd;
        }
        close(fd);
    }
    return -1;
}

/* --reconnect: starts a non-blocking connect (loopback may finish it at once); -1 when no socket. */
static int connect_start(const struct addrinfo *ai, bool *in_progress) {
    for (; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        struct linger abortive = {.l_onoff = 1, .l_linger = 0}; /* close sends RST: no TIME_WAIT here */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            *in_progress = false;
            return fd;
        }
        if (errno == EINPROGRESS) {
            *in_progress = true;
            return fd;
        }
        close(fd);
    }
    return -1;
}

static void transmit(struct conn *c);

/* --reconnect: closes the slot's connection (if any) and opens the next one, with a fresh stream offset.
 * A failed socket or connect counts one error; the slot tries again on the next loop turn. */
static void reopen(struct conn *c) {
    if (c->fd >= 0)
        close(c->fd); /* closing removes it from the epoll set */
    memset(c, 0, sizeof *c);
    c->start = (uint32_t)(splitmix64(&rng) % PATTERN_LEN);
    bool in_progress = false;
    connects++;
    c->fd = connect_start(target, &in_progress);
    if (c->fd < 0) {
        errors++;
        c->dead = true; /* revived by the main loop */
        return;
    }
    c->connecting = in_progress;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        perror("echo_load: epoll_ctl");
        exit(2);
    }
    if (!c->connecting)
        transmit(c);
}

static void kill_conn(struct conn *c) {
    errors++;
    c->dead = true;
    close(c->fd);
    c->fd = -1;
}

/* Checks n received bytes against the stream and completes messages. */
static void consume(struct conn *c, const char *p, size_t n) {
    if (c->recvd + n > c->sent) {
        kill_conn(c); /* the server sent bytes we never sent */
        return;
    }
    const uint64_t size = (uint64_t)opt.size;
    while (n > 0) {
        uint64_t left_in_msg = size - c->recvd % size;
        size_t k = n < left_in_msg ? n : (size_t)left_in_msg;
        size_t off = (size_t)((c->start + c->recvd) % PATTERN_LEN);
        if (memcmp(p, pattern + off, k) != 0)
            c->msg_bad = true;
        c->recvd += k;
        p += k;
        n -= k;
        if (c->recvd % size == 0) {
            messages++;
            if (c->msg_bad)
                errors++;
            c->msg_bad = false;
            if (opt.reconnect) {
                c->exchanged = true;
                return; /* nothing more may come: a byte after the echo would be one we never sent */
            }
        }
    }
}

static void receive(struct conn *c, uint32_t events) {
    /* After the peer's FIN no further edge will come, so then we must read until EOF. */
    bool may_stop_short = !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
    for (;;) {
        ssize_t n = read(c->fd, recv_buf, sizeof recv_buf);
        if (n > 0) {
            consume(c, recv_buf, (size_t)n);
            if (c->dead || c->exchanged)
                return;
            /* A short read drained the socket and a later arrival raises a new edge, so
             * the read that would only return EAGAIN is skipped. */
            if ((size_t)n < sizeof recv_buf && may_stop_short)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        kill_conn(c); /* EOF or reset: the server dropped a connection it should echo on */
        return;
    }
}

static void transmit(struct conn *c) {
    const uint64_t size = (uint64_t)opt.size;
    uint64_t limit = (c->recvd / size + (uint64_t)opt.depth) * size;
    while (c->sent < limit) {
        uint64_t want = limit - c->sent;
        size_t n = want < PATTERN_LEN ? (size_t)want : PATTERN_LEN;
        size_t off = (size_t)((c->start + c->sent) % PATTERN_LEN);
        ssize_t w = write(c->fd, pattern + off, n);
        if (w > 0) {
            c->sent += (uint64_t)w;
            if ((size_t)w < n) {
                /* A short write means the send buffer filled up; EPOLLOUT follows when it drains. */
                c->send_blocked = true;
                return;
            }
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            c->send_blocked = true;
            return;
        }
        kill_conn(c);
        return;
    }
}

/* User and system CPU seconds this process has used so far. */
static void cpu_times(double *user, double *sys) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
    *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void marker(const char *name) {
    if (!opt.markers)
        return;
    printf("%s\n", name);
    fflush(stdout);
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    rng = opt.seed;
    make_pattern(&rng);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    int gai = getaddrinfo(opt.host, opt.port, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "echo_load: %s:%s: %s\n", opt.host, opt.port, gai_strerror(gai));
        return 2;
    }
    target = ai;
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)opt.connections, sizeof *conns);
    if (ep < 0 || !conns) {
        perror("echo_load: setup");
        return 2;
    }
    for (long i = 0; i < opt.connections && !opt.reconnect; i++) {
        struct conn *c = &conns[i];
        c->fd = connect_one(ai);
        if (c->fd < 0) {
            fprintf(stderr, "echo_load: connect %s:%s (connection %ld): %s\n", opt.host, opt.port, i,
                    strerror(errno));
            free(conns);
            freeaddrinfo(ai);
            return 2;
        }
        connects++;
        c->start = (uint32_t)(splitmix64(&rng) % PATTERN_LEN);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            perror("echo_load: epoll_ctl");
            return 2;
        }
    }
    if (opt.reconnect) {
        /* The first attempt must work, as in the normal mode: a server that is not there is a setup failure. */
        int probe = connect_one(ai);
        if (probe < 0) {
            fprintf(stderr, "echo_load: connect %s:%s: %s\n", opt.host, opt.port, strerror(errno));
            free(conns);
            freeaddrinfo(ai);
            return 2;
        }
        close(probe);
        for (long i = 0; i < opt.connections; i++) {
            conns[i].fd = -1;
            reopen(&conns[i]);
        }
    }

    double t_begin = now_sec();
    double t_start = t_begin + opt.warmup, t_end = t_start + opt.duration;
    bool measuring = false;
    uint64_t messages_at_start = 0, messages_at_end = 0;
    double user_at_start = 0, sys_at_start = 0, user_at_end = 0, sys_at_end = 0;
    for (long i = 0; i < opt.connections && !opt.reconnect; i++)
        transmit(&conns[i]);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        double t = now_sec();
        if (!measuring && t >= t_start) {
            messages_at_start = messages;
            cpu_times(&user_at_start, &sys_at_start);
            t_start = t;
            t_end = t + opt.duration;
            measuring = true;
            marker("window_start");
        }
        if (measuring && t >= t_end) {
            messages_at_end = messages;
            cpu_times(&user_at_end, &sys_at_end);
            t_end = t;
            marker("window_end");
            break;
        }
        double next = measuring ? t_end : t_start;
        int timeout_ms = (int)((next - t) * 1000.0) + 1;
        int n = epoll_wait(ep, events, MAX_EVENTS, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("echo_load: epoll_wait");
            return 2;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            uint32_t ev = events[i].events;
            if (c->dead)
                continue;
            if (c->connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                    continue;
                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
                    kill_conn(c); /* refused or reset during the handshake: one error, revived below */
                    continue;
                }
                c->connecting = false;
            }
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                receive(c, ev);
            if (c->dead)
                continue;
            if (c->exchanged) {
                reopen(c);
                continue;
            }
            if (ev & EPOLLOUT)
                c->send_blocked = false;
            if (!c->send_blocked)
                transmit(c);
        }
        /* --reconnect: a slot whose connection failed is a closed loop's free slot: start the next one. */
        for (long i = 0; i < opt.connections && opt.reconnect; i++)
            if (conns[i].dead)
                reopen(&conns[i]);
    }
    freeaddrinfo(ai);

    for (long i = 0; i < opt.connections; i++)
        if (!conns[i].dead && conns[i].fd >= 0)
            close(conns[i].fd);
    free(conns);
    free(pattern);
    close(ep);

    double seconds = t_end - t_start;
    uint64_t measured = messages_at_end - messages_at_start;
    double rate = (double)measured / seconds;
    double user_s = user_at_end - user_at_start, sys_s = sys_at_end - sys_at_start;
    double busy = seconds > 0 ? (user_s + sys_s) / seconds : 0; /* one thread: the share of its core */
    if (opt.json) {
        printf("{\"messages_per_sec\": %.1f, \"messages\": %llu, \"errors\": %llu, \"seconds\": %.6f, "
               "\"messages_total\": %llu, \"connections\": %ld, \"depth\": %ld, \"size\": %ld, "
               "\"reconnect\": %s, \"connects\": %llu, "
               "\"client_cpu\": {\"user_s\": %.3f, \"sys_s\": %.3f, \"wall_s\": %.6f, \"per_thread\": [%.3f], "
               "\"saturated\": %s}}\n",
               rate, (unsigned long long)measured, (unsigned long long)errors, seconds,
               (unsigned long long)messages, opt.connections, opt.depth, opt.size,
               opt.reconnect ? "true" : "false", (unsigned long long)connects, user_s, sys_s, seconds, busy,
               busy > 0.9 ? "true" : "false");
    } else {
        printf("connections %ld  depth %ld  size %ld B%s\n", opt.connections, opt.depth, opt.size,
               opt.reconnect ? "  (a new connection per message)" : "");
        printf("messages/s  %.1f  (%llu messages in %.3f s after %.1f s warmup)\n", rate,
               (unsigned long long)measured, seconds, opt.warmup);
        printf("total       %llu messages\n", (unsigned long long)messages);
        printf("errors      %llu\n", (unsigned long long)errors);
        printf("client CPU  %.0f%% of its core (user %.2f s, system %.2f s)%s\n", 100 * busy, user_s, sys_s,
               busy > 0.9 ? ": saturated, the client may set the pace" : "");
    }
    return errors ? 1 : 0;
}

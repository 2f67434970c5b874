/*
 * ssefault.c: the client side of mod_sse's fault, churn and hostile-input
 * runs (test/fault/run.sh).  One process, one epoll loop for the streams,
 * plus publisher threads (blocking HTTP, 10 s deadline per request); every
 * phase has a deadline, so it always ends by itself.  Results go to stdout
 * as "key=value" lines for run.sh.  Build: gcc -O2 -pthread ssefault.c -lssl -lcrypto
 *
 *   ssefault churn    -p PORT -n CYCLES -c CONCURRENT [-T SECS] [--mix clean=35,rst=35,vanish=20,early=10]
 *                     [--chans K] [--pub-ms MS] [--pub-size BYTES]
 *       CYCLES stream connections, at most CONCURRENT at once, each ended
 *       one of four ways: "clean" (read the preamble and a few events,
 *       close), "rst" (the same, then SO_LINGER 0: the close is a RST),
 *       "vanish" (a tiny receive buffer, stops reading while events are
 *       published, so the server's writes stall and queue; then closes with
 *       unread data, or is dropped by the server), "early" (sends the
 *       request and closes before the answer arrives).  A publisher thread
 *       posts PUB_SIZE bytes to every churn channel every PUB_MS ms; the
 *       vanishing clients are also on channel "vanish", which a second
 *       thread feeds with --vanish-pub SIZE/MS (32768/10) so that their
 *       server-side buffers really fill.
 *
 *   ssefault hold     -p PORT -n STREAMS [--path P] [--stop PID] [--watch PID,PID..]
 *       Opens STREAMS streams and counts the answers by status (so a
 *       capacity check sees 200s and 503s).  With --stop: sends SIGTERM to
 *       PID and measures how long until every stream saw its end and every
 *       watched process is gone.
 *
 *   ssefault hostile  -p PORT -n NORMAL --attack N [--attack-rate R] [-c CONCURRENT]
 *                     [--path P] [--events K] [--pub-ms MS]
 *       NORMAL streams on P (default /capped?channel=hostile), each from
 *       an address of its own (127.1.x.y), then K events published PUB_MS
 *       ms apart (the baseline); then one address (127.2.0.1) tries N
 *       streams on P, CONCURRENT at a time and at most R a second (0, the
 *       default: as fast as they are answered), keeping those admitted and
 *       closing (RST) the refused ones, while events go on being published
 *       (at least K).  Each event's data carries its publish time: the
 *       delivery latency to the normal streams (p50, p99, max) before and
 *       during the attack, the events each missed, and the attacker's
 *       answers by status.
 *
 *   ssefault graceful -p PORT -n STREAMS --ppid PID [--pub-ms MS] [--run SECS]
 *       STREAMS streams on one channel; the publisher posts "seq N" events
 *       (N only advances when a publish was answered 200).  After a warm-up
 *       PID gets SIGUSR1; every stream the restart closes reconnects with
 *       Last-Event-ID, as a browser does.  At the end every stream must
 *       hold every seq from its first one to the last, once: lost and
 *       duplicated events are counted.
 *
 *   TLS modes: -p is the TLS port, --pub-port the plain one (publishes,
 *   GET /pub, /server-status).  OpenSSL, no certificate check, a full
 *   handshake every time (no session reuse), ALPN http/1.1.
 *
 *   ssefault tls-churn  -p TLSPORT --pub-port PORT -n CYCLES -c CONCURRENT
 *                       [--chans K] [--pub-ms MS] [--pub-size BYTES] [--hold-ms MS]
 *       CYCLES TLS stream connections, at most CONCURRENT at once: each
 *       reads its head and ": ok", stays 0-HOLD_MS ms (reading; a quarter
 *       not at all), and ends: half with a close_notify, a quarter with a
 *       plain close (FIN), a quarter with SO_LINGER 0 (RST).  One in ten
 *       ends as soon as its request is written, before the answer.  A publisher thread posts to every
 *       churn channel every PUB_MS ms.
 *
 *   ssefault tls-fanout -p TLSPORT --pub-port PORT -n STREAMS [--events K]
 *                       [--event-size BYTES] [--pub-ms MS] [--path P]
 *       STREAMS TLS streams on channel tfan (/fanstream: no keepalive), then
 *       K events published one after another; every stream must receive
 *       ": ok" and then exactly "id: ID\ndata: DATA\n\n" for each, byte
 *       for byte (ids from the publish answers); BusyWorkers is sampled every
 *       20 ms while the streams open and while the events go out.
 *
 *   ssefault tls-hold   -p TLSPORT --pub-port PORT -n STREAMS
 *                       [--stop PID | --graceful PID] [--watch PID,PID..]
 *       STREAMS TLS streams; --stop: SIGTERM to PID, and how long until every
 *       stream ended and every watched process is gone; --graceful: SIGUSR1
 *       to PID, and how long until every stream ended, the watched (old)
 *       children are gone and a new TLS stream is served.
 *
 *   ssefault tls-slow   -p TLSPORT --pub-port PORT -n STREAMS [--rcvbuf BYTES]
 *                       [--vanish-pub SIZE/MS] [--run SECS]
 *       STREAMS TLS streams (a small receive buffer) that read ": ok" and
 *       then nothing, on channel tslow (/slowstream) fed SIZE bytes every MS
 *       ms; samples BusyWorkers from /server-status?auto every 0.1 s and
 *       says when the publishes counted no stream left.
 *
 *   ssefault relay-probe SOCKET [--as-uid UID --keep-dac]
 *       Talks to the relay's unix socket directly: connect, send a LIST and
 *       a PUBLISH frame (channel "probe"), wait for an answer.  --as-uid
 *       drops to UID first; --keep-dac keeps CAP_DAC_OVERRIDE so that the
 *       socket file's mode does not stop the connect and only the relay's
 *       own peer check (SO_PEERCRED) is left to refuse.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* --- options and small helpers -------------------------------------------- */

static int o_port;
static const char *o_host = "127.0.0.1";
static int o_nsrc = 16;          /* source addresses 127.0.0.1 .. 127.0.0.N */
static long o_n = 1000;
static int o_conc = 200;
static double o_time = 300;
static int o_mix[4] = { 35, 35, 20, 10 };
static int o_chans = 8;
static int o_pub_ms = 20;
static int o_pub_size = 2048;
static const char *o_path;
static pid_t o_stop, o_ppid;
static pid_t o_watch[64];
static int o_nwatch;
static double o_run = 12;
static int o_hold_ms = 30;
static int o_vanish_min = 100, o_vanish_max = 2000;
static int o_vanish_size = 32768, o_vanish_every = 10;
/* TLS modes: -p is the TLS port; publishes and admin requests go to the
 * plain HTTP port (--pub-port) */
static int o_pub_port;
static int o_events = 20, o_ev_size = 200;
static int o_rcvbuf;
static pid_t o_graceful;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "ssefault: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static uint64_t rng = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (unsigned)(rng % n) : 0;
}

/* A gone process: no /proc entry, or a zombie nobody reaped yet. */
static int proc_gone(pid_t pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    int gone = 1;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r"))) {
        return 1;
    }
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ') {
        gone = p[2] == 'Z' || p[2] == 'X';
    }
    fclose(f);
    return gone;
}

/* A TCP socket to the server, non-blocking, connecting; the source address
 * rotates over 127.0.0.x so that 100,000 short connections do not run out
 * of ephemeral ports (TIME_WAIT holds a port for 60 s). */
static unsigned src_next;

/* A TCP connection to port from the source address src (host order),
 * started: connect() may be in progress.  -1 on failure (errno). */
static int tcp_start_from(int port, uint32_t src_addr, int rcvbuf, int blocking)
{
    struct sockaddr_in sa, src;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC
                    | (blocking ? 0 : SOCK_NONBLOCK), 0);

    if (fd < 0) {
        return -1;
    }
    if (rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(src_addr);
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
        close(fd);
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, o_host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0
        && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int tcp_start_port(int port, int rcvbuf, int blocking)
{
    return tcp_start_from(port, 0x7f000001u + (src_next++ % (unsigned)o_nsrc),
                          rcvbuf, blocking);
}

static int tcp_start(int rcvbuf, int blocking)
{
    return tcp_start_port(o_port, rcvbuf, blocking);
}

/* --- one blocking HTTP request with a deadline (publisher, admin) --------- */

typedef struct {
    int status;                 /* 0: no answer */
    int err;                    /* 0, or 1 connect failed, 2 timed out */
    double secs;
    char retry_after[16];
    char body[4096];
} http_res_t;

static int wait_fd(int fd, short ev, double deadline)
{
    struct pollfd p = { fd, ev, 0 };
    double left = deadline - now();

    if (left <= 0) {
        return 0;
    }
    return poll(&p, 1, (int)(left * 1000) + 1) > 0;
}

static void http_req(const char *method, const char *path, const char *ctype,
                     const char *body, size_t blen, double timeout,
                     http_res_t *res)
{
    char head[1024], buf[65536];
    size_t hl, off = 0, got = 0;
    double t0 = now(), deadline = t0 + timeout;
    int fd = tcp_start_port(o_pub_port ? o_pub_port : o_port, 0, 0), err = 0;
    char *p;

    memset(res, 0, sizeof(*res));
    if (fd < 0 || !wait_fd(fd, POLLOUT, deadline)) {
        res->err = fd < 0 ? 1 : 2;
        goto done;
    }
    hl = (size_t)snprintf(head, sizeof(head),
                          "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                          "%s%s%sContent-Length: %zu\r\n\r\n",
                          method, path, ctype ? "Content-Type: " : "",
                          ctype ? ctype : "", ctype ? "\r\n" : "", blen);
    while (off < hl + blen) {
        const char *src = off < hl ? head + off : body + (off - hl);
        size_t n = off < hl ? hl - off : blen - (off - hl);
        ssize_t w = send(fd, src, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            if (!wait_fd(fd, POLLOUT, deadline)) {
                err = 2;
                break;
            }
            continue;
        }
        if (w < 0) {
            err = 1;
            break;
        }
        off += (size_t)w;
    }
    while (!err) {
        ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (r < 0 && errno == EAGAIN) {
            if (!wait_fd(fd, POLLIN, deadline)) {
                err = 2;
            }
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
        if (got == sizeof(buf) - 1) {
            break;
        }
    }
    buf[got] = '\0';
    res->err = err && !got ? err : (err == 2 ? 2 : 0);
    if (sscanf(buf, "HTTP/1.%*d %d", &res->status) != 1) {
        res->status = 0;
    }
    if ((p = strcasestr(buf, "\r\nRetry-After:"))) {
        sscanf(p + 14, " %15[0-9]", res->retry_after);
    }
    if ((p = strstr(buf, "\r\n\r\n"))) {
        snprintf(res->body, sizeof(res->body), "%s", p + 4);
    }
done:
    if (fd >= 0) {
        close(fd);
    }
    res->secs = now() - t0;
}

/* The publish path for the o_chans channels PREFIX0, PREFIX1, ... */
static void pub_path(char *buf, size_t size, const char *prefix)
{
    int k, off = snprintf(buf, size, "/pub?channel=");

    for (k = 0; k < o_chans && off < (int)size; k++) {
        off += snprintf(buf + off, size - (size_t)off, "%s%s%d",
                        k ? "," : "", prefix, k);
    }
}

/* The status codes seen, one line each ("status_200=N"). */
static void print_hist(const long *hist)
{
    int i;

    for (i = 0; i < 600; i++) {
        if (hist[i]) {
            printf("status_%d=%ld\n", i, hist[i]);
        }
    }
}

/* What the publish location's GET lists (its first line). */
static void print_admin_list(void)
{
    http_res_t res;
    char *nl;

    http_req("GET", "/pub", NULL, "", 0, 10, &res);
    if ((nl = strchr(res.body, '\n'))) {
        *nl = '\0';
    }
    printf("admin_list=%s\n", res.body);
}

/* --- publisher threads ------------------------------------------------------ */

typedef struct {
    const char *name;
    pthread_t thread;
    volatile int stop;
    char path[2048];
    int size, every_ms;
    int seq_mode;               /* data is "seq N"; N advances on 200 only */
    volatile long seq;          /* last seq answered 200 */
    long n200, n503, nother, ntimeout, nconnfail, n503_no_retry_after;
    volatile long last_subs;    /* "subscribers" of the last 200 */
    double max_secs;
    double sum_secs;
} pub_t;

static pub_t P = { .name = "pub" }, PV = { .name = "pub_vanish" };

static void *publisher(void *arg)
{
    pub_t *pb = arg;
    char *data = malloc((size_t)pb->size + 64);
    http_res_t res;
    long i;

    for (i = 0; i < pb->size; i++) {
        data[i] = (char)('a' + i % 26);
    }
    while (!pb->stop) {
        double t0 = now();
        size_t len = (size_t)pb->size;
        if (pb->seq_mode) {
            len = (size_t)sprintf(data, "seq %ld", pb->seq + 1);
        }
        http_req("POST", pb->path, "text/plain", data, len, 10, &res);
        if (res.status == 200) {
            char *sp = strstr(res.body, "\"subscribers\":");
            pb->n200++;
            if (sp) {
                pb->last_subs = atol(sp + 14);
            }
            if (pb->seq_mode) {
                pb->seq++;
            }
        }
        else if (res.status == 503) {
            pb->n503++;
            if (!res.retry_after[0]) {
                pb->n503_no_retry_after++;
            }
        }
        else if (res.err == 2) {
            pb->ntimeout++;
        }
        else if (res.err == 1) {
            pb->nconnfail++;
        }
        else {
            pb->nother++;
        }
        pb->sum_secs += res.secs;
        if (res.secs > pb->max_secs) {
            pb->max_secs = res.secs;
        }
        while (!pb->stop && now() - t0 < pb->every_ms / 1000.0) {
            usleep(1000);
        }
    }
    free(data);
    return NULL;
}

static void publisher_start(pub_t *pb, const char *path, int size,
                            int every_ms, int seq_mode)
{
    snprintf(pb->path, sizeof(pb->path), "%s", path);
    pb->size = size;
    pb->every_ms = every_ms;
    pb->seq_mode = seq_mode;
    if (pthread_create(&pb->thread, NULL, publisher, pb)) {
        die("pthread_create failed");
    }
}

static void publisher_stop(pub_t *pb)
{
    pb->stop = 1;
    pthread_join(pb->thread, NULL);
}

static void publisher_report(pub_t *pb)
{
    long n = pb->n200 + pb->n503 + pb->nother + pb->ntimeout + pb->nconnfail;
    const char *k = pb->name;

    printf("%s_total=%ld\n%s_200=%ld\n%s_503=%ld\n%s_503_no_retry_after=%ld\n"
           "%s_other=%ld\n%s_timeout=%ld\n%s_connfail=%ld\n"
           "%s_max_secs=%.3f\n%s_avg_secs=%.4f\n",
           k, n, k, pb->n200, k, pb->n503, k, pb->n503_no_retry_after, k, pb->nother,
           k, pb->ntimeout, k, pb->nconnfail, k, pb->max_secs,
           k, n ? pb->sum_secs / n : 0.0);
}

/* --- stream connections ----------------------------------------------------- */

enum { M_CLEAN, M_RST, M_VANISH, M_EARLY };
static const char *mode_name[] = { "clean", "rst", "vanish", "early" };
enum { S_CONNECT, S_HEAD, S_OPEN, S_STALL, S_DONE };

typedef struct conn {
    int fd;
    int mode;
    int state;
    int status;
    int idx;
    double t_start, t_until;
    char *buf;
    size_t len, cap;
    /* graceful: what this stream has seen */
    char last_id[64];
    long first_seq, last_seq, gaps, dups, events;
    int history_lost, reconnects, ended;
    double t_reconnect;
    char line_id[64];
    long line_seq;
    int line_has_data;
} conn_t;

static int ep;

static void conn_watch(conn_t *c, uint32_t events, int add)
{
    struct epoll_event ev;

    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev);
}

static int conn_open(conn_t *c, const char *path, const char *last_id)
{
    c->fd = tcp_start(c->mode == M_VANISH ? 2048 : 0, 0);
    if (c->fd < 0) {
        return -1;
    }
    c->state = S_CONNECT;
    c->status = 0;
    c->len = 0;
    c->t_start = now();
    c->line_id[0] = '\0';
    c->line_has_data = 0;
    if (last_id && *last_id) {
        /* kept in buf until the connect completes */
        c->len = (size_t)snprintf(c->buf, c->cap,
                    "GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n"
                    "Last-Event-ID: %s\r\n\r\n", path, last_id);
    }
    else {
        c->len = (size_t)snprintf(c->buf, c->cap,
                    "GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
                    path);
    }
    conn_watch(c, EPOLLOUT, 1);
    return 0;
}

static void conn_close(conn_t *c, int rst)
{
    if (c->fd >= 0) {
        if (rst) {
            struct linger l = { 1, 0 };
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        close(c->fd);     /* also leaves the epoll set */
    }
    c->fd = -1;
    c->state = S_DONE;
}

/* Parse complete lines of an open stream (graceful mode's bookkeeping). */
static void stream_lines(conn_t *c)
{
    char *p = c->buf, *end = c->buf + c->len, *nl;

    while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
        *nl = '\0';
        if (p == nl) {
            if (c->line_has_data) {
                long s = c->line_seq;
                c->events++;
                if (c->first_seq < 0) {
                    c->first_seq = s;
                }
                else if (s <= c->last_seq) {
                    c->dups++;
                }
                else if (s > c->last_seq + 1) {
                    c->gaps += s - c->last_seq - 1;
                }
                if (s > c->last_seq) {
                    c->last_seq = s;
                }
                if (c->line_id[0]) {
                    memcpy(c->last_id, c->line_id, sizeof(c->last_id));
                }
            }
            c->line_has_data = 0;
            c->line_id[0] = '\0';
        }
        else if (!strncmp(p, "id: ", 4)) {
            snprintf(c->line_id, sizeof(c->line_id), "%s", p + 4);
        }
        else if (!strncmp(p, "data: seq ", 10)) {
            c->line_seq = atol(p + 10);
            c->line_has_data = 1;
        }
        else if (!strcmp(p, ": history lost")) {
            c->history_lost++;
        }
        p = nl + 1;
    }
    memmove(c->buf, p, (size_t)(end - p));
    c->len = (size_t)(end - p);
}

/* Read what is there.  Returns 1 while open, 0 at EOF or error. */
static int conn_read(conn_t *c, int parse)
{
    for (;;) {
        ssize_t n;
        if (c->cap - c->len < 4096) {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
        }
        n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return 1;
        }
        if (n <= 0) {
            return 0;
        }
        if (c->state == S_HEAD) {
            char *e;
            c->len += (size_t)n;
            c->buf[c->len] = '\0';
            if (!(e = strstr(c->buf, "\r\n\r\n"))) {
                continue;
            }
            if (sscanf(c->buf, "HTTP/1.%*d %d", &c->status) != 1) {
                c->status = -1;
            }
            if (c->status != 200) {
                return 0;
            }
            e += 4;
            c->len -= (size_t)(e - c->buf);
            memmove(c->buf, e, c->len);
            c->state = S_OPEN;
            c->t_until = 0;
        }
        else if (parse) {
            c->len += (size_t)n;
        }
        else {
            /* churn: only whether the preamble came matters */
            if (c->len < 6) {
                c->len += (size_t)n;
            }
            continue;
        }
        if (parse) {
            stream_lines(c);
        }
    }
}

/* The preamble ": ok\n\n" starts every stream body. */
static int preamble_seen(conn_t *c, int parse)
{
    return parse ? c->events >= 0 && c->state == S_OPEN
                 : c->state == S_OPEN && c->len >= 6 && !memcmp(c->buf, ": ok\n\n", 6);
}

/* --- churn ------------------------------------------------------------------ */

static struct {
    long started, done[4], errors, err_connect, err_status, err_timeout, err_eof;
    long status_hist[600];
    long vanish_unread, vanish_dropped;
} K;

static int pick_mode(long i)
{
    int total = o_mix[0] + o_mix[1] + o_mix[2] + o_mix[3];
    int r = (int)((i * 7919) % total), m;

    for (m = 0; m < 4; m++) {
        if (r < o_mix[m]) {
            return m;
        }
        r -= o_mix[m];
    }
    return M_CLEAN;
}

static void churn_finish(conn_t *c, int ok, int kind)
{
    if (ok) {
        K.done[c->mode]++;
    }
    else {
        K.errors++;
        if (kind == 1) K.err_connect++;
        if (kind == 2) K.err_status++;
        if (kind == 3) K.err_timeout++;
        if (kind == 4) K.err_eof++;
        if (c->status > 0 && c->status < 600) K.status_hist[c->status]++;
    }
    conn_close(c, c->mode == M_RST);
}

static int churn_start(conn_t *c, long i)
{
    char path[128];

    c->mode = pick_mode(i);
    c->idx = (int)i;
    /* vanishing clients are also on a channel of big, frequent events,
     * so that their server-side buffers really fill up */
    snprintf(path, sizeof(path), "/stream?channel=churn%ld%s", i % o_chans,
             c->mode == M_VANISH ? ",vanish" : "");
    K.started++;
    if (conn_open(c, path, NULL) < 0) {
        K.errors++;
        K.err_connect++;
        c->state = S_DONE;
        return -1;
    }
    return 0;
}

/* Advance one connection after an event (or a timer); never blocks. */
static void churn_step(conn_t *c, uint32_t ev)
{
    double t = now();

    if (c->state == S_CONNECT) {
        int err = 0;
        socklen_t l = sizeof(err);
        if (!(ev & EPOLLOUT)) {
            return;
        }
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err || send(c->fd, c->buf, c->len, MSG_NOSIGNAL) != (ssize_t)c->len) {
            churn_finish(c, 0, 1);
            return;
        }
        c->len = 0;
        if (c->mode == M_EARLY) {
            /* gone before the answer: the worker writes into a closed
             * socket, or parks a stream whose client already left */
            churn_finish(c, 1, 0);
            return;
        }
        c->state = S_HEAD;
        conn_watch(c, EPOLLIN | EPOLLRDHUP, 0);
        return;
    }
    if (c->state == S_HEAD || (c->state == S_OPEN && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))) {
        int open = conn_read(c, 0);
        if (c->state == S_HEAD) {
            if (!open) {
                churn_finish(c, 0, c->status && c->status != 200 ? 2 : 4);
            }
            return;
        }
        if (!open && !preamble_seen(c, 0)) {
            churn_finish(c, 0, 4);
            return;
        }
        if (!c->t_until && preamble_seen(c, 0)) {
            if (c->mode == M_VANISH) {
                c->state = S_STALL;
                c->t_until = t + (o_vanish_min + rnd((unsigned)(o_vanish_max - o_vanish_min + 1))) / 1000.0;
                conn_watch(c, EPOLLRDHUP, 0);
                return;
            }
            c->t_until = t + rnd((unsigned)o_hold_ms + 1) / 1000.0;
        }
        if (!open) {
            /* the server ended an open stream during the hold */
            churn_finish(c, 0, 4);
        }
        return;
    }
    if (c->state == S_STALL && (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        /* the server gave up on this slow reader (SSEMaxBacklog) */
        K.vanish_dropped++;
        churn_finish(c, 1, 0);
    }
}

static void churn_timer(conn_t *c)
{
    double t = now();

    if (c->state == S_DONE) {
        return;
    }
    if ((c->state == S_CONNECT || c->state == S_HEAD
         || (c->state == S_OPEN && !c->t_until)) && t - c->t_start > 15) {
        churn_finish(c, 0, 3);
        return;
    }
    if (c->state == S_OPEN && c->t_until && t >= c->t_until) {
        churn_finish(c, 1, 0);
        return;
    }
    if (c->state == S_STALL && t >= c->t_until) {
        int unread = 0;
        ioctl(c->fd, FIONREAD, &unread);
        if (unread > 0) {
            K.vanish_unread++;
        }
        churn_finish(c, 1, 0);
    }
}

static int cmd_churn(void)
{
    conn_t *cs = calloc((size_t)o_conc, sizeof(conn_t));
    struct epoll_event evs[512];
    char pubpath[2048];
    double t0 = now(), last_report = t0;
    long next = 0, active = 0, i;
    int k, n;

    pub_path(pubpath, sizeof(pubpath), "churn");
    ep = epoll_create1(EPOLL_CLOEXEC);
    for (i = 0; i < o_conc; i++) {
        cs[i].cap = 8192;
        cs[i].buf = malloc(cs[i].cap);
        cs[i].state = S_DONE;
        cs[i].fd = -1;
    }
    if (o_pub_ms > 0) {
        publisher_start(&P, pubpath, o_pub_size, o_pub_ms, 0);
        if (o_mix[M_VANISH]) {
            publisher_start(&PV, "/pub?channel=vanish", o_vanish_size, o_vanish_every, 0);
        }
    }
    for (;;) {
        double t = now();
        int stopping = next >= o_n || t - t0 > o_time;
        active = 0;
        for (i = 0; i < o_conc; i++) {
            conn_t *c = &cs[i];
            if (c->state != S_DONE) {
                churn_timer(c);
            }
            while (c->state == S_DONE && !stopping) {
                churn_start(c, next++);
                stopping = next >= o_n || t - t0 > o_time;
            }
            if (c->state != S_DONE) {
                active++;
            }
        }
        if (stopping && !active) {
            break;
        }
        if (t - last_report >= 5) {
            long d = K.done[0] + K.done[1] + K.done[2] + K.done[3];
            fprintf(stderr, "  churn: %ld/%ld cycles, %ld errors, %.0f s\n",
                    d, o_n, K.errors, t - t0);
            last_report = t;
        }
        n = epoll_wait(ep, evs, 512, 5);
        for (k = 0; k < n; k++) {
            churn_step(evs[k].data.ptr, evs[k].events);
        }
    }
    if (o_pub_ms > 0) {
        publisher_stop(&P);
        if (o_mix[M_VANISH]) {
            publisher_stop(&PV);
        }
    }
    printf("cycles=%ld\nsecs=%.1f\nclean=%ld\nrst=%ld\nvanish=%ld\nearly=%ld\n"
           "vanish_closed_with_unread=%ld\nvanish_dropped_by_server=%ld\n"
           "errors=%ld\nerr_connect=%ld\nerr_status=%ld\nerr_timeout=%ld\nerr_eof=%ld\n",
           K.started, now() - t0, K.done[0], K.done[1], K.done[2], K.done[3],
           K.vanish_unread, K.vanish_dropped, K.errors, K.err_connect,
           K.err_status, K.err_timeout, K.err_eof);
    for (i = 0; i < 600; i++) {
        if (K.status_hist[i]) {
            printf("status_%ld=%ld\n", i, K.status_hist[i]);
        }
    }
    if (o_pub_ms > 0) {
        publisher_report(&P);
        if (o_mix[M_VANISH]) {
            publisher_report(&PV);
        }
    }
    return K.errors ? 1 : 0;
}

/* --- opening many streams (hold, graceful) ------------------------------- */

static conn_t *streams;
static long nstreams;

/* Open every stream in streams[] (at most o_conc connecting at once) and
 * wait for each answer.  Returns the number open (status 200, preamble). */
static long open_all(const char *path, int parse, double timeout, long *hist)
{
    struct epoll_event evs[512];
    double t0 = now();
    long next = 0, pending = 0, open = 0, i;
    int k, n;

    while (next < nstreams || pending) {
        while (next < nstreams && pending < o_conc) {
            conn_t *c = &streams[next++];
            c->mode = M_CLEAN;
            if (conn_open(c, path, NULL) < 0) {
                c->state = S_DONE;
                hist[0]++;
                continue;
            }
            pending++;
        }
        if (now() - t0 > timeout) {
            break;
        }
        n = epoll_wait(ep, evs, 512, 100);
        for (k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if (c->state == S_CONNECT) {
                int err = 0;
                socklen_t l = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err || send(c->fd, c->buf, c->len, MSG_NOSIGNAL) != (ssize_t)c->len) {
                    conn_close(c, 0);
                    hist[0]++;
                    pending--;
                    continue;
                }
                c->len = 0;
                c->state = S_HEAD;
                conn_watch(c, EPOLLIN | EPOLLRDHUP, 0);
                continue;
            }
            if (c->state == S_HEAD) {
                int alive = conn_read(c, parse);
                if (c->state == S_OPEN || !alive) {
                    pending--;
                    if (c->state == S_OPEN && alive) {
                        if (c->status > 0 && c->status < 600) hist[c->status]++;
                        open++;
                    }
                    else {
                        hist[c->status > 0 && c->status < 600 ? c->status : 0]++;
                        conn_close(c, 0);
                    }
                }
            }
            else if (c->state == S_OPEN) {
                if (!conn_read(c, parse)) {
                    c->ended = 1;
                }
            }
        }
    }
    for (i = 0; i < nstreams; i++) {
        if (streams[i].state == S_CONNECT || streams[i].state == S_HEAD) {
            conn_close(&streams[i], 0);
            hist[0]++;
        }
    }
    return open;
}

static void streams_alloc(long n)
{
    long i;

    nstreams = n;
    streams = calloc((size_t)n, sizeof(conn_t));
    for (i = 0; i < n; i++) {
        streams[i].cap = 8192;
        streams[i].buf = malloc(streams[i].cap);
        streams[i].fd = -1;
        streams[i].first_seq = -1;
        streams[i].last_seq = -1;
        streams[i].idx = (int)i;
    }
}

/* --- hostile: one address against everyone else ------------------------------ */

/* Normal clients on addresses of their own (127.1.x.y), one attacker
 * (127.2.0.1); events "P K T" (phase, number, publish time in us). */
typedef struct {
    int fd;
    int attacker;
    int state;                  /* S_CONNECT, S_HEAD, S_OPEN, S_DONE */
    int status;
    size_t len;
    char buf[8192];
    long got[2];                /* events received, per phase */
} hconn_t;

#define H_LAT_MAX 2000000
static double *h_lat[2];
static long h_nlat[2];
static volatile int h_phase = -1;   /* the publisher's phase, -1: idle */
static volatile long h_sent[2];     /* events answered 200, per phase */
static int h_pub_busy;              /* a publish may be in flight */
static volatile int h_pub_stop;
static long o_attack = 20000;
static double o_attack_rate;     /* attempts a second, 0: as fast as they go */

static int h_connect(uint32_t src_addr)
{
    return tcp_start_from(o_port, src_addr, 0, 0);
}

static void *h_publisher(void *arg)
{
    char path[256], data[64];
    http_res_t res;

    (void)arg;
    snprintf(path, sizeof(path), "/pub?channel=hostile");
    while (!h_pub_stop) {
        int ph;
        double t0 = now();
        /* busy before the phase is read: h_all_got waits for a publish
         * that began in a phase to be counted (and read) */
        __atomic_store_n(&h_pub_busy, 1, __ATOMIC_SEQ_CST);
        ph = __atomic_load_n(&h_phase, __ATOMIC_SEQ_CST);
        if (ph >= 0) {
            size_t len = (size_t)snprintf(data, sizeof(data), "%d %ld %lld", ph,
                                          h_sent[ph] + 1, (long long)(t0 * 1e6));
            http_req("POST", path, "text/plain", data, len, 10, &res);
            if (res.status == 200) {
                h_sent[ph]++;
            }
        }
        __atomic_store_n(&h_pub_busy, 0, __ATOMIC_SEQ_CST);
        while (!h_pub_stop && now() - t0 < o_pub_ms / 1000.0) {
            usleep(1000);
        }
    }
    return NULL;
}

/* Take the complete lines of a normal stream's buffer. */
static void h_lines(hconn_t *c)
{
    char *p = c->buf, *nl;

    while ((nl = memchr(p, '\n', c->len - (size_t)(p - c->buf)))) {
        int ph;
        long k;
        long long t;
        *nl = '\0';
        if (!strncmp(p, "data: ", 6) && sscanf(p + 6, "%d %ld %lld", &ph, &k, &t) == 3
            && ph >= 0 && ph < 2) {
            c->got[ph]++;
            if (h_nlat[ph] < H_LAT_MAX) {
                h_lat[ph][h_nlat[ph]++] = now() - t / 1e6;
            }
        }
        p = nl + 1;
    }
    c->len -= (size_t)(p - c->buf);
    memmove(c->buf, p, c->len);
}

static int h_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double h_pct(int ph, double q)
{
    long i;

    if (!h_nlat[ph]) {
        return -1;
    }
    qsort(h_lat[ph], (size_t)h_nlat[ph], sizeof(double), h_cmp);
    i = (long)(q * (double)(h_nlat[ph] - 1) + 0.5);
    return h_lat[ph][i];
}

/* One readable (or writable, while connecting) connection. */
static void h_io(int ep, hconn_t *c, long *hist)
{
    static const char req_fmt[] = "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n";
    char req[512];

    if (c->state == S_CONNECT) {
        int n = snprintf(req, sizeof(req), req_fmt, o_path);
        struct epoll_event ev = { EPOLLIN, { .ptr = c } };
        if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
            c->state = S_DONE;
            return;
        }
        c->state = S_HEAD;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
        if (r < 0 && errno == EAGAIN) {
            return;
        }
        if (r <= 0) {
            c->state = S_DONE;
            return;
        }
        c->len += (size_t)r;
        c->buf[c->len] = '\0';
        if (c->state == S_HEAD) {
            char *end = strstr(c->buf, "\r\n\r\n");
            if (!end) {
                if (c->len >= sizeof(c->buf) - 1) {
                    c->state = S_DONE;
                    return;
                }
                continue;
            }
            if (sscanf(c->buf, "HTTP/1.%*d %d", &c->status) != 1) {
                c->status = 0;
            }
            hist[c->status >= 0 && c->status < 600 ? c->status : 0]++;
            if (c->status != 200) {
                c->state = S_DONE;
                return;
            }
            c->state = S_OPEN;
            c->len -= (size_t)(end + 4 - c->buf);
            memmove(c->buf, end + 4, c->len);
        }
        if (c->attacker) {
            c->len = 0;         /* read, not kept */
        }
        else {
            h_lines(c);
            if (c->len >= sizeof(c->buf) - 1) {
                c->len = 0;
            }
        }
    }
}

static void h_close(int ep, hconn_t *c)
{
    struct linger lg = { 1, 0 };

    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    /* a RST: 20,000 refused connections from one address leave no TIME_WAIT */
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(c->fd);
    c->fd = -1;
}

/* Run the loop until done() or the deadline; the attacker keeps up to
 * o_conc attempts in flight while *attack_left > 0. */
static void h_loop(int ep, hconn_t **att, long *attack_left, long *attack_tried,
                   long *hist_n, long *hist_a, double deadline,
                   int (*done)(void *), void *arg)
{
    struct epoll_event evs[256];
    int i, n;

    while (now() < deadline && !done(arg)) {
        for (i = 0; att && i < o_conc && *attack_left > 0; i++) {
            hconn_t *c = att[i];
            if (c->fd >= 0) {
                continue;
            }
            memset(c, 0, sizeof(*c));
            c->attacker = 1;
            c->fd = h_connect(0x7f020001u);
            (*attack_left)--;
            (*attack_tried)++;
            if (c->fd < 0) {
                c->state = S_DONE;
                continue;
            }
            {
                struct epoll_event ev = { EPOLLOUT, { .ptr = c } };
                epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            }
        }
        n = epoll_wait(ep, evs, 256, 20);
        for (i = 0; i < n; i++) {
            hconn_t *c = evs[i].data.ptr;
            h_io(ep, c, c->attacker ? hist_a : hist_n);
            if (c->state == S_DONE && c->fd >= 0) {
                h_close(ep, c);     /* refused or ended: its slot is free */
            }
        }
    }
}

typedef struct {
    hconn_t *conns;
    long n;
    int phase;
    volatile long *attack_left;
} h_wait_t;

static int h_all_open(void *arg)
{
    h_wait_t *w = arg;
    long i;

    for (i = 0; i < w->n; i++) {
        if (w->conns[i].state == S_CONNECT || w->conns[i].state == S_HEAD) {
            return 0;
        }
    }
    return 1;
}

/* every normal stream has what was published in the phase (the attack
 * over, for phase 1) */
static int h_all_got(void *arg)
{
    h_wait_t *w = arg;
    long i;

    if (__atomic_load_n(&h_phase, __ATOMIC_SEQ_CST) >= 0
        || __atomic_load_n(&h_pub_busy, __ATOMIC_SEQ_CST)
        || (w->attack_left && *w->attack_left > 0)) {
        return 0;
    }
    for (i = 0; i < w->n; i++) {
        if (w->conns[i].state == S_OPEN && w->conns[i].got[w->phase] < h_sent[w->phase]) {
            return 0;
        }
    }
    return 1;
}

static int h_never(void *arg)
{
    (void)arg;
    return 0;
}

/* The attacker's side, run by its own thread and epoll set. */
static struct {
    hconn_t **att;
    volatile long left;
    long tried;
    long hist[600];
    volatile int stop;
    double secs;
} h_att;

static int h_att_stop(void *arg)
{
    (void)arg;
    return h_att.stop;
}

static void *h_attacker(void *arg)
{
    long hist_n[600], left;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    double t0 = now();

    (void)arg;
    /* while attempts are left: h_loop() starts them (no faster than
     * --attack-rate a second); then keep reading the admitted streams
     * until told to stop */
    while (!h_att.stop) {
        long budget = h_att.left;
        if (o_attack_rate > 0) {
            long allowed = (long)(o_attack_rate * (now() - t0)) + 1 - h_att.tried;
            if (allowed < budget) {
                budget = allowed > 0 ? allowed : 0;
            }
        }
        left = budget;
        h_loop(ep, h_att.att, &left, &h_att.tried, hist_n, h_att.hist,
               now() + 0.01, h_att_stop, NULL);
        if (h_att.left > 0 && h_att.left - (budget - left) == 0) {
            h_att.secs = now() - t0;
        }
        h_att.left -= budget - left;
    }
    close(ep);
    return NULL;
}

static int cmd_hostile(void)
{
    hconn_t *norm = calloc((size_t)o_n, sizeof(hconn_t));
    hconn_t **att = calloc((size_t)o_conc, sizeof(hconn_t *));
    long hist_n[600] = { 0 }, hist_a[600] = { 0 }, i, left = o_attack, tried = 0;
    long open_n = 0, lost[2] = { 0, 0 }, held_a = 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    pthread_t pub, attacker;
    h_wait_t w;
    double t0, t_attack;

    if (!o_path) {
        o_path = "/capped?channel=hostile";
    }
    h_lat[0] = malloc(H_LAT_MAX * sizeof(double));
    h_lat[1] = malloc(H_LAT_MAX * sizeof(double));
    if (!norm || !att || ep < 0 || !h_lat[0] || !h_lat[1]) {
        die("out of memory");
    }
    for (i = 0; i < o_conc; i++) {
        att[i] = calloc(1, sizeof(hconn_t));
        att[i]->fd = -1;
        att[i]->state = S_DONE;
    }
    /* 1. the normal clients, each from its own address */
    t0 = now();
    for (i = 0; i < o_n; i++) {
        struct epoll_event ev = { EPOLLOUT, { .ptr = &norm[i] } };
        norm[i].fd = h_connect(0x7f010001u + (uint32_t)(i / 250) * 256 + (uint32_t)(i % 250));
        if (norm[i].fd < 0) {
            norm[i].state = S_DONE;
            continue;
        }
        epoll_ctl(ep, EPOLL_CTL_ADD, norm[i].fd, &ev);
    }
    w.conns = norm;
    w.n = o_n;
    w.attack_left = NULL;
    h_loop(ep, NULL, &left, &tried, hist_n, hist_a, t0 + 60, h_all_open, &w);
    for (i = 0; i < o_n; i++) {
        open_n += norm[i].state == S_OPEN;
    }
    printf("normal_open=%ld\nnormal_open_secs=%.2f\n", open_n, now() - t0);
    if (pthread_create(&pub, NULL, h_publisher, NULL)) {
        die("pthread_create failed");
    }
    /* 2. baseline: o_events events, no attack */
    w.phase = 0;
    __atomic_store_n(&h_phase, 0, __ATOMIC_SEQ_CST);
    t0 = now();
    h_loop(ep, NULL, &left, &tried, hist_n, hist_a,
           t0 + o_events * o_pub_ms / 1000.0, h_never, NULL);
    __atomic_store_n(&h_phase, -1, __ATOMIC_SEQ_CST);
    h_loop(ep, NULL, &left, &tried, hist_n, hist_a, now() + 10, h_all_got, &w);
    /* 3. the attack, in a thread of its own (so that its connections do
     * not delay the normal clients' reads here), with events published
     * all along it */
    w.phase = 1;
    w.attack_left = &h_att.left;
    h_att.left = o_attack;
    h_att.att = att;
    __atomic_store_n(&h_phase, 1, __ATOMIC_SEQ_CST);
    t_attack = now();
    if (pthread_create(&attacker, NULL, h_attacker, NULL)) {
        die("pthread_create failed");
    }
    while (now() < t_attack + 600 && (h_att.left > 0 || h_sent[1] < o_events)) {
        h_loop(ep, NULL, &left, &tried, hist_n, hist_a, now() + 0.2, h_never, NULL);
    }
    printf("attack_secs=%.2f\n", h_att.secs);
    __atomic_store_n(&h_phase, -1, __ATOMIC_SEQ_CST);
    h_loop(ep, NULL, &left, &tried, hist_n, hist_a, now() + 10, h_all_got, &w);
    h_att.stop = 1;
    pthread_join(attacker, NULL);
    tried = h_att.tried;
    memcpy(hist_a, h_att.hist, sizeof(hist_a));
    h_pub_stop = 1;
    pthread_join(pub, NULL);
    for (i = 0; i < o_conc; i++) {
        held_a += att[i]->fd >= 0 && att[i]->state == S_OPEN;
    }
    printf("attack_200_ended=%ld\n", hist_a[200] - held_a);
    for (i = 0; i < o_n; i++) {
        int ph;
        for (ph = 0; ph < 2; ph++) {
            if (norm[i].state == S_OPEN && norm[i].got[ph] < h_sent[ph]) {
                lost[ph] += h_sent[ph] - norm[i].got[ph];
            }
        }
    }
    {
        long ended = 0;
        for (i = 0; i < o_n; i++) {
            ended += norm[i].state == S_DONE && norm[i].status == 200;
        }
        printf("normal_ended=%ld\n", ended);
    }
    printf("attack_tried=%ld\nattack_200=%ld\nattack_429=%ld\nattack_503=%ld\n"
           "attack_other=%ld\nattack_held_at_end=%ld\n",
           tried, hist_a[200], hist_a[429], hist_a[503],
           tried - hist_a[200] - hist_a[429] - hist_a[503], held_a);
    printf("events_before=%ld\nevents_during=%ld\nlost_before=%ld\nlost_during=%ld\n",
           h_sent[0], h_sent[1], lost[0], lost[1]);
    printf("deliveries_before=%ld\ndeliveries_during=%ld\n", h_nlat[0], h_nlat[1]);
    printf("p50_before_ms=%.2f\np99_before_ms=%.2f\nmax_before_ms=%.2f\n",
           h_pct(0, 0.5) * 1e3, h_pct(0, 0.99) * 1e3, h_pct(0, 1.0) * 1e3);
    printf("p50_during_ms=%.2f\np99_during_ms=%.2f\nmax_during_ms=%.2f\n",
           h_pct(1, 0.5) * 1e3, h_pct(1, 0.99) * 1e3, h_pct(1, 1.0) * 1e3);
    return 0;
}

static int cmd_hold(void)
{
    struct epoll_event evs[512];
    long hist[600] = { 0 }, open, eof = 0;
    double t0 = now(), t_open, t_stop, t_eof = -1, t_parent = -1, t_all = -1;
    int k, n;

    ep = epoll_create1(EPOLL_CLOEXEC);
    streams_alloc(o_n);
    open = open_all(o_path ? o_path : "/stream?channel=hold", 0, 120, hist);
    t_open = now() - t0;
    printf("streams=%ld\nopen=%ld\nopen_secs=%.1f\n", o_n, open, t_open);
    print_hist(hist);
    print_admin_list();
    fflush(stdout);
    if (!o_stop) {
        /* held until killed or stdin closes: the caller checks the server */
        char b[16];
        while (read(0, b, sizeof(b)) > 0) {
        }
        return 0;
    }
    t_stop = now();
    if (kill(o_stop, SIGTERM) < 0) {
        die("kill %d: %s", (int)o_stop, strerror(errno));
    }
    while (now() - t_stop < 30) {
        double t = now() - t_stop;
        int left = 0;
        n = epoll_wait(ep, evs, 512, 10);
        for (k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if (c->state == S_OPEN && !conn_read(c, 0)) {
                conn_close(c, 0);
                c->ended = 1;
                eof++;
            }
        }
        if (t_eof < 0 && eof == open) {
            t_eof = t;
        }
        if (t_parent < 0 && proc_gone(o_stop)) {
            t_parent = t;
        }
        for (k = 0; k < o_nwatch; k++) {
            left += !proc_gone(o_watch[k]);
        }
        if (t_all < 0 && !left && t_parent >= 0) {
            t_all = t;
        }
        if (t_eof >= 0 && t_all >= 0) {
            break;
        }
    }
    printf("streams_ended=%ld\nall_streams_ended_secs=%.3f\nparent_exit_secs=%.3f\n"
           "all_processes_exit_secs=%.3f\n", eof, t_eof, t_parent, t_all);
    return t_eof >= 0 && t_all >= 0 && t_all <= 5 ? 0 : 1;
}

/* --- graceful under load ------------------------------------------------------ */

enum { EV_OPENED = 1, EV_ENDED = 2, EV_HEAD_FAILED = 4 };

/* One epoll event of a (re)connecting stream: send its request once the
 * connect is done, or read it.  Returns EV_ flags: it has just opened
 * (headers read); it ended (the caller closes it and plans a reconnect);
 * it ended before its headers were complete. */
static int stream_event(conn_t *c)
{
    int was_head, alive;

    if (c->state == S_CONNECT) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (!err && send(c->fd, c->buf, c->len, MSG_NOSIGNAL) == (ssize_t)c->len) {
            c->len = 0;
            c->state = S_HEAD;
            conn_watch(c, EPOLLIN | EPOLLRDHUP, 0);
            return 0;
        }
        return EV_ENDED;
    }
    was_head = c->state == S_HEAD;
    alive = conn_read(c, 1);
    return (was_head && c->state == S_OPEN ? EV_OPENED : 0)
           | (alive ? 0 : EV_ENDED)
           | (was_head && c->state != S_OPEN && !alive ? EV_HEAD_FAILED : 0);
}

static int cmd_graceful(void)
{
    struct epoll_event evs[512];
    long hist[600] = { 0 }, open, i, gaps = 0, dups = 0, lost_notes = 0,
         reconnects = 0, behind = 0, never = 0, events = 0, reconnect_fail = 0;
    double t0, t_sig = 0, t_last_reconnect = 0, t_end;
    const char *path = "/stream?channel=graceful";
    int k, n, signalled = 0;

    ep = epoll_create1(EPOLL_CLOEXEC);
    streams_alloc(o_n);
    open = open_all(path, 1, 120, hist);
    printf("streams=%ld\nopen=%ld\n", o_n, open);
    if (open != o_n) {
        printf("error=not every stream opened\n");
        return 1;
    }
    publisher_start(&P, "/pub?channel=graceful", 0, o_pub_ms, 1);
    t0 = now();
    t_end = t0 + o_run;
    while (now() < t_end) {
        double t = now();
        if (!signalled && t - t0 > 2) {
            kill(o_ppid, SIGUSR1);
            t_sig = t;
            signalled = 1;
        }
        for (i = 0; i < nstreams; i++) {
            conn_t *c = &streams[i];
            if (c->state == S_DONE && c->t_reconnect && t >= c->t_reconnect) {
                c->t_reconnect = 0;
                c->reconnects++;
                reconnects++;
                if (conn_open(c, path, c->last_id) < 0) {
                    c->t_reconnect = t + 0.5;
                }
            }
            else if ((c->state == S_CONNECT || c->state == S_HEAD)
                     && t - c->t_start > 10) {
                conn_close(c, 0);
                reconnect_fail++;
                c->t_reconnect = t + 1;
            }
        }
        n = epoll_wait(ep, evs, 512, 10);
        for (k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            int r = stream_event(c);
            if (r & EV_OPENED) {
                t_last_reconnect = now();
            }
            if (r & EV_HEAD_FAILED) {
                reconnect_fail++;
            }
            if (r & EV_ENDED) {
                /* a browser waits its retry time; spread the herd over 1 s */
                conn_close(c, 0);
                c->t_reconnect = now() + 0.05 + rnd(1000) / 1000.0;
            }
        }
    }
    publisher_stop(&P);
    /* let every stream catch up with the last seq (reconnecting if need be) */
    t_end = now() + 15;
    while (now() < t_end) {
        long lagging = 0;
        double t = now();
        for (i = 0; i < nstreams; i++) {
            conn_t *c = &streams[i];
            if (c->last_seq < P.seq) {
                lagging++;
            }
            if (c->state == S_DONE && c->t_reconnect && t >= c->t_reconnect) {
                c->t_reconnect = 0;
                c->reconnects++;
                reconnects++;
                if (conn_open(c, path, c->last_id) < 0) {
                    c->t_reconnect = t + 0.5;
                }
            }
        }
        if (!lagging) {
            break;
        }
        n = epoll_wait(ep, evs, 512, 10);
        for (k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if (stream_event(c) & EV_ENDED) {
                conn_close(c, 0);
                c->t_reconnect = now() + 0.1;
            }
        }
    }
    for (i = 0; i < nstreams; i++) {
        conn_t *c = &streams[i];
        gaps += c->gaps;
        dups += c->dups;
        events += c->events;
        lost_notes += c->history_lost;
        if (c->first_seq < 0) {
            never++;
        }
        else if (c->last_seq < P.seq) {
            behind++;
            gaps += P.seq - c->last_seq;
        }
    }
    printf("signal_after_secs=%.1f\nlast_seq=%ld\nevents_received=%ld\n"
           "reconnects=%ld\nreconnect_failures=%ld\nall_reconnected_secs=%.2f\n"
           "lost=%ld\nduplicated=%ld\nstreams_behind=%ld\nstreams_without_events=%ld\n"
           "history_lost_notices=%ld\n",
           t_sig - t0, P.seq, events, reconnects, reconnect_fail,
           t_last_reconnect > t_sig ? t_last_reconnect - t_sig : 0.0,
           gaps, dups, behind, never, lost_notes);
    publisher_report(&P);
    for (i = 0; i < nstreams; i++) {
        conn_close(&streams[i], 0);
    }
    return gaps || dups || never ? 1 : 0;
}

/* --- TLS streams (tls-churn, tls-fanout, tls-hold, tls-slow) ---------------- */

/* A stream over TLS, non-blocking: connect, handshake, request, head, body.
 * Streams and publishes are on different ports: -p is the TLS port, the
 * publisher and the admin requests use the plain one (--pub-port). */
static SSL_CTX *tls_ctx;
static int tls_keep_body;       /* keep every body byte (fan-out) */

enum { T_CONNECT, T_HANDSHAKE, T_SEND, T_HEAD, T_OPEN, T_DONE };
enum { TE_OPENED = 1, TE_ENDED = 2 };
enum { TC_NOTIFY, TC_FIN, TC_RST };

typedef struct {
    int fd;
    SSL *ssl;
    int state;
    int status;                 /* HTTP status; -2: no ": ok" preamble */
    int opened;                 /* head and preamble read */
    int eof;                    /* the server ended it */
    int notify_in;              /* ... with a close_notify */
    int tls_failed;             /* connect or handshake failed */
    int how;                    /* TC_*: how the client will close it */
    int early;                  /* tls-churn: closes once the request is sent */
    double t_start, t_until;
    char *buf;                  /* the head, then the body (from ": ok") */
    size_t len, cap;
    char req[512];
    size_t reqlen;
} tconn_t;

static void tls_init(void)
{
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx) {
        die("SSL_CTX_new failed");
    }
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    /* every connection a full handshake: each one makes a new SSL object
     * and session in the server */
    SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(tls_ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_alpn_protos(tls_ctx, (const unsigned char *)"\x08http/1.1", 9);
}

static void tconn_watch(tconn_t *c, uint32_t events, int add)
{
    struct epoll_event ev;

    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev);
}

static void tconn_init(tconn_t *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->state = T_DONE;
    c->cap = 8192;
    c->buf = malloc(c->cap);
}

static int tconn_open(tconn_t *c, const char *path)
{
    c->ssl = NULL;
    c->status = c->opened = c->eof = c->notify_in = c->tls_failed = 0;
    c->len = 0;
    c->t_start = now();
    c->t_until = 0;
    c->reqlen = (size_t)snprintf(c->req, sizeof(c->req),
                    "GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
                    path);
    c->fd = tcp_start(o_rcvbuf, 0);
    if (c->fd < 0) {
        c->state = T_DONE;
        c->tls_failed = 1;
        return -1;
    }
    c->state = T_CONNECT;
    tconn_watch(c, EPOLLOUT, 1);
    return 0;
}

/* What the TLS connection waits for; TE_ENDED when it failed. */
static int tconn_want(tconn_t *c, int r)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        tconn_watch(c, EPOLLIN | EPOLLRDHUP, 0);
        return 0;
    case SSL_ERROR_WANT_WRITE:
        tconn_watch(c, EPOLLOUT, 0);
        return 0;
    default:
        ERR_clear_error();
        c->tls_failed = 1;
        return TE_ENDED;
    }
}

/* Read what is there (until the TLS layer wants more).  Returns TE_ flags. */
static int tconn_read(tconn_t *c)
{
    int ret = 0;

    for (;;) {
        int n, e;
        char *h;
        if (c->cap - c->len < 4096) {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
        }
        ERR_clear_error();
        n = SSL_read(c->ssl, c->buf + c->len, (int)(c->cap - c->len - 1));
        if (n <= 0) {
            e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_WANT_READ) {
                return ret;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                tconn_watch(c, EPOLLOUT, 0);
                return ret;
            }
            ERR_clear_error();
            c->notify_in = e == SSL_ERROR_ZERO_RETURN;
            c->eof = 1;
            return ret | TE_ENDED;
        }
        if (c->state == T_HEAD) {
            c->len += (size_t)n;
            c->buf[c->len] = '\0';
            if (!(h = strstr(c->buf, "\r\n\r\n"))) {
                continue;
            }
            if (sscanf(c->buf, "HTTP/1.%*d %d", &c->status) != 1) {
                c->status = -1;
            }
            if (c->status != 200) {
                return ret | TE_ENDED;
            }
            h += 4;
            c->len -= (size_t)(h - c->buf);
            memmove(c->buf, h, c->len);
            c->state = T_OPEN;
        }
        else if (tls_keep_body || c->len < 6) {
            c->len += (size_t)n;
        }
        if (c->state == T_OPEN && !c->opened && c->len >= 6) {
            if (memcmp(c->buf, ": ok\n\n", 6)) {
                c->status = -2;
                return ret | TE_ENDED;
            }
            c->opened = 1;
            ret |= TE_OPENED;
        }
    }
}

/* Advance a TLS stream after an epoll event; never blocks. */
static int tconn_step(tconn_t *c)
{
    int r;

    if (c->state == T_CONNECT) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err || !(c->ssl = SSL_new(tls_ctx)) || !SSL_set_fd(c->ssl, c->fd)) {
            c->tls_failed = 1;
            return TE_ENDED;
        }
        SSL_set_tlsext_host_name(c->ssl, "localhost");
        SSL_set_connect_state(c->ssl);
        c->state = T_HANDSHAKE;
    }
    if (c->state == T_HANDSHAKE) {
        ERR_clear_error();
        if ((r = SSL_do_handshake(c->ssl)) != 1) {
            return tconn_want(c, r);
        }
        c->state = T_SEND;
    }
    if (c->state == T_SEND) {
        ERR_clear_error();
        if ((r = SSL_write(c->ssl, c->req, (int)c->reqlen)) <= 0) {
            return tconn_want(c, r);
        }
        c->state = T_HEAD;
        tconn_watch(c, EPOLLIN | EPOLLRDHUP, 0);
    }
    if (c->state == T_HEAD || c->state == T_OPEN) {
        return tconn_read(c);
    }
    return 0;
}

/* End it from the client's side: TC_NOTIFY sends a close_notify first
 * (after reading what came, so that the close is not a RST), TC_FIN just
 * closes the socket, TC_RST closes it with SO_LINGER 0. */
static void tconn_close(tconn_t *c, int how)
{
    if (c->fd >= 0) {
        if (how == TC_NOTIFY && c->ssl && (c->state == T_HEAD || c->state == T_OPEN)) {
            int keep = tls_keep_body;
            tls_keep_body = 0;
            if (!c->eof) {
                tconn_read(c);
            }
            tls_keep_body = keep;
            ERR_clear_error();
            SSL_shutdown(c->ssl);
            ERR_clear_error();
        }
        if (how == TC_RST) {
            struct linger l = { 1, 0 };
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        close(c->fd);
    }
    if (c->ssl) {
        SSL_free(c->ssl);
    }
    c->ssl = NULL;
    c->fd = -1;
    c->state = T_DONE;
}

/* One TLS stream, blocking with a deadline: 1 when it answered 200 and
 * ": ok" (a probe that the server serves streams), then closed. */
static int tls_probe(const char *path, double timeout)
{
    tconn_t c;
    double deadline = now() + timeout;
    int ok = 0, r = 0;
    int ep_saved = ep;

    tconn_init(&c);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (tconn_open(&c, path) == 0) {
        while (!(r & TE_ENDED) && !c.opened && now() < deadline) {
            struct epoll_event ev;
            if (epoll_wait(ep, &ev, 1, 50) == 1) {
                r = tconn_step(&c);
            }
        }
        ok = c.opened;
        tconn_close(&c, TC_NOTIFY);
    }
    close(ep);
    ep = ep_saved;
    free(c.buf);
    return ok;
}

/* --- tls-churn ------------------------------------------------------------- */

static struct {
    long started, opened, done[3], early, at_once, errors, err_connect, err_tls,
         err_status, err_timeout, err_eof, notify_in;
    long status_hist[600];
} TK;

static void tchurn_end(tconn_t *c, int ok)
{
    if (ok) {
        TK.done[c->how]++;
    }
    else {
        TK.errors++;
        if (c->opened) {
            TK.err_eof++;           /* the server ended an open stream */
        }
        else if (c->status > 0 && c->status != 200) {
            TK.err_status++;
            if (c->status < 600) {
                TK.status_hist[c->status]++;
            }
        }
        else if (c->state == T_CONNECT) {
            TK.err_connect++;
        }
        else if (c->tls_failed) {
            TK.err_tls++;
        }
        else {
            TK.err_eof++;
        }
    }
    TK.notify_in += c->notify_in;
    tconn_close(c, c->how);
}

static int cmd_tls_churn(void)
{
    tconn_t *cs = calloc((size_t)o_conc, sizeof(tconn_t));
    struct epoll_event evs[512];
    char pubpath[2048], path[128];
    double t0 = now(), last_report = t0;
    long next = 0, active = 0, i;
    int k, n;

    pub_path(pubpath, sizeof(pubpath), "tchurn");
    ep = epoll_create1(EPOLL_CLOEXEC);
    for (i = 0; i < o_conc; i++) {
        tconn_init(&cs[i]);
    }
    if (o_pub_ms > 0) {
        publisher_start(&P, pubpath, o_pub_size, o_pub_ms, 0);
    }
    for (;;) {
        double t = now();
        int stopping = next >= o_n || t - t0 > o_time;
        active = 0;
        for (i = 0; i < o_conc; i++) {
            tconn_t *c = &cs[i];
            if (c->state != T_DONE) {
                if (!c->opened && t - c->t_start > 15) {
                    tchurn_end(c, 0);
                }
                else if (c->opened && t >= c->t_until) {
                    tchurn_end(c, 1);
                }
            }
            while (c->state == T_DONE && !stopping) {
                /* half close with a close_notify, a quarter with a FIN
                 * and a quarter with a RST, none of them after a notify */
                c->how = next % 2 ? (next % 4 == 1 ? TC_FIN : TC_RST) : TC_NOTIFY;
                /* one in ten leaves as soon as its request is written:
                 * its stream is suspended (or ends) with the client gone */
                c->early = next % 10 == 9;
                snprintf(path, sizeof(path), "/stream?channel=tchurn%ld", next % o_chans);
                next++;
                TK.started++;
                if (tconn_open(c, path) < 0) {
                    TK.errors++;
                    TK.err_connect++;
                }
                stopping = next >= o_n || t - t0 > o_time;
            }
            if (c->state != T_DONE) {
                active++;
            }
        }
        if (stopping && !active) {
            break;
        }
        if (t - last_report >= 5) {
            fprintf(stderr, "  tls-churn: %ld/%ld cycles, %ld errors, %.0f s\n",
                    TK.done[0] + TK.done[1] + TK.done[2], o_n, TK.errors, t - t0);
            last_report = t;
        }
        n = epoll_wait(ep, evs, 512, 5);
        for (k = 0; k < n; k++) {
            tconn_t *c = evs[k].data.ptr;
            int r;
            if (c->state == T_DONE) {
                continue;
            }
            r = tconn_step(c);
            if (c->early && c->state == T_HEAD && !(r & TE_ENDED)) {
                TK.early++;
                tchurn_end(c, 1);
                continue;
            }
            if (r & TE_OPENED) {
                /* a quarter end at once after ": ok" (their stream's first
                 * round finds the client gone), the others read events
                 * for up to HOLD_MS ms */
                TK.opened++;
                c->t_until = now();
                if (rnd(4)) {
                    c->t_until += rnd((unsigned)o_hold_ms + 1) / 1000.0;
                }
                else {
                    TK.at_once++;
                }
            }
            if (r & TE_ENDED) {
                tchurn_end(c, 0);
            }
        }
    }
    if (o_pub_ms > 0) {
        publisher_stop(&P);
    }
    printf("cycles=%ld\nsecs=%.1f\nopened=%ld\nclose_notify=%ld\nfin=%ld\nrst=%ld\n"
           "early=%ld\nat_once=%ld\n"
           "errors=%ld\nerr_connect=%ld\nerr_tls=%ld\nerr_status=%ld\nerr_timeout=%ld\n"
           "err_eof=%ld\nserver_close_notify=%ld\n",
           TK.started, now() - t0, TK.opened, TK.done[TC_NOTIFY], TK.done[TC_FIN],
           TK.done[TC_RST], TK.early, TK.at_once, TK.errors, TK.err_connect, TK.err_tls, TK.err_status,
           TK.err_timeout, TK.err_eof, TK.notify_in);
    for (i = 0; i < 600; i++) {
        if (TK.status_hist[i]) {
            printf("status_%ld=%ld\n", i, TK.status_hist[i]);
        }
    }
    if (o_pub_ms > 0) {
        publisher_report(&P);
    }
    for (i = 0; i < o_conc; i++) {
        free(cs[i].buf);
    }
    free(cs);
    return TK.errors ? 1 : 0;
}

/* --- many TLS streams at once (tls-fanout, tls-hold, tls-slow) -------------- */

static tconn_t *tss;
static long ntss;

/* Open ntss streams on path, at most o_conc being set up at once; wait for
 * each one's head and preamble.  Returns how many are open; hist counts
 * the others by status (0: no answer). */
static long tls_open_all(const char *path, double timeout, long *hist)
{
    struct epoll_event evs[512];
    double t0 = now();
    long next = 0, pending = 0, open = 0, i;
    int k, n;

    if (!tss) {
        tss = calloc((size_t)ntss, sizeof(tconn_t));
        for (i = 0; i < ntss; i++) {
            tconn_init(&tss[i]);
        }
    }
    while (next < ntss || pending) {
        while (next < ntss && pending < o_conc) {
            if (tconn_open(&tss[next++], path) < 0) {
                hist[0]++;
                continue;
            }
            pending++;
        }
        if (now() - t0 > timeout) {
            break;
        }
        n = epoll_wait(ep, evs, 512, 100);
        for (k = 0; k < n; k++) {
            tconn_t *c = evs[k].data.ptr;
            int was = c->opened, r;
            if (c->state == T_DONE) {
                continue;
            }
            r = tconn_step(c);
            if (!was && (r & (TE_OPENED | TE_ENDED))) {
                pending--;
                if (c->opened && !(r & TE_ENDED)) {
                    open++;
                }
                else {
                    hist[c->status > 0 && c->status < 600 ? c->status : 0]++;
                    tconn_close(c, TC_FIN);
                }
            }
            else if (r & TE_ENDED) {
                tconn_close(c, TC_FIN);       /* ended after it opened */
                open--;
                hist[0]++;
            }
        }
    }
    for (i = 0; i < ntss; i++) {
        if (tss[i].state != T_DONE && !tss[i].opened) {
            tconn_close(&tss[i], TC_FIN);
            hist[0]++;
        }
    }
    return open;
}

/* tls-fanout: N streams, K events published one after another; every
 * stream must receive every one, byte for byte. */
static struct {
    pthread_t thread;
    volatile int done;
    char (*ids)[64];
    long *subs;
    long n200;
    double t_first, t_last;
} FP;

static const char *fan_data(int k)
{
    static char d[70000];
    int off = snprintf(d, sizeof(d), "fan %d/%d ", k, o_events), i;

    for (i = off; i < o_ev_size && i < (int)sizeof(d) - 1; i++) {
        d[i] = (char)('a' + (i + k) % 26);
    }
    d[i > off ? i : off] = '\0';
    return d;
}

static void *fan_publisher(void *arg)
{
    http_res_t res;
    int k;

    (void)arg;
    FP.t_first = now();
    for (k = 0; k < o_events; k++) {
        const char *d = fan_data(k);
        char *p;
        http_req("POST", "/pub?channel=tfan", "text/plain", d, strlen(d), 10, &res);
        if (res.status == 200 && (p = strstr(res.body, "\"id\":"))) {
            p += 5;
            p += *p == '"';
            snprintf(FP.ids[k], sizeof(FP.ids[k]), "%.*s", (int)strcspn(p, "\","), p);
            if ((p = strstr(res.body, "\"subscribers\":"))) {
                FP.subs[k] = atol(p + 14);
            }
            FP.n200++;
        }
        if (o_pub_ms > 0) {
            usleep((useconds_t)o_pub_ms * 1000);
        }
    }
    FP.t_last = now();
    FP.done = 1;
    return NULL;
}

/* BusyWorkers from /server-status?auto every 20 ms, the most seen per
 * phase (0: opening the streams, 1: the events) */
static struct {
    pthread_t thread;
    volatile int phase, stop;
    long max[2];
} BW = { .max = { -1, -1 } };

static void *busy_sampler(void *arg)
{
    http_res_t res;
    char *p;

    (void)arg;
    while (!BW.stop) {
        int ph = BW.phase;
        http_req("GET", "/server-status?auto", NULL, "", 0, 10, &res);
        if (res.status == 200 && (p = strstr(res.body, "BusyWorkers: "))
            && atol(p + 13) > BW.max[ph]) {
            BW.max[ph] = atol(p + 13);
        }
        usleep(20000);
    }
    return NULL;
}

static int cmd_tls_fanout(void)
{
    struct epoll_event evs[512];
    long hist[600] = { 0 }, open, i, exact = 0, shorter = 0, wrong = 0, ended = 0,
         subs_min = -1, subs_max = -1, first_bad = -1;
    size_t explen = 0, off, bad_at = 0;
    char *exp;
    double t0 = now(), t_open, t_done = -1, deadline;
    int k, n;

    ep = epoll_create1(EPOLL_CLOEXEC);
    tls_keep_body = 1;
    ntss = o_n;
    if (pthread_create(&BW.thread, NULL, busy_sampler, NULL)) {
        die("pthread_create failed");
    }
    open = tls_open_all(o_path ? o_path : "/fanstream?channel=tfan", 180, hist);
    BW.phase = 1;
    t_open = now() - t0;
    printf("streams=%ld\nopen=%ld\nopen_secs=%.1f\n", o_n, open, t_open);
    print_hist(hist);
    if (open != o_n) {
        printf("error=not every stream opened\n");
    }
    FP.ids = calloc((size_t)o_events, sizeof(*FP.ids));
    FP.subs = calloc((size_t)o_events, sizeof(long));
    if (pthread_create(&FP.thread, NULL, fan_publisher, NULL)) {
        die("pthread_create failed");
    }
    /* read while the events come, then until every stream has the whole
     * text (or 60 s after the last publish) */
    deadline = now() + 600;
    for (;;) {
        long complete = 0;
        double t = now();
        if (FP.done && !explen) {
            explen = 6;
            for (k = 0; k < o_events; k++) {
                explen += strlen(FP.ids[k]) + strlen(fan_data(k)) + 13;
            }
            deadline = t + 60;
        }
        if (explen) {
            for (i = 0; i < ntss; i++) {
                complete += tss[i].opened && (tss[i].len >= explen || tss[i].state == T_DONE);
            }
            if (complete == open) {
                t_done = t - FP.t_first;
                break;
            }
        }
        if (t > deadline) {
            break;
        }
        n = epoll_wait(ep, evs, 512, 10);
        for (k = 0; k < n; k++) {
            tconn_t *c = evs[k].data.ptr;
            if (c->state != T_DONE && (tconn_step(c) & TE_ENDED)) {
                tconn_close(c, TC_FIN);
                ended++;
            }
        }
    }
    pthread_join(FP.thread, NULL);
    BW.stop = 1;
    pthread_join(BW.thread, NULL);
    exp = malloc(explen + 1);
    off = (size_t)sprintf(exp, ": ok\n\n");
    for (k = 0; k < o_events; k++) {
        off += (size_t)sprintf(exp + off, "id: %s\ndata: %s\n\n", FP.ids[k], fan_data(k));
        if (subs_min < 0 || FP.subs[k] < subs_min) {
            subs_min = FP.subs[k];
        }
        if (FP.subs[k] > subs_max) {
            subs_max = FP.subs[k];
        }
    }
    for (i = 0; i < ntss; i++) {
        tconn_t *c = &tss[i];
        if (!c->opened) {
            continue;
        }
        if (c->len == off && !memcmp(c->buf, exp, off)) {
            exact++;
        }
        else if (c->len < off && !memcmp(c->buf, exp, c->len)) {
            shorter++;
        }
        else {
            wrong++;
            if (first_bad < 0) {
                size_t j;
                for (j = 0; j < c->len && j < off && c->buf[j] == exp[j]; j++) {
                }
                first_bad = i;
                bad_at = j;
            }
        }
    }
    printf("events=%d\nevent_bytes=%d\npublished_200=%ld\nsubscribers_min=%ld\n"
           "subscribers_max=%ld\nexpected_bytes=%zu\nexact=%ld\nshort=%ld\nwrong=%ld\n"
           "ended_early=%ld\ndeliver_secs=%.2f\npublish_secs=%.2f\n"
           "busy_max_opening=%ld\nbusy_max_events=%ld\n",
           o_events, o_ev_size, FP.n200, subs_min, subs_max, off, exact, shorter, wrong,
           ended, t_done, FP.t_last - FP.t_first, BW.max[0], BW.max[1]);
    if (first_bad >= 0) {
        printf("first_wrong_stream=%ld\nfirst_wrong_offset=%zu\n", first_bad, bad_at);
    }
    for (i = 0; i < ntss; i++) {
        tconn_close(&tss[i], i % 2 ? TC_FIN : TC_NOTIFY);
    }
    free(exp);
    return exact == o_n && FP.n200 == o_events ? 0 : 1;
}

/* tls-hold: N streams, then (--stop PID) SIGTERM and how long until every
 * stream ended and the watched processes are gone, or (--graceful PID)
 * SIGUSR1 and how long until every stream ended, the watched (old)
 * children are gone and a new stream is served; without either, held
 * until stdin closes. */
static int cmd_tls_hold(void)
{
    struct epoll_event evs[512];
    long hist[600] = { 0 }, open, i, eof = 0, notify = 0;
    double t0 = now(), t_sig, t_eof = -1, t_parent = -1, t_all = -1, t_new = -1,
           next_probe = 0;
    const char *path = o_path ? o_path : "/stream?channel=thold";
    int k, n;
    pid_t target = o_stop ? o_stop : o_graceful;

    ep = epoll_create1(EPOLL_CLOEXEC);
    ntss = o_n;
    open = tls_open_all(path, 180, hist);
    printf("streams=%ld\nopen=%ld\nopen_secs=%.1f\n", o_n, open, now() - t0);
    print_hist(hist);
    print_admin_list();
    fflush(stdout);
    if (!target) {
        char b[16];
        while (read(0, b, sizeof(b)) > 0) {
        }
        for (i = 0; i < ntss; i++) {
            tconn_close(&tss[i], i % 2 ? TC_FIN : TC_NOTIFY);
        }
        return 0;
    }
    t_sig = now();
    if (kill(target, o_stop ? SIGTERM : SIGUSR1) < 0) {
        die("kill %d: %s", (int)target, strerror(errno));
    }
    while (now() - t_sig < 30) {
        double t = now() - t_sig;
        int left = 0;
        n = epoll_wait(ep, evs, 512, 10);
        for (k = 0; k < n; k++) {
            tconn_t *c = evs[k].data.ptr;
            if (c->state != T_DONE && (tconn_step(c) & TE_ENDED)) {
                notify += c->notify_in;
                tconn_close(c, TC_FIN);
                eof++;
            }
        }
        if (t_eof < 0 && eof == open) {
            t_eof = now() - t_sig;
        }
        for (k = 0; k < o_nwatch; k++) {
            left += !proc_gone(o_watch[k]);
        }
        if (o_stop) {
            if (t_parent < 0 && proc_gone(o_stop)) {
                t_parent = t;
            }
            if (t_all < 0 && !left && t_parent >= 0) {
                t_all = t;
            }
            if (t_eof >= 0 && t_all >= 0) {
                break;
            }
        }
        else {
            if (t_all < 0 && !left) {
                t_all = t;
            }
            /* the new generation serves: a new stream answered */
            if (t_new < 0 && t >= next_probe) {
                if (tls_probe(path, 2)) {
                    t_new = now() - t_sig;
                }
                next_probe = now() - t_sig + 0.1;
            }
            if (t_eof >= 0 && t_all >= 0 && t_new >= 0) {
                break;
            }
        }
    }
    printf("streams_ended=%ld\nserver_close_notify=%ld\nall_streams_ended_secs=%.3f\n",
           eof, notify, t_eof);
    if (o_stop) {
        printf("parent_exit_secs=%.3f\nall_processes_exit_secs=%.3f\n", t_parent, t_all);
    }
    else {
        printf("old_children_exit_secs=%.3f\nnew_stream_secs=%.3f\n", t_all, t_new);
    }
    for (i = 0; i < ntss; i++) {
        tconn_close(&tss[i], TC_FIN);
    }
    return t_eof >= 0 && t_all >= 0 && (o_stop || t_new >= 0) ? 0 : 1;
}

/* tls-slow: N streams from clients that read their head and preamble and
 * then nothing (a small receive buffer), on a channel fed with big events;
 * the server must drop them (SSEMaxBacklog) without a worker thread
 * waiting on any.  Samples BusyWorkers from /server-status?auto. */
static int cmd_tls_slow(void)
{
    long hist[600] = { 0 }, open, i, busy_max = -1, samples = 0, status_bad = 0;
    double t0, t_dropped = -1, status_max = 0;
    char pubpath[256];

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!o_rcvbuf) {
        o_rcvbuf = 4096;
    }
    ntss = o_n;
    open = tls_open_all(o_path ? o_path : "/slowstream?channel=tslow", 120, hist);
    printf("streams=%ld\nopen=%ld\n", o_n, open);
    print_hist(hist);
    /* from here on nothing is read */
    snprintf(pubpath, sizeof(pubpath), "/pub?channel=tslow");
    publisher_start(&PV, pubpath, o_vanish_size, o_vanish_every, 0);
    t0 = now();
    while (now() - t0 < o_run) {
        http_res_t res;
        char *p;
        double t = now();
        http_req("GET", "/server-status?auto", NULL, "", 0, 10, &res);
        samples++;
        if (res.status != 200 || !(p = strstr(res.body, "BusyWorkers: "))) {
            status_bad++;
        }
        else if (atol(p + 13) > busy_max) {
            busy_max = atol(p + 13);
        }
        if (res.secs > status_max) {
            status_max = res.secs;
        }
        if (t_dropped < 0 && PV.n200 > 0 && PV.last_subs == 0) {
            t_dropped = t - t0;
        }
        /* a second of samples after the last one was dropped */
        if (t_dropped >= 0 && t - t0 > t_dropped + 1) {
            break;
        }
        usleep(100000);
    }
    publisher_stop(&PV);
    printf("dropped_all_secs=%.2f\nlast_subscribers=%ld\nbusy_max=%ld\nstatus_samples=%ld\n"
           "status_failed=%ld\nstatus_max_secs=%.3f\n",
           t_dropped, PV.last_subs, busy_max, samples, status_bad, status_max);
    publisher_report(&PV);
    for (i = 0; i < ntss; i++) {
        tconn_close(&tss[i], TC_RST);
    }
    return t_dropped >= 0 && open == o_n ? 0 : 1;
}

/* --- the relay socket, spoken to directly ------------------------------------ */

static void put_u32(char **p, uint32_t v)
{
    memcpy(*p, &v, 4);
    *p += 4;
}

static void put_str(char **p, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);

    put_u32(p, n);
    memcpy(*p, s, n + 1);
    *p += n + 1;
}

/* One frame: header {type, seq, len} in native order, then the payload.
 * The type word is the op with the frames' format in its high 16 bits
 * (SSE_FRAME_FORMAT, sse_proto.h).  A request's seq is the time of
 * sending, CLOCK_MONOTONIC in ms (the relay refuses one that waited too
 * long). */
#define FRAME_FORMAT 8u
static size_t frame(char *out, uint32_t type, const char *payload, size_t plen)
{
    uint32_t h[3] = { type | FRAME_FORMAT << 16,
                      (uint32_t)(uint64_t)(now() * 1000.0),
                      (uint32_t)plen };

    memcpy(out, h, sizeof(h));
    memcpy(out + sizeof(h), payload, plen);
    return sizeof(h) + plen;
}

static int drop_to(uid_t uid, gid_t gid, int keep_dac)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];

    if (keep_dac && prctl(PR_SET_KEEPCAPS, 1) < 0) {
        return -1;
    }
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0
        || setresuid(uid, uid, uid) < 0) {
        return -1;
    }
    if (keep_dac) {
        memset(data, 0, sizeof(data));
        data[0].effective = data[0].permitted = 1u << CAP_DAC_OVERRIDE;
        if (syscall(SYS_capset, &hdr, data) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Try one request frame; prints what happened. */
static void probe_one(const char *sock, const char *what, const char *req,
                      size_t len)
{
    struct sockaddr_un sa;
    char buf[4096];
    double t0 = now();
    ssize_t n = 0, got = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        printf("%s_connect=refused:%s\n%s_answer=none\n", what,
               errno == EACCES ? "EACCES" : strerror(errno), what);
        close(fd);
        return;
    }
    printf("%s_connect=ok\n", what);
    if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        printf("%s_answer=closed-before-request\n", what);
        close(fd);
        return;
    }
    while (now() - t0 < 3) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 100) <= 0) {
            continue;
        }
        n = recv(fd, buf + got, sizeof(buf) - (size_t)got, 0);
        if (n <= 0) {
            break;
        }
        got += n;
        if (got >= 12) {
            uint32_t h[3];
            memcpy(h, buf, sizeof(h));
            if ((size_t)got >= 12 + h[2]) {
                break;
            }
        }
    }
    if (got >= 12) {
        uint32_t h[3];
        memcpy(h, buf, sizeof(h));
        printf("%s_answer=frame-type-%u\n", what, h[0] & 0xffffu);
    }
    else {
        printf("%s_answer=%s\n", what, n == 0 || n < 0 ? "closed-without-answer" : "timeout");
    }
    close(fd);
}

static int cmd_relay_probe(const char *sock, long uid, int keep_dac)
{
    char payload[512], *p, req[600];
    size_t len;

    if (uid >= 0) {
        struct passwd *pw = getpwuid((uid_t)uid);
        if (drop_to((uid_t)uid, pw ? pw->pw_gid : (gid_t)uid, keep_dac) < 0) {
            die("cannot become uid %ld: %s", uid, strerror(errno));
        }
    }
    printf("uid=%d\neuid=%d\n", (int)getuid(), (int)geteuid());
    len = frame(req, 3 /* SSE_OP_LIST */, "", 0);
    probe_one(sock, "list", req, len);
    p = payload;
    put_str(&p, "localhost/probe");   /* the key of channel probe */
    put_str(&p, "");
    put_str(&p, "injected");
    put_str(&p, "");
    put_str(&p, "published by a stranger");
    put_u32(&p, 10);
    put_u32(&p, 60);
    put_str(&p, "");                  /* no hub tail (sse_wire.c) */
    len = frame(req, 2 /* SSE_OP_PUBLISH */, payload, (size_t)(p - payload));
    probe_one(sock, "publish", req, len);
    return 0;
}

/* --- main -------------------------------------------------------------------- */

static void parse_mix(const char *s)
{
    char *d = strdup(s), *tok, *save;
    int m;

    memset(o_mix, 0, sizeof(o_mix));
    for (tok = strtok_r(d, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            die("bad --mix item %s", tok);
        }
        *eq = '\0';
        for (m = 0; m < 4 && strcmp(tok, mode_name[m]); m++) {
        }
        if (m == 4) {
            die("unknown mode %s", tok);
        }
        o_mix[m] = atoi(eq + 1);
    }
    free(d);
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    const char *sock = NULL;
    long as_uid = -1;
    int keep_dac = 0, i;
    struct rlimit rl;

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && ++i)
        if (ARG("-p")) o_port = atoi(v);
        else if (ARG("-n")) o_n = atol(v);
        else if (ARG("-c")) o_conc = atoi(v);
        else if (ARG("-T")) o_time = atof(v);
        else if (ARG("--mix")) parse_mix(v);
        else if (ARG("--chans")) o_chans = atoi(v);
        else if (ARG("--pub-ms")) o_pub_ms = atoi(v);
        else if (ARG("--pub-size")) o_pub_size = atoi(v);
        else if (ARG("--path")) o_path = v;
        else if (ARG("--stop")) o_stop = (pid_t)atoi(v);
        else if (ARG("--ppid")) o_ppid = (pid_t)atoi(v);
        else if (ARG("--run")) o_run = atof(v);
        else if (ARG("--src")) o_nsrc = atoi(v);
        else if (ARG("--hold-ms")) o_hold_ms = atoi(v);
        else if (ARG("--vanish-pub")) sscanf(v, "%d/%d", &o_vanish_size, &o_vanish_every);
        else if (ARG("--vanish-ms")) sscanf(v, "%d-%d", &o_vanish_min, &o_vanish_max);
        else if (ARG("--as-uid")) as_uid = atol(v);
        else if (ARG("--pub-port")) o_pub_port = atoi(v);
        else if (ARG("--events")) o_events = atoi(v);
        else if (ARG("--attack")) o_attack = atol(v);
        else if (ARG("--attack-rate")) o_attack_rate = atof(v);
        else if (ARG("--event-size")) o_ev_size = atoi(v);
        else if (ARG("--rcvbuf")) o_rcvbuf = atoi(v);
        else if (ARG("--graceful")) o_graceful = (pid_t)atoi(v);
        else if (!strcmp(a, "--keep-dac")) keep_dac = 1;
        else if (ARG("--watch")) {
            char *d = strdup(v), *tok, *save;
            for (tok = strtok_r(d, ",", &save); tok && o_nwatch < 64;
                 tok = strtok_r(NULL, ",", &save)) {
                o_watch[o_nwatch++] = (pid_t)atoi(tok);
            }
        }
        else if (!sock && a[0] != '-') sock = a;
        else die("unknown argument %s", a);
#undef ARG
    }
    if (o_conc < 1 || o_chans < 1 || o_chans > 32) {
        die("bad -c or --chans");
    }
    if (!strcmp(cmd, "relay-probe")) {
        if (!sock) {
            die("relay-probe needs the socket path");
        }
        return cmd_relay_probe(sock, as_uid, keep_dac);
    }
    if (!o_port) {
        die("-p PORT is required");
    }
    if (!strcmp(cmd, "churn")) {
        return cmd_churn();
    }
    if (!strncmp(cmd, "tls-", 4)) {
        if (o_events < 1 || o_events > 100000 || o_ev_size < 0 || o_ev_size > 65536) {
            die("bad --events or --event-size");
        }
        tls_init();
        if (!strcmp(cmd, "tls-churn")) {
            return cmd_tls_churn();
        }
        if (!strcmp(cmd, "tls-fanout")) {
            return cmd_tls_fanout();
        }
        if (!strcmp(cmd, "tls-hold")) {
            return cmd_tls_hold();
        }
        if (!strcmp(cmd, "tls-slow")) {
            return cmd_tls_slow();
        }
    }
    if (!strcmp(cmd, "hold")) {
        return cmd_hold();
    }
    if (!strcmp(cmd, "hostile")) {
        return cmd_hostile();
    }
    if (!strcmp(cmd, "graceful")) {
        if (!o_ppid) {
            die("graceful needs --ppid");
        }
        return cmd_graceful();
    }
    die("usage: ssefault churn|hold|hostile|graceful|relay-probe|tls-churn|tls-fanout|tls-hold|tls-slow ... (see the top of ssefault.c)");
    return 2;
}

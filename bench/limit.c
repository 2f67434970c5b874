/*
 * limit.c: the ceiling for fan-out, a server that does nothing but fan out.
 *
 * It accepts connections on one loopback port.  Any request that is not a
 * POST becomes a subscriber: it is answered at once with a fixed
 * text/event-stream header (and the comment ": ok") and kept.  A POST is a
 * publish: its body (minus a leading "data=") becomes one event, serialized
 * once, and the loop writes that same buffer to every subscriber socket,
 * one write() per subscriber, then answers {"subscribers":N} on the
 * keep-alive connection.  No channels, no parsing beyond finding the end of
 * the request, one thread per process.  Its deliveries per second, measured
 * by ssebench exactly as the real servers are, is what a naive server
 * achieves on this machine: the baseline mod_sse is compared against.
 *
 * With -w K it runs K such processes (so that it may use as many cores, and
 * hold as many connections, as a server with K children): each has its own
 * SO_REUSEPORT listener, so the kernel spreads connections evenly, and the
 * process that receives a publish hands the serialized event to the others
 * through one SOCK_SEQPACKET socket each before it writes to its own
 * subscribers.  The answer counts subscribers in all processes (a shared
 * counter per process).
 *
 * Usage: limit -p PORT [-b 127.0.0.1] [-w K] [-T SECONDS]   (stops after
 * SECONDS, default 3600, or on SIGTERM/SIGINT)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQ_CAP  (64 * 1024)
#define MAX_WORKERS 64

static const char SSE_HEAD[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    "Cache-Control: no-cache\r\nConnection: close\r\n\r\n: ok\n\n";

typedef struct {
    int fd;
    int is_sub;
    int sub_idx;            /* position in subs[] */
    char *in;               /* request bytes (publishers and new connections) */
    int inlen;
    char *out;              /* unsent bytes */
    size_t outlen, outoff, outcap;
} conn_t;

static conn_t **conns;      /* by fd */
static int nconns_cap;
static int *subs;           /* fds of subscribers */
static int nsubs, subs_cap;
static int ep;
static volatile sig_atomic_t stop;
static unsigned long long next_id = 1;
static int nworkers = 1, self;
static int ipc_in[MAX_WORKERS], ipc_out[MAX_WORKERS];  /* [j]: to worker j */
static volatile int *sub_counts;                        /* shared, per worker */

static void on_signal(int sig) { (void)sig; stop = 1; }

static void conn_close(conn_t *c)
{
    if (c->is_sub) {
        int last = subs[--nsubs];
        subs[c->sub_idx] = last;
        conns[last]->sub_idx = c->sub_idx;
        sub_counts[self] = nsubs;
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    free(c->in);
    free(c->out);
    free(c);
}

/* Queues what a non-blocking write could not send. */
static int conn_queue(conn_t *c, const char *p, size_t n)
{
    if (c->outlen - c->outoff + n > 64u * 1024 * 1024)
        return -1;                      /* a client that never reads */
    if (c->outoff && c->outoff == c->outlen)
        c->outoff = c->outlen = 0;
    if (c->outlen + n > c->outcap) {
        size_t cap = c->outcap ? c->outcap : 4096;
        while (cap < c->outlen + n) cap *= 2;
        c->out = realloc(c->out, cap);
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, p, n);
    if (c->outlen == c->outoff) {
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.fd = c->fd };
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    c->outlen += n;
    return 0;
}

/* Writes p to c now if nothing is queued; queues the rest.  -1: close it. */
static int conn_send(conn_t *c, const char *p, size_t n)
{
    if (c->outlen == c->outoff) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) return -1;
            w = 0;
        }
        p += w;
        n -= (size_t)w;
        if (!n) return 0;
    }
    return conn_queue(c, p, n);
}

static void conn_flush(conn_t *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
        if (w < 0) {
            if (errno == EAGAIN) return;
            if (errno == EINTR) continue;
            conn_close(c);
            return;
        }
        c->outoff += (size_t)w;
    }
    c->outoff = c->outlen = 0;
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = c->fd };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* One buffer, one write per subscriber of this process. */
static void write_all_subs(const char *ev, size_t n)
{
    for (int i = 0; i < nsubs;) {
        conn_t *c = conns[subs[i]];
        if (conn_send(c, ev, n) < 0) { conn_close(c); continue; }
        i++;
    }
}

/* The publish: serialize once, pass it to the other processes, write it. */
static void fan_out(conn_t *pub, const char *body, int blen)
{
    if (blen >= 5 && !memcmp(body, "data=", 5)) { body += 5; blen -= 5; }
    char *ev = malloc((size_t)blen + 64);
    int n = sprintf(ev, "id: %llu\ndata: ", next_id++);
    memcpy(ev + n, body, (size_t)blen);
    n += blen;
    ev[n++] = '\n';
    ev[n++] = '\n';
    for (int j = 0; j < nworkers; j++) {
        if (j == self) continue;
        while (send(ipc_out[j], ev, (size_t)n, 0) < 0 && errno == EINTR) {}
    }
    write_all_subs(ev, (size_t)n);
    free(ev);
    int total = 0;
    for (int j = 0; j < nworkers; j++) total += sub_counts[j];
    char ans[160], js[64];
    int jl = snprintf(js, sizeof(js), "{\"subscribers\":%d}", total);
    int al = snprintf(ans, sizeof(ans), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n%s", jl, js);
    if (conn_send(pub, ans, (size_t)al) < 0) conn_close(pub);
}

/* Handles complete requests in c->in; returns -1 if c was closed. */
static int conn_requests(conn_t *c)
{
    for (;;) {
        char *end = memmem(c->in, (size_t)c->inlen, "\r\n\r\n", 4);
        if (!end) return 0;
        int hlen = (int)(end - c->in) + 4;
        if (c->inlen < 4 || memcmp(c->in, "POST", 4)) {
            /* a subscriber: the rest of its bytes are ignored */
            if (nsubs == subs_cap) {
                subs_cap = subs_cap ? subs_cap * 2 : 1024;
                subs = realloc(subs, sizeof(int) * (size_t)subs_cap);
            }
            c->is_sub = 1;
            c->sub_idx = nsubs;
            subs[nsubs++] = c->fd;
            sub_counts[self] = nsubs;
            free(c->in);
            c->in = NULL;
            c->inlen = 0;
            if (conn_send(c, SSE_HEAD, sizeof(SSE_HEAD) - 1) < 0) { conn_close(c); return -1; }
            return 0;
        }
        long clen = 0;
        for (char *p = c->in; p < end; p++) {
            if (*p == '\n' && !strncasecmp(p + 1, "content-length:", 15)) {
                clen = atol(p + 16);
                break;
            }
        }
        if (clen < 0 || clen > REQ_CAP - 8192) { conn_close(c); return -1; }
        if (c->inlen < hlen + clen) return 0;
        fan_out(c, c->in + hlen, (int)clen);
        if (!conns[c->fd] || conns[c->fd] != c) return -1;
        int used = hlen + (int)clen;
        memmove(c->in, c->in + used, (size_t)(c->inlen - used));
        c->inlen -= used;
    }
}

static void conn_read(conn_t *c)
{
    if (c->is_sub) {
        char buf[4096];
        ssize_t r = read(c->fd, buf, sizeof(buf));
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) conn_close(c);
        return;
    }
    if (!c->in) c->in = malloc(REQ_CAP);
    ssize_t r = read(c->fd, c->in + c->inlen, (size_t)(REQ_CAP - c->inlen));
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { conn_close(c); return; }
    if (r < 0) return;
    c->inlen += (int)r;
    if (conn_requests(c) < 0) return;
    if (c->inlen == REQ_CAP) conn_close(c);     /* no end of headers in 64 KiB */
}

/* One process's loop: accept, answer, fan out; returns at the deadline or
 * on a signal. */
static int worker(const struct sockaddr_in *sa, double lifetime)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    nconns_cap = (int)rl.rlim_cur + 16;
    conns = calloc((size_t)nconns_cap, sizeof(conn_t *));

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(ls, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(ls, 4096) < 0) {
        perror("limit: bind/listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = { .events = EPOLLIN, .data.fd = ls };
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    int ipc = ipc_in[self];
    if (nworkers > 1) {
        struct epoll_event iev = { .events = EPOLLIN, .data.fd = ipc };
        epoll_ctl(ep, EPOLL_CTL_ADD, ipc, &iev);
    }
    char *ibuf = malloc(REQ_CAP + 128);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct epoll_event evs[512];
    while (!stop) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) > lifetime) break;
        int n = epoll_wait(ep, evs, 512, 500);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                for (;;) {
                    int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) break;
                    if (cfd >= nconns_cap) { close(cfd); continue; }
                    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    conn_t *c = calloc(1, sizeof(conn_t));
                    c->fd = cfd;
                    conns[cfd] = c;
                    struct epoll_event ev = { .events = EPOLLIN, .data.fd = cfd };
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
                }
                continue;
            }
            if (nworkers > 1 && fd == ipc) {
                ssize_t r = recv(ipc, ibuf, REQ_CAP + 128, MSG_DONTWAIT);
                if (r > 0) write_all_subs(ibuf, (size_t)r);
                continue;
            }
            conn_t *c = conns[fd];
            if (!c) continue;
            if (evs[i].events & EPOLLOUT) {
                conn_flush(c);
                if (conns[fd] != c) continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(c);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int port = 0, opt;
    const char *bind_addr = "127.0.0.1";
    double lifetime = 3600;
    while ((opt = getopt(argc, argv, "p:b:T:w:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'b': bind_addr = optarg; break;
        case 'T': lifetime = atof(optarg); break;
        case 'w': nworkers = atoi(optarg); break;
        default: port = 0; break;
        }
    }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (port <= 0 || nworkers < 1 || nworkers > MAX_WORKERS
        || inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1
        || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "usage: limit -p PORT [-b 127.x.x.x] [-w PROCESSES] [-T SECONDS]\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    sub_counts = mmap(NULL, sizeof(int) * MAX_WORKERS, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sub_counts == MAP_FAILED) { perror("limit: mmap"); return 1; }
    if (nworkers == 1)
        return worker(&sa, lifetime);
    for (int j = 0; j < nworkers; j++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
            perror("limit: socketpair");
            return 1;
        }
        int big = 4 * 1024 * 1024;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
        ipc_out[j] = sv[0];
        ipc_in[j] = sv[1];
    }
    pid_t kids[MAX_WORKERS];
    for (int j = 0; j < nworkers; j++) {
        kids[j] = fork();
        if (kids[j] < 0) { perror("limit: fork"); stop = 1; break; }
        if (kids[j] == 0) {
            self = j;
            _exit(worker(&sa, lifetime));
        }
    }
    /* The parent only waits; a signal or the deadline stops the workers. */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int left = nworkers;
    while (left > 0) {
        if (stop) {
            for (int j = 0; j < nworkers; j++) if (kids[j] > 0) kill(kids[j], SIGTERM);
            stop = 0;
        }
        int st;
        pid_t w = waitpid(-1, &st, WNOHANG);
        if (w > 0) { left--; continue; }
        if (w < 0 && errno == ECHILD) break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) > lifetime + 5)
            for (int j = 0; j < nworkers; j++) if (kids[j] > 0) kill(kids[j], SIGKILL);
        usleep(50000);
    }
    return 0;
}

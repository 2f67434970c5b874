/*
 * bench/reload.c: W7, a graceful restart under N streams (SSERestartSpread).
 *
 *   reload -p PORT -n N -P HTTPD_PIDFILE [-u /stream?channel=w7]
 *          [-U /pub?channel=w7] [-i PUBLISH_MS] [-s SRC_ADDRS]
 *
 * Opens N streams (one epoll loop, non-blocking), publishes one numbered
 * event every PUBLISH_MS on another connection (keep-alive) the whole
 * time, sends the httpd parent SIGUSR1 (a graceful restart) and then does
 * what an EventSource does: when a stream ends, it reconnects after the
 * last retry: the stream sent (3000 ms, a browser's default, if none),
 * with Last-Event-ID: its last id; a refused or failed reconnect is tried
 * again after the same delay.  Every event's data is its number: each
 * stream must see 1, 2, 3, ... with no gap and no repeat across its
 * reconnects.  When every stream is back it publishes for one more
 * second, waits until every stream has the last event (10 s at most) and
 * prints key=value lines: reconnect times after the restart (p50, p99,
 * all back), the busiest second (count and share), close times, events
 * published, lost (gaps and missing at the end) and repeated.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { S_IDLE, S_CONNECTING, S_HEAD, S_BODY, S_WAIT };

typedef struct {
    int fd, state;
    char id[64];            /* last id seen */
    char cur_id[64];
    long cur_data;          /* the event being read: its data, -1 none */
    long next;              /* the number expected next */
    long lost, dup;
    int retry_ms;           /* last retry: */
    int closes;             /* times the server ended it */
    uint64_t closed_at;     /* ns: the restart's close, 0 none */
    uint64_t back_at;       /* ns: open again after it */
    uint64_t reconnect_at;  /* ns: when to reconnect (S_WAIT) */
    char buf[8192];
    int len;
    int src;
} sub_t;

static struct sockaddr_in dst;
static const char *path = "/stream?channel=w7", *pub_path = "/pub?channel=w7";
static char srcs[8][32];
static int nsrc = 1;
static sub_t *subs;
static int N, ep;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static int conn(int src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };

    if (fd < 0) {
        return -1;
    }
    if (srcs[src][0]) {
        inet_pton(AF_INET, srcs[src], &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0
        && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void sub_open(sub_t *s)
{
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = s };

    s->fd = conn(s->src);
    s->len = 0;
    s->cur_data = -1;
    s->cur_id[0] = 0;
    if (s->fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
        if (s->fd >= 0) close(s->fd);
        s->fd = -1;
        s->state = S_WAIT;
        s->reconnect_at = now_ns() + (uint64_t)s->retry_ms * 1000000ull;
        return;
    }
    s->state = S_CONNECTING;
}

static void sub_end(sub_t *s, int by_server)
{
    uint64_t t = now_ns();

    if (s->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        s->fd = -1;
    }
    if (by_server && s->state == S_BODY) {
        s->closes++;
        if (!s->closed_at) {
            s->closed_at = t;
        }
    }
    s->state = S_WAIT;
    s->reconnect_at = t + (uint64_t)s->retry_ms * 1000000ull;
}

static void sub_dispatch(sub_t *s)
{
    if (s->cur_data >= 0) {
        if (s->cur_data == s->next) {
            s->next++;
        }
        else if (s->cur_data > s->next) {
            s->lost += s->cur_data - s->next;
            s->next = s->cur_data + 1;
        }
        else {
            s->dup++;
        }
        if (s->cur_id[0]) {
            memcpy(s->id, s->cur_id, sizeof(s->id));
        }
    }
    s->cur_data = -1;
    s->cur_id[0] = 0;
}

static void sub_line(sub_t *s, char *p, int n)
{
    if (n == 0) {
        sub_dispatch(s);
    }
    else if (n > 6 && !memcmp(p, "data: ", 6)) {
        s->cur_data = strtol(p + 6, NULL, 10);
    }
    else if (n > 4 && !memcmp(p, "id: ", 4) && n - 4 < (int)sizeof(s->id)) {
        memcpy(s->cur_id, p + 4, (size_t)(n - 4));
        s->cur_id[n - 4] = 0;
    }
    else if (n > 7 && !memcmp(p, "retry: ", 7)) {
        s->retry_ms = atoi(p + 7);
    }
}

static void sub_read(sub_t *s, uint64_t t0)
{
    for (;;) {
        ssize_t r = recv(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - (size_t)s->len, 0);
        char *p, *e;

        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            sub_end(s, 1);
            return;
        }
        if (r < 0) {
            return;
        }
        s->len += (int)r;
        s->buf[s->len] = 0;
        p = s->buf;
        if (s->state == S_HEAD) {
            char *h = strstr(p, "\r\n\r\n");
            if (!h) {
                continue;
            }
            if (strncmp(p, "HTTP/1.1 200", 12)) {
                sub_end(s, 0);      /* refused: again after the delay */
                return;
            }
            s->state = S_BODY;
            if (t0 && s->closed_at && !s->back_at) {
                s->back_at = now_ns();
            }
            p = h + 4;
        }
        while ((e = memchr(p, '\n', (size_t)(s->buf + s->len - p)))) {
            int n = (int)(e - p);
            if (n && p[n - 1] == '\r') n--;
            sub_line(s, p, n);
            p = e + 1;
        }
        s->len -= (int)(p - s->buf);
        memmove(s->buf, p, (size_t)s->len);
        if (s->len >= (int)sizeof(s->buf) - 1) {
            s->len = 0;
        }
    }
}

static void sub_send(sub_t *s)
{
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n"
                     "Accept: text/event-stream\r\n%s%s%s\r\n", path,
                     s->id[0] ? "Last-Event-ID: " : "", s->id,
                     s->id[0] ? "\r\n" : "");
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };

    if (send(s->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        sub_end(s, 0);
        return;
    }
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
    s->state = S_HEAD;
}

/* --- the publisher: blocking, its own process --------------------------- */

static int pub_fd = -1;

static int pub_one(long seq)
{
    char body[64], req[512], ans[4096];
    int bl = snprintf(body, sizeof(body), "data=%ld", seq);
    int n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: localhost\r\n"
                     "Content-Type: application/x-www-form-urlencoded\r\n"
                     "Content-Length: %d\r\n\r\n%s", pub_path, bl, body);
    ssize_t r;
    int got = 0;

    for (int tries = 0; tries < 2; tries++) {
        if (pub_fd < 0) {
            pub_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (connect(pub_fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
                close(pub_fd);
                pub_fd = -1;
                return -1;
            }
        }
        if (send(pub_fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
            got = 0;
            while ((r = recv(pub_fd, ans + got, sizeof(ans) - 1 - (size_t)got, 0)) > 0) {
                char *h, *cl;
                got += (int)r;
                ans[got] = 0;
                if ((h = strstr(ans, "\r\n\r\n")) && (cl = strcasestr(ans, "Content-Length:"))
                    && got >= (h - ans) + 4 + atoi(cl + 15)) {
                    return strncmp(ans, "HTTP/1.1 200", 12) ? -1 : 0;
                }
            }
        }
        close(pub_fd);
        pub_fd = -1;
    }
    return -1;
}

/* Publishes 1, 2, ... every ms until it reads a byte on ctl; writes the
 * last number answered 200 back on res.  Refused ones are published again
 * (the same number), so the numbers answered 200 are 1..last. */
static void publisher(int ctl, int res, int ms)
{
    long seq = 1, fails = 0;
    char c;

    fcntl(ctl, F_SETFL, O_NONBLOCK);
    while (read(ctl, &c, 1) != 1) {
        if (pub_one(seq) == 0) {
            seq++;
        }
        else {
            fails++;
        }
        usleep((useconds_t)ms * 1000);
    }
    seq--;
    if (write(res, &seq, sizeof(seq)) < 0 || write(res, &fails, sizeof(fails)) < 0) {
        _exit(1);
    }
    _exit(0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int port = 0, pub_ms = 20, opt, i;
    const char *pidfile = NULL;
    char *srclist = NULL;
    struct epoll_event evs[512];
    int ctl[2], res[2];
    pid_t pub, httpd = 0;
    uint64_t t0 = 0, t_all = 0, deadline;
    long last = 0, pub_fails = 0;

    while ((opt = getopt(argc, argv, "p:n:P:u:U:i:s:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'n': N = atoi(optarg); break;
        case 'P': pidfile = optarg; break;
        case 'u': path = optarg; break;
        case 'U': pub_path = optarg; break;
        case 'i': pub_ms = atoi(optarg); break;
        case 's': srclist = optarg; break;
        default: die("usage: reload -p PORT -n N -P PIDFILE [-u PATH] [-U PUBPATH] [-i MS] [-s SRC,SRC]");
        }
    }
    if (!port || N <= 0 || !pidfile) {
        die("usage: reload -p PORT -n N -P PIDFILE [-u PATH] [-U PUBPATH] [-i MS] [-s SRC,SRC]");
    }
    if (srclist) {
        char *tok, *save = NULL;
        nsrc = 0;
        for (tok = strtok_r(srclist, ",", &save); tok && nsrc < 8;
             tok = strtok_r(NULL, ",", &save)) {
            snprintf(srcs[nsrc++], sizeof(srcs[0]), "%s", tok);
        }
    }
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    signal(SIGPIPE, SIG_IGN);
    {
        FILE *f = fopen(pidfile, "r");
        if (!f || fscanf(f, "%d", &httpd) != 1) die("reload: cannot read %s", pidfile);
        fclose(f);
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    subs = calloc((size_t)(unsigned)N, sizeof(*subs));
    for (i = 0; i < N; i++) {
        subs[i].fd = -1;
        subs[i].next = 1;
        subs[i].retry_ms = 3000;
        subs[i].src = i % nsrc;
    }
    /* open them all, 500 at a time */
    {
        int opened = 0, up = 0;
        deadline = now_ns() + 120000000000ull;
        while (up < N && now_ns() < deadline) {
            while (opened < N && opened - up < 500) {
                sub_open(&subs[opened++]);
            }
            int n = epoll_wait(ep, evs, 512, 100);
            for (int k = 0; k < n; k++) {
                sub_t *s = evs[k].data.ptr;
                if (s->state == S_CONNECTING) sub_send(s);
                else if (s->state == S_HEAD || s->state == S_BODY) {
                    int was = s->state;
                    sub_read(s, 0);
                    if (was == S_HEAD && s->state == S_BODY) up++;
                }
            }
            for (i = 0; i < opened; i++) {
                if (subs[i].state == S_WAIT) die("reload: stream %d refused while opening", i);
            }
        }
        if (up < N) die("reload: only %d of %d streams opened", up, N);
    }
    if (pipe(ctl) < 0 || pipe(res) < 0) die("pipe");
    pub = fork();
    if (pub == 0) {
        close(ctl[1]);
        close(res[0]);
        publisher(ctl[0], res[1], pub_ms);
    }
    close(ctl[0]);
    close(res[1]);
    deadline = now_ns() + 2000000000ull;        /* 2 s of events first */
    for (;;) {
        uint64_t now = now_ns();
        int n, back = 0;

        if (!t0 && now >= deadline) {
            t0 = now_ns();
            kill(httpd, SIGUSR1);
        }
        n = epoll_wait(ep, evs, 512, 10);
        for (int k = 0; k < n; k++) {
            sub_t *s = evs[k].data.ptr;
            if (s->state == S_CONNECTING) sub_send(s);
            else if (s->state == S_HEAD || s->state == S_BODY) sub_read(s, t0);
        }
        now = now_ns();
        for (i = 0; i < N; i++) {
            sub_t *s = &subs[i];
            if (s->state == S_WAIT && now >= s->reconnect_at) sub_open(s);
            back += s->closed_at && s->back_at;
        }
        if (t0 && back == N && !t_all) {
            t_all = now;
            deadline = now + 1000000000ull;     /* one more second */
        }
        if (t_all && now >= deadline) break;
        if (t0 && now - t0 > 120000000000ull) break;     /* 2 minutes at most */
    }
    if (write(ctl[1], "x", 1) < 0 || read(res[0], &last, sizeof(last)) != sizeof(last)
        || read(res[0], &pub_fails, sizeof(pub_fails)) != sizeof(pub_fails)) {
        die("reload: the publisher did not answer");
    }
    /* until each stream has every event (10 s at most) */
    deadline = now_ns() + 10000000000ull;
    for (;;) {
        int behind = 0;
        for (i = 0; i < N; i++) behind += subs[i].next <= last;
        if (!behind || now_ns() > deadline) break;
        int n = epoll_wait(ep, evs, 512, 50);
        for (int k = 0; k < n; k++) {
            sub_t *s = evs[k].data.ptr;
            if (s->state == S_CONNECTING) sub_send(s);
            else if (s->state == S_HEAD || s->state == S_BODY) sub_read(s, t0);
        }
        uint64_t now = now_ns();
        for (i = 0; i < N; i++) {
            if (subs[i].state == S_WAIT && now >= subs[i].reconnect_at) sub_open(&subs[i]);
        }
    }
    {
        uint64_t *rt = calloc((size_t)(unsigned)N, sizeof(*rt)), *ct = calloc((size_t)(unsigned)N, sizeof(*ct));
        long lost = 0, dup = 0, missing = 0, nb = 0, nc = 0, secs, best = 0, bestsec = 0;
        long *per = NULL;

        for (i = 0; i < N; i++) {
            sub_t *s = &subs[i];
            lost += s->lost;
            dup += s->dup;
            if (s->next <= last) missing += last - s->next + 1;
            if (s->closed_at) ct[nc++] = s->closed_at - t0;
            if (s->back_at) rt[nb++] = s->back_at - t0;
        }
        qsort(rt, (size_t)nb, sizeof(*rt), cmp_u64);
        qsort(ct, (size_t)nc, sizeof(*ct), cmp_u64);
        secs = nb ? (long)(rt[nb - 1] / 1000000000ull) + 1 : 1;
        per = calloc((size_t)secs, sizeof(*per));
        for (i = 0; i < nb; i++) per[rt[i] / 1000000000ull]++;
        for (i = 0; i < secs; i++) if (per[i] > best) { best = per[i]; bestsec = i; }
        printf("streams=%d\nclosed=%ld\nreconnected=%ld\n", N, nc, nb);
        printf("close_p50_ms=%.0f\nclose_last_ms=%.0f\n",
               nc ? ct[nc / 2] / 1e6 : -1, nc ? ct[nc - 1] / 1e6 : -1);
        printf("reconnect_p50_ms=%.0f\nreconnect_p99_ms=%.0f\nreconnect_all_ms=%.0f\n",
               nb ? rt[nb / 2] / 1e6 : -1, nb ? rt[(nb * 99) / 100 < nb ? (nb * 99) / 100 : nb - 1] / 1e6 : -1,
               nb ? rt[nb - 1] / 1e6 : -1);
        printf("busiest_second=%ld\nbusiest_count=%ld\nbusiest_share=%.3f\n",
               bestsec, best, nb ? (double)best / (double)nb : 0);
        printf("published=%ld\npublish_refused=%ld\nlost=%ld\nmissing=%ld\nrepeated=%ld\n",
               last, pub_fails, lost, missing, dup);
    }
    waitpid(pub, NULL, 0);
    return 0;
}

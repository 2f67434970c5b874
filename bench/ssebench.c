/*
 * ssebench.c: load generator for Server-Sent Events servers.
 *
 * Opens N EventSource-style subscribers (HTTP/1.1 GET, Accept:
 * text/event-stream), parses their responses as a browser would (status
 * line, headers, chunked framing if any, then the event stream: id, event,
 * data and retry fields, comments, a blank line dispatches, LF, CRLF or CR
 * line ends), publishes events with HTTP POST on keep-alive connections and
 * measures: connect rate, publish rate and latency, deliveries per second,
 * publish-to-receive latency per delivery, and the server's memory, threads
 * and CPU time (from /proc, summed over the server's process tree).
 *
 * Latency is taken twice per delivery: when the bytes arrived in the
 * subscriber's socket (the kernel's receive timestamp, SO_TIMESTAMPING: what
 * the server is responsible for) and when this tool read them (which adds
 * the time the client waited for a CPU it shares with the server).
 *
 * Every event's data is "CHAN.SEQ.NS.xxx": the channel's index, a per-channel
 * sequence number and the CLOCK_MONOTONIC time at which its POST was
 * written.  A subscriber checks that it receives every event of its channel
 * exactly once and in order; the run ends by saying so or by counting what
 * was lost, duplicated, reordered or misdelivered.  A channel is published
 * by one publisher connection that waits for each answer before it sends
 * the next event, so the order the server must keep is well defined.
 *
 * Shape: the main process forks one or more subscriber processes (a process
 * may hold at most ~20,000 descriptors, a source address ~28,000 ports to
 * one destination), each a single-threaded epoll loop that talks to the main
 * process over a socketpair.  The main process runs the publishers, polls
 * the server's channel info until every subscriber is counted, publishes,
 * then tells the subscriber processes how many events each channel got and
 * collects their counts and latency histograms.  Every phase has a deadline;
 * the tool always stops by itself.
 *
 * With --tls every connection (subscribers, publishers, the count polls)
 * speaks HTTPS (OpenSSL, HTTP/1.1, the server's certificate not verified):
 * the TLS handshake is part of a subscriber's connect time, and the
 * kernel's receive stamp is taken by the socket reads under OpenSSL (a
 * BIO of our own), so arrival latency keeps its meaning.
 *
 * With -t hub the server is a Mercure hub: channel C is the topic
 * https://example.com/cC/NAME (NAME: the run's channel name), a subscriber
 * is GET HUB?topic=... (or, for the last --hub-templates of them, the URI
 * template https://example.com/cC/{id}, which matches its channel's topic
 * only), a publish is a form POST (topic=...&data=...) with a bearer token
 * signed at start-up (HS256, --hub-key), answered by the update's id.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

#define MAX_PROCS    64
#define MAX_SRC      64
#define MAX_PORTS    16     /* --sub-ports, --pub-ports, --server-pid lists */
#define LINE_CAP     512    /* a stream line longer than this is truncated */
#define DATA_CAP     128    /* data bytes kept per event (the prefix we parse) */
#define HDR_CAP      4096   /* response header block */
#define BODY_KEEP    4096   /* publish/info answer bytes kept for parsing */
#define RBUF_SIZE    (256 * 1024)

/* ---------------------------------------------------------------- time */

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
    fprintf(stderr, "ssebench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* ----------------------------------------------------------- histogram */

/* Log-linear histogram of nanoseconds: 64 buckets per power of two (1.6%
 * resolution), mergeable by adding counts, so subscriber processes send
 * theirs to the main process. */
#define HB      6
#define HBUCKETS ((64 - HB) * (1 << HB) + (1 << (HB + 1)))

typedef struct {
    uint64_t count, max, min, sum;
    uint64_t b[HBUCKETS];
} hist_t;

static int hist_idx(uint64_t v)
{
    if (v < (1u << (HB + 1)))
        return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int e = msb - HB;
    return (e << HB) + (int)(v >> e);
}

static uint64_t hist_val(int i)
{
    if (i < (1 << (HB + 1)))
        return (uint64_t)i;
    int e = (i >> HB) - 1;
    uint64_t m = (uint64_t)(i - (e << HB));
    return (m << e) + ((1ull << e) >> 1);
}

static void hist_init(hist_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

static void hist_add(hist_t *h, uint64_t v)
{
    h->b[hist_idx(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max) h->max = v;
    if (v < h->min) h->min = v;
}

static void hist_merge(hist_t *to, const hist_t *from)
{
    for (int i = 0; i < HBUCKETS; i++)
        to->b[i] += from->b[i];
    to->count += from->count;
    to->sum += from->sum;
    if (from->max > to->max) to->max = from->max;
    if (from->min < to->min) to->min = from->min;
}

/* The value at quantile q (0..1), or 0 for an empty histogram. */
static uint64_t hist_q(const hist_t *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->count + 0.999999);
    if (want < 1) want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < HBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t v = hist_val(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* ------------------------------------------------------------- options */

typedef enum { MODE_HOLD, MODE_PUBLISH } mode_t_;
typedef enum { BODY_FORM, BODY_RAW, BODY_HUB } body_t;
typedef enum { AUTH_NONE, AUTH_QUERY, AUTH_HEADER } hub_auth_t;

static struct {
    const char *host;
    int port;
    const char *target;
    const char *sub_path, *pub_path, *info_path, *total_path;
    body_t body;
    mode_t_ mode;
    int nsubs, nchans, nevents, npubs, procs, conc, size;
    int random_chans;
    double hold_s, drain_s, timeout_s, ready_s;
    long interval_us;
    char *srcs[MAX_SRC];
    int nsrc;
    int server_pids[MAX_PORTS];     /* --server-pid: roots of the server trees */
    int nserver_pids;
    int redis_pid;                  /* --redis-pid: its CPU is given apart */
    int sub_ports[MAX_PORTS], nsub_ports;   /* --sub-ports: subscribers spread */
    int pub_ports[MAX_PORTS], npub_ports;   /* --pub-ports: publisher i on [i % n] */
    long retry_ms;                  /* --retry-ms: a refused publish is sent again */
    int kill_pid;                   /* --kill: SIGKILL it --kill-after s into publishing */
    double kill_after_s;
    const char *kv_path;
    const char *prefix;
    unsigned seed;
    int quiet;
    int tls;
    int hub;                /* -t hub: a Mercure hub */
    const char *hub_key;    /* HS256 secret of the publish (and subscribe) token */
    hub_auth_t hub_sub_auth;    /* how subscribers send the token (none: anonymous) */
    int hub_templates;      /* the last K subscribers subscribe with a URI template */
    int replay;             /* --replay E: E events to resume from, on channel nchans */
    int replay_after;       /* the resume starts once this many live events are answered */
} O = {
    .host = "127.0.0.1", .port = 0, .mode = MODE_PUBLISH,
    .nsubs = 100, .nchans = 1, .nevents = 10, .npubs = 1, .procs = 0,
    .conc = 200, .size = 0, .hold_s = 0, .drain_s = 10, .timeout_s = 300,
    .ready_s = 60, .seed = 1,
};

/* ------------------------------------------------- server process tree */

typedef struct {
    int nproc;
    long rss_kb, threads;
    double cpu_s;
} srvstat_t;

/* /proc/PID/stat read into buf; returns the ')' that ends the command name
 * (the fields follow it), or NULL. */
static char *proc_stat_fields(int pid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t len = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[len] = 0;
    return strrchr(buf, ')');
}

/* Sums RSS, threads and utime+stime over the nroots pids and all their
 * descendants. */
static int srv_sample(const int *roots, int nroots, srvstat_t *st)
{
    memset(st, 0, sizeof(*st));
    if (nroots <= 0 || roots[0] <= 0)
        return -1;
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int cap = 4096, n = 0;
    int *pid = malloc(cap * sizeof(int)), *ppid = malloc(cap * sizeof(int));
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char buf[512];
        char *rp = proc_stat_fields(atoi(de->d_name), buf, sizeof(buf));
        if (!rp) continue;
        int pp = 0;
        char state;
        if (sscanf(rp + 2, "%c %d", &state, &pp) != 2) continue;
        if (n == cap) {
            cap *= 2;
            pid = realloc(pid, cap * sizeof(int));
            ppid = realloc(ppid, cap * sizeof(int));
        }
        pid[n] = atoi(de->d_name);
        ppid[n] = pp;
        n++;
    }
    closedir(d);
    /* Mark the tree: repeat until no new member (trees here are shallow). */
    char *in = calloc(n, 1);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < nroots; r++)
            if (pid[i] == roots[r]) in[i] = 1;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < n; i++) {
            if (in[i]) continue;
            for (int j = 0; j < n; j++)
                if (in[j] && pid[j] == ppid[i]) { in[i] = 1; changed = 1; break; }
        }
    }
    long tck = sysconf(_SC_CLK_TCK);
    for (int i = 0; i < n; i++) {
        if (!in[i]) continue;
        char path[64], buf[2048];
        char *rp = proc_stat_fields(pid[i], buf, sizeof(buf));
        if (!rp) continue;
        unsigned long ut = 0, stt = 0;
        /* fields after ')': state(3) ppid pgrp session tty tpgid flags
         * minflt cminflt majflt cmajflt utime(14) stime(15) */
        if (sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &stt) == 2)
            st->cpu_s += (double)(ut + stt) / (double)tck;
        snprintf(path, sizeof(path), "/proc/%d/status", pid[i]);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        char line[256];
        while (fgets(line, sizeof(line), f)) {
            if (!strncmp(line, "VmRSS:", 6)) st->rss_kb += atol(line + 6);
            else if (!strncmp(line, "Threads:", 8)) st->threads += atol(line + 8);
        }
        fclose(f);
        st->nproc++;
    }
    free(in);
    free(pid);
    free(ppid);
    return st->nproc ? 0 : -1;
}

/* ---------------------------------------------------------- networking */

static struct sockaddr_in dst_addr;

/* Starts a non-blocking connect from src (NULL: any) to port (0: -p's).
 * Returns the fd or -1 with errno set. */
static int tcp_connect(const char *src, int port)
{
    struct sockaddr_in dst = dst_addr;
    if (port > 0)
        dst.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (src) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        inet_pton(AF_INET, src, &sa.sin_addr);
#ifdef IP_BIND_ADDRESS_NO_PORT
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#endif
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0
        && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Close without TIME_WAIT (RST): runs open and close tens of thousands of
 * connections, and the ports must be free for the next workload. */
static void close_rst(int fd)
{
    struct linger lg = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* ----------------------------------------------------------------- TLS */

/* With --tls every connection runs OpenSSL over a BIO of our own: its
 * reads use recvmsg and keep the kernel's receive stamp of the bytes read
 * (bio_stamp, CLOCK_REALTIME ns; 0: none), as plain reads do. */
static SSL_CTX *tls_ctx;
static BIO_METHOD *tls_bio_meth;
static int64_t bio_stamp;

static int tls_bio_read(BIO *b, char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    struct iovec iov = { buf, (size_t)len };
    char ctl[CMSG_SPACE(sizeof(struct scm_timestamping)) + 64];
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl, .msg_controllen = sizeof(ctl) };
    BIO_clear_retry_flags(b);
    ssize_t r = recvmsg(fd, &mh, 0);
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) BIO_set_retry_read(b);
        return -1;
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPING) {
            struct scm_timestamping st;
            memcpy(&st, CMSG_DATA(cm), sizeof(st));
            if (st.ts[0].tv_sec)
                bio_stamp = (int64_t)st.ts[0].tv_sec * 1000000000ll + st.ts[0].tv_nsec;
        }
    }
    return (int)r;
}

static int tls_bio_write(BIO *b, const char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t w = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) BIO_set_retry_write(b);
        return -1;
    }
    return (int)w;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b; (void)num; (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int tls_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void tls_init(void)
{
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx) die("SSL_CTX_new failed");
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);    /* self-signed, loopback */
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE
                     | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);   /* a full handshake each */
    tls_bio_meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ssebench socket");
    if (!tls_bio_meth) die("BIO_meth_new failed");
    BIO_meth_set_read(tls_bio_meth, tls_bio_read);
    BIO_meth_set_write(tls_bio_meth, tls_bio_write);
    BIO_meth_set_ctrl(tls_bio_meth, tls_bio_ctrl);
    BIO_meth_set_create(tls_bio_meth, tls_bio_create);
}

/* A client SSL object on fd, or NULL. */
static SSL *tls_new(int fd)
{
    SSL *ssl = SSL_new(tls_ctx);
    BIO *b = BIO_new(tls_bio_meth);
    if (!ssl || !b) {
        SSL_free(ssl);
        BIO_free(b);
        return NULL;
    }
    BIO_set_data(b, (void *)(intptr_t)fd);
    SSL_set_bio(ssl, b, b);
    SSL_set_connect_state(ssl);
    SSL_set_tlsext_host_name(ssl, "localhost");
    return ssl;
}

/* One step of a handshake: 1 done, 0 wants *ev (EPOLLIN or EPOLLOUT), -1 failed. */
static int tls_step(SSL *ssl, uint32_t *ev)
{
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    if (r == 1) return 1;
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ: *ev = EPOLLIN; return 0;
    case SSL_ERROR_WANT_WRITE: *ev = EPOLLOUT; return 0;
    default: return -1;
    }
}

/* Reads or writes through ssl (if any) or fd: bytes, 0 at the end of the
 * stream, -1 with errno EAGAIN (try again when readable/writable) or
 * another error. */
static ssize_t conn_read(int fd, SSL *ssl, void *buf, size_t len)
{
    if (!ssl) return read(fd, buf, len);
    ERR_clear_error();
    int r = SSL_read(ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (r > 0) return r;
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ: case SSL_ERROR_WANT_WRITE: errno = EAGAIN; return -1;
    case SSL_ERROR_ZERO_RETURN: return 0;
    default: if (!errno || errno == EAGAIN) errno = ECONNRESET; return -1;
    }
}

static ssize_t conn_write(int fd, SSL *ssl, const void *buf, size_t len)
{
    if (!ssl) return write(fd, buf, len);
    ERR_clear_error();
    int r = SSL_write(ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (r > 0) return r;
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ: case SSL_ERROR_WANT_WRITE: errno = EAGAIN; return -1;
    default: if (!errno || errno == EAGAIN) errno = EPIPE; return -1;
    }
}

static void chan_name(char *out, size_t cap, int c)
{
    snprintf(out, cap, "%s%d", O.prefix, c);
}

/* Expands a path template: each "%s" becomes the channel name. */
static void expand(char *out, size_t cap, const char *tmpl, int c)
{
    char name[64];
    chan_name(name, sizeof(name), c);
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < cap; p++) {
        if (p[0] == '%' && p[1] == 's') {
            o += (size_t)snprintf(out + o, cap - o, "%s", name);
            if (o >= cap) o = cap - 1;
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
}

/* ---------------------------------------------------------------- hub */

/* The token every hub request carries (publishers always, subscribers
 * with --hub-sub-auth): HS256, claims mercure.publish and .subscribe ["*"]. */
static char hub_jwt[512];

static size_t b64url(char *out, const unsigned char *in, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63]; out[o++] = tab[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18]; out[o++] = tab[(v >> 12) & 63]; out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = 0;
    return o;
}

static void hub_sign(void)
{
    static const char head[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    static const char claims[] = "{\"mercure\":{\"publish\":[\"*\"],\"subscribe\":[\"*\"]}}";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t o = b64url(hub_jwt, (const unsigned char *)head, sizeof(head) - 1);
    hub_jwt[o++] = '.';
    o += b64url(hub_jwt + o, (const unsigned char *)claims, sizeof(claims) - 1);
    if (!HMAC(EVP_sha256(), O.hub_key, (int)strlen(O.hub_key), (const unsigned char *)hub_jwt,
              o, mac, &maclen))
        die("HMAC failed");
    hub_jwt[o++] = '.';
    b64url(hub_jwt + o, mac, maclen);
}

/* Percent-encodes s (all but unreserved bytes) into out. */
static void url_enc(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
    }
    out[o] = 0;
}

/* Channel c's topic, or (tmpl) the URI template that matches it alone. */
static void hub_topic(char *out, size_t cap, int c, int tmpl)
{
    char name[64];
    chan_name(name, sizeof(name), c);
    if (tmpl) snprintf(out, cap, "https://example.com/c%d/{id}", c);
    else snprintf(out, cap, "https://example.com/c%d/%s", c, name);
}

/* The subscribe path of subscriber g on channel c. */
static void hub_sub_path(char *out, size_t cap, int g, int c)
{
    char topic[256], enc[768];
    hub_topic(topic, sizeof(topic), c, g >= O.nsubs - O.hub_templates);
    url_enc(enc, sizeof(enc), topic);
    snprintf(out, cap, "%s?topic=%s%s%s", O.sub_path, enc,
             O.hub_sub_auth == AUTH_QUERY ? "&authorization=" : "",
             O.hub_sub_auth == AUTH_QUERY ? hub_jwt : "");
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t r = read(fd, p, len);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* ------------------------------------------------ HTTP response reader */

/* Reads one HTTP/1.1 response: status line and headers, then a body framed
 * by Content-Length, chunked encoding or (for streams) nothing.  Keeps the
 * first BODY_KEEP bytes of a body. */
typedef enum { RS_HEAD, RS_BODY, RS_DONE } rs_state_t;
typedef enum { CK_SIZE, CK_EXT, CK_DATA, CK_DATA_CR, CK_TRAILER, CK_END } ck_state_t;

typedef struct {
    char *hbuf;             /* header bytes so far, NULL once parsed */
    int hlen;
    int status;
    int chunked, close, is_stream;
    long long clen;         /* -1: none */
    ck_state_t ck;
    uint64_t ck_left;
    int ck_trail_blank;
} resp_t;

static void resp_reset(resp_t *r)
{
    free(r->hbuf);
    memset(r, 0, sizeof(*r));
    r->clen = -1;
}

/* Parses the header block in r->hbuf[0..hlen).  Returns 0, or -1 when it is
 * not an HTTP response. */
static int resp_parse_head(resp_t *r)
{
    char *h = r->hbuf;
    h[r->hlen] = 0;
    if (strncmp(h, "HTTP/1.", 7) || r->hlen < 12)
        return -1;
    r->status = atoi(h + 9);
    char *line = strchr(h, '\n');
    while (line && *++line) {
        char *eol = strchr(line, '\n');
        if (!eol) break;
        char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            size_t nlen = (size_t)(colon - line);
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t') v++;
            if (nlen == 14 && !strncasecmp(line, "content-length", 14))
                r->clen = atoll(v);
            else if (nlen == 17 && !strncasecmp(line, "transfer-encoding", 17))
                r->chunked = !!strcasestr(v, "chunked") && strcasestr(v, "chunked") < eol;
            else if (nlen == 10 && !strncasecmp(line, "connection", 10))
                r->close = !strncasecmp(v, "close", 5);
            else if (nlen == 12 && !strncasecmp(line, "content-type", 12))
                r->is_stream = !strncasecmp(v, "text/event-stream", 17);
        }
        line = eol;
    }
    return 0;
}

/* Feeds header bytes.  Returns the number of bytes consumed (the rest is
 * body), or -1 on a malformed or oversized header block.  *done is set when
 * the block is complete. */
static int resp_feed_head(resp_t *r, const char *p, int n, int *done)
{
    *done = 0;
    if (!r->hbuf) {
        r->hbuf = malloc(HDR_CAP + 1);
        r->hlen = 0;
    }
    for (int i = 0; i < n; i++) {
        if (r->hlen >= HDR_CAP)
            return -1;
        r->hbuf[r->hlen++] = p[i];
        int L = r->hlen;
        if ((L >= 4 && !memcmp(r->hbuf + L - 4, "\r\n\r\n", 4))
            || (L >= 2 && !memcmp(r->hbuf + L - 2, "\n\n", 2))) {
            if (resp_parse_head(r) < 0)
                return -1;
            free(r->hbuf);
            r->hbuf = NULL;
            *done = 1;
            return i + 1;
        }
    }
    return n;
}

/* De-chunks in place: p[0..n) in, returns the payload length written to
 * the front of p; sets *end at the terminating chunk.  -1: bad framing. */
static int chunk_decode(resp_t *r, char *p, int n, int *end)
{
    int o = 0;
    *end = 0;
    for (int i = 0; i < n; i++) {
        char c = p[i];
        switch (r->ck) {
        case CK_SIZE:
            if (isxdigit((unsigned char)c)) {
                r->ck_left = r->ck_left * 16
                    + (uint64_t)(isdigit((unsigned char)c) ? c - '0' : (tolower(c) - 'a' + 10));
            } else if (c == ';' || c == ' ' || c == '\t') {
                r->ck = CK_EXT;
            } else if (c == '\r') {
                r->ck = CK_EXT;
            } else if (c == '\n') {
                r->ck = r->ck_left ? CK_DATA : CK_TRAILER;
                r->ck_trail_blank = 1;
            } else {
                return -1;
            }
            break;
        case CK_EXT:
            if (c == '\n') {
                r->ck = r->ck_left ? CK_DATA : CK_TRAILER;
                r->ck_trail_blank = 1;
            }
            break;
        case CK_DATA: {
            uint64_t take = (uint64_t)(n - i);
            if (take > r->ck_left) take = r->ck_left;
            memmove(p + o, p + i, (size_t)take);
            o += (int)take;
            i += (int)take - 1;
            r->ck_left -= take;
            if (!r->ck_left) r->ck = CK_DATA_CR;
            break;
        }
        case CK_DATA_CR:
            if (c == '\n') { r->ck = CK_SIZE; r->ck_left = 0; }
            else if (c != '\r') return -1;
            break;
        case CK_TRAILER:
            if (c == '\n') {
                if (r->ck_trail_blank) { r->ck = CK_END; *end = 1; return o; }
                r->ck_trail_blank = 1;
            } else if (c != '\r') {
                r->ck_trail_blank = 0;
            }
            break;
        case CK_END:
            *end = 1;
            return o;
        }
    }
    return o;
}

/* ============================================================ subscribers */

enum { S_CONNECTING, S_TLS, S_HEAD, S_STREAM, S_CLOSED };

typedef struct {
    int fd;
    int chan;
    uint8_t state;
    uint8_t cr;             /* last byte was CR: skip a following LF */
    uint8_t ltrunc;
    uint8_t has_data;
    uint8_t done;           /* got every expected event, or closed */
    uint16_t llen, dlen;
    uint32_t next_seq;      /* next expected sequence number on the channel */
    uint32_t got;
    uint64_t t_start;       /* connect started */
    resp_t *resp;           /* while reading headers; also chunked state */
    SSL *ssl;               /* --tls */
    char *line;             /* partial line carried between reads */
    char data[DATA_CAP];
} sub_t;

typedef struct {
    /* connect phase */
    int n_ok, n_fail, n_closed, n_badresp;
    uint64_t t_first_start, t_last_open;
    /* delivery */
    uint64_t deliveries, lost, dup, reorder, wrongchan, malformed, comments;
    uint64_t t_first_recv, t_last_recv;
    uint64_t incomplete_subs;
    int first_err;
    hist_t conn_lat;        /* connect start -> response headers */
    hist_t lat;             /* publish -> arrival in the socket (kernel stamp) */
    hist_t lat_read;        /* publish -> read by this tool */
    uint64_t stamped_reads, reads;
    /* --replay: arrival latency of the live events published while the
     * resuming stream was being replayed (lat_in), and of the others */
    hist_t lat_in, lat_out;
} sstats_t;

/* Control messages between the main process and subscriber processes. */
enum { M_READY = 1, M_EXPECT, M_STOP, M_RESULT, M_WINDOW };
typedef struct { int type; int n; } msg_t;

static sub_t *subs;
static int nsub_local, sub_base;
static sstats_t SS;
static uint32_t *expect_cnt;    /* per channel, after M_EXPECT */
static int have_expect;
static int n_done;              /* subscribers done, once have_expect */
static uint64_t recv_now;       /* time of the current read */
static uint64_t arrive_now;     /* kernel receive stamp of the read's bytes */
static int64_t real_to_mono;    /* CLOCK_MONOTONIC - CLOCK_REALTIME, ns */
/* --replay: every delivery's publish time and arrival latency, split at the
 * end by the replay's window (M_WINDOW) into SS.lat_in and SS.lat_out */
static uint64_t (*dlv_rec)[2];
static size_t dlv_n, dlv_cap;
static uint64_t replay_win[2];
static int have_window;
/* --replay: the resuming stream, in the main process (its figures in SS) */
static sub_t rsub;
static char rsub_req_fmt[2048];

static void sub_close(int ep, sub_t *s, int by_server)
{
    if (s->state == S_CLOSED)
        return;
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    if (s->ssl) { SSL_free(s->ssl); s->ssl = NULL; }
    close_rst(s->fd);
    s->fd = -1;
    if (by_server && s->state == S_STREAM)
        SS.n_closed++;
    s->state = S_CLOSED;
    if (!s->done) { s->done = 1; n_done++; }
    if (s->resp) { resp_reset(s->resp); free(s->resp); s->resp = NULL; }
    free(s->line);
    s->line = NULL;
}

/* Dispatches the event in s->data: checks it and records its latency. */
static void sub_dispatch(sub_t *s)
{
    s->has_data = 0;
    int len = s->dlen;
    s->dlen = 0;
    if (len && s->data[len - 1] == '\n')   /* the trailing LF of the data buffer */
        len--;
    char tmp[DATA_CAP + 1];
    memcpy(tmp, s->data, (size_t)len);
    tmp[len] = 0;
    char *e1, *e2, *e3;
    unsigned long ch = strtoul(tmp, &e1, 10);
    if (*e1 != '.') { SS.malformed++; return; }
    unsigned long seq = strtoul(e1 + 1, &e2, 10);
    if (*e2 != '.') { SS.malformed++; return; }
    unsigned long long ts = strtoull(e2 + 1, &e3, 10);
    if (*e3 != '.' && *e3 != 0) { SS.malformed++; return; }
    if ((int)ch != s->chan) { SS.wrongchan++; return; }
    SS.deliveries++;
    s->got++;
    if (seq == s->next_seq) {
        s->next_seq++;
    } else if (seq > s->next_seq) {
        SS.lost += seq - s->next_seq;      /* provisional: reorder shows as late */
        s->next_seq = (uint32_t)seq + 1;
    } else {
        SS.dup++;                           /* seen before or arrived late */
    }
    if (have_expect && !s->done && s->next_seq > expect_cnt[s->chan]) {
        s->done = 1;
        n_done++;
    }
    if (!SS.t_first_recv) SS.t_first_recv = recv_now;
    SS.t_last_recv = recv_now;
    hist_add(&SS.lat_read, recv_now > ts ? recv_now - ts : 0);
    hist_add(&SS.lat, arrive_now > ts ? arrive_now - ts : 0);
    if (O.replay && s != &rsub) {
        if (dlv_n == dlv_cap) {
            dlv_cap = dlv_cap ? dlv_cap * 2 : 65536;
            dlv_rec = realloc(dlv_rec, dlv_cap * sizeof(*dlv_rec));
            if (!dlv_rec) die("out of memory");
        }
        dlv_rec[dlv_n][0] = ts;
        dlv_rec[dlv_n][1] = arrive_now > ts ? arrive_now - ts : 0;
        dlv_n++;
    }
}

/* Interprets one complete line (without its end) per the WHATWG
 * event-stream rules. */
static void sub_line(sub_t *s, const char *p, int n)
{
    if (n == 0) {
        if (s->has_data)
            sub_dispatch(s);
        return;
    }
    if (p[0] == ':') {
        SS.comments++;
        return;
    }
    const char *colon = memchr(p, ':', (size_t)n);
    int flen = colon ? (int)(colon - p) : n;
    const char *v = colon ? colon + 1 : p + n;
    int vlen = (int)(p + n - v);
    if (vlen > 0 && *v == ' ') { v++; vlen--; }
    if (flen == 4 && !memcmp(p, "data", 4)) {
        int room = DATA_CAP - s->dlen;
        int take = vlen + 1 <= room ? vlen : room - 1;
        if (take > 0) {
            memcpy(s->data + s->dlen, v, (size_t)take);
            s->dlen += (uint16_t)take;
        }
        if (s->dlen < DATA_CAP) s->data[s->dlen++] = '\n';
        s->has_data = 1;
    }
    /* "id", "event" and "retry" are valid and need nothing here: events are
     * identified by their data, and the stream is never resumed. */
}

/* Feeds stream bytes (already de-chunked) to the line splitter. */
static void sub_feed(sub_t *s, const char *p, int n)
{
    const char *end = p + n;
    if (s->cr && p < end && *p == '\n')
        p++;
    s->cr = 0;
    while (p < end) {
        const char *q = p;
        while (q < end && *q != '\n' && *q != '\r')
            q++;
        if (q == end) {             /* partial line: keep it */
            if (!s->line) s->line = malloc(LINE_CAP);
            int take = (int)(q - p);
            if (s->llen + take > LINE_CAP) { take = LINE_CAP - s->llen; s->ltrunc = 1; }
            memcpy(s->line + s->llen, p, (size_t)take);
            s->llen += (uint16_t)take;
            return;
        }
        if (s->llen) {
            int take = (int)(q - p);
            if (s->llen + take > LINE_CAP) { take = LINE_CAP - s->llen; s->ltrunc = 1; }
            memcpy(s->line + s->llen, p, (size_t)take);
            sub_line(s, s->line, s->llen + take);
            s->llen = 0;
            s->ltrunc = 0;
        } else {
            sub_line(s, p, (int)(q - p));
        }
        if (*q == '\r') {
            if (q + 1 < end) {
                if (q[1] == '\n') q++;
            } else {
                s->cr = 1;
            }
        }
        p = q + 1;
    }
}

static char sub_req_fmt[2048];

/* The port of subscriber g: with --sub-ports, the subscribers of each
 * channel are spread evenly over the ports (g / C in turn). */
static int sub_port(int g)
{
    return O.nsub_ports ? O.sub_ports[(g / O.nchans) % O.nsub_ports] : O.port;
}

static int sub_start(int ep, sub_t *s, const char *src)
{
    s->t_start = now_ns();
    if (!SS.t_first_start) SS.t_first_start = s->t_start;
    s->fd = tcp_connect(src, s == &rsub ? O.port : sub_port(sub_base + (int)(s - subs)));
    if (s->fd < 0) {
        if (!SS.first_err) SS.first_err = errno;
        SS.n_fail++;
        s->state = S_CLOSED;
        return -1;
    }
    s->state = S_CONNECTING;
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = s };
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
    return 0;
}

static void sub_send_request(int ep, sub_t *s)
{
    char path[1536], req[4096];
    if (O.hub) hub_sub_path(path, sizeof(path), sub_base + (int)(s - subs), s->chan);
    else expand(path, sizeof(path), O.sub_path, s->chan);
    int len = snprintf(req, sizeof(req), s == &rsub ? rsub_req_fmt : sub_req_fmt, path);
    if (conn_write(s->fd, s->ssl, req, (size_t)len) != len) {  /* fits any empty socket buffer */
        if (!SS.first_err) SS.first_err = errno;
        SS.n_fail++;
        sub_close(ep, s, 0);
        return;
    }
    int tsf = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    setsockopt(s->fd, SOL_SOCKET, SO_TIMESTAMPING, &tsf, sizeof(tsf));
    s->state = S_HEAD;
    s->resp = calloc(1, sizeof(resp_t));
    resp_reset(s->resp);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = s };
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
}

/* One step of a subscriber's TLS handshake; sends the request when done. */
static void sub_tls_step(int ep, sub_t *s)
{
    uint32_t want = 0;
    int r = tls_step(s->ssl, &want);
    if (r < 0) {
        if (!SS.first_err) SS.first_err = ECONNRESET;
        SS.n_fail++;
        sub_close(ep, s, 0);
    } else if (r == 0) {
        struct epoll_event ev = { .events = want, .data.ptr = s };
        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
    } else {
        sub_send_request(ep, s);
    }
}

/* The TCP connection is up (or failed): start TLS, or send the request. */
static void sub_connected(int ep, sub_t *s)
{
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        if (!SS.first_err) SS.first_err = err;
        SS.n_fail++;
        sub_close(ep, s, 0);
        return;
    }
    if (!O.tls) {
        sub_send_request(ep, s);
        return;
    }
    if (!(s->ssl = tls_new(s->fd))) {
        if (!SS.first_err) SS.first_err = ENOMEM;
        SS.n_fail++;
        sub_close(ep, s, 0);
        return;
    }
    s->state = S_TLS;
    sub_tls_step(ep, s);
}

static char *rbuf;

/* Reads from a subscriber; returns 1 when it just became open. */
static int sub_read(int ep, sub_t *s)
{
    struct iovec iov = { rbuf, RBUF_SIZE };
    char ctl[CMSG_SPACE(sizeof(struct scm_timestamping)) + 64];
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl, .msg_controllen = sizeof(ctl) };
    ssize_t r;
    if (s->ssl) {
        /* One TLS record at most (OpenSSL reads no further ahead): what is
         * left is still in the socket, and epoll says so again. */
        bio_stamp = 0;
        r = conn_read(s->fd, s->ssl, rbuf, RBUF_SIZE);
        mh.msg_controllen = 0;
    } else {
        r = recvmsg(s->fd, &mh, 0);
    }
    if (r < 0) {
        if (errno == EAGAIN || errno == EINTR) return 0;
        if (s->state == S_HEAD) { SS.n_fail++; if (!SS.first_err) SS.first_err = errno; }
        sub_close(ep, s, 1);
        return 0;
    }
    if (r == 0) {
        if (s->state == S_HEAD) { SS.n_fail++; if (!SS.first_err) SS.first_err = ECONNRESET; }
        sub_close(ep, s, 1);
        return 0;
    }
    recv_now = now_ns();
    arrive_now = recv_now;
    SS.reads++;
    if (s->ssl && bio_stamp) {
        int64_t a = bio_stamp + real_to_mono;
        if (a > 0 && (uint64_t)a <= recv_now) arrive_now = (uint64_t)a;
        SS.stamped_reads++;
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPING) {
            struct scm_timestamping st;
            memcpy(&st, CMSG_DATA(cm), sizeof(st));
            if (st.ts[0].tv_sec) {
                int64_t a = (int64_t)st.ts[0].tv_sec * 1000000000ll + st.ts[0].tv_nsec
                    + real_to_mono;
                /* the stamp is of the last segment read: never after the read */
                if (a > 0 && (uint64_t)a <= recv_now) arrive_now = (uint64_t)a;
                SS.stamped_reads++;
            }
        }
    }
    char *p = rbuf;
    int n = (int)r, opened = 0;
    if (s->state == S_HEAD) {
        int done;
        int used = resp_feed_head(s->resp, p, n, &done);
        if (used < 0) {
            SS.n_badresp++; SS.n_fail++;
            sub_close(ep, s, 0);
            return 0;
        }
        if (!done) return 0;
        if (s->resp->status != 200 || !s->resp->is_stream) {
            SS.n_badresp++; SS.n_fail++;
            if (!SS.first_err) SS.first_err = -s->resp->status;
            sub_close(ep, s, 0);
            return 0;
        }
        s->state = S_STREAM;
        SS.n_ok++;
        SS.t_last_open = recv_now;
        hist_add(&SS.conn_lat, recv_now - s->t_start);
        opened = 1;
        if (!s->resp->chunked) { resp_reset(s->resp); free(s->resp); s->resp = NULL; }
        p += used;
        n -= used;
    }
    if (n > 0) {
        if (s->resp) {      /* chunked stream */
            int end;
            n = chunk_decode(s->resp, p, n, &end);
            if (n < 0) { SS.malformed++; sub_close(ep, s, 1); return opened; }
            if (n) sub_feed(s, p, n);
            if (end) sub_close(ep, s, 1);
        } else {
            sub_feed(s, p, n);
        }
    }
    return opened;
}

/* Lost events at the tail (never received) and subscribers that did not get
 * everything, once the publisher says what was published. */
static void sub_finish_counts(void)
{
    for (int i = 0; i < nsub_local; i++) {
        sub_t *s = &subs[i];
        if (!s->t_start) continue;
        uint32_t want = expect_cnt[s->chan];
        if (s->next_seq <= want) {
            SS.lost += want - (s->next_seq - 1);
            SS.incomplete_subs++;
        }
    }
}

/* One subscriber process: connects its share, says READY, waits for EXPECT
 * (then drains) or STOP, sends RESULT and exits. */
static void sub_main(int ctl, int idx, int base, int count)
{
    const char *src = O.nsrc ? O.srcs[idx % O.nsrc] : NULL;
    sub_base = base;
    nsub_local = count;
    subs = calloc((size_t)count, sizeof(sub_t));
    rbuf = malloc(RBUF_SIZE);
    expect_cnt = calloc((size_t)O.nchans, sizeof(uint32_t));
    hist_init(&SS.lat);
    hist_init(&SS.lat_read);
    hist_init(&SS.conn_lat);
    hist_init(&SS.lat_in);
    hist_init(&SS.lat_out);
    {
        struct timespec m, r1, r2;
        clock_gettime(CLOCK_REALTIME, &r1);
        clock_gettime(CLOCK_MONOTONIC, &m);
        clock_gettime(CLOCK_REALTIME, &r2);
        int64_t rt = ((int64_t)r1.tv_sec * 1000000000ll + r1.tv_nsec
                      + (int64_t)r2.tv_sec * 1000000000ll + r2.tv_nsec) / 2;
        real_to_mono = (int64_t)m.tv_sec * 1000000000ll + m.tv_nsec - rt;
    }
    for (int i = 0; i < count; i++) {
        subs[i].chan = (base + i) % O.nchans;
        subs[i].next_seq = 1;
        subs[i].fd = -1;
        subs[i].state = S_CLOSED;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event cev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, ctl, &cev);

    uint64_t t0 = now_ns();
    uint64_t deadline_connect = t0 + (uint64_t)(O.ready_s * 1e9);
    uint64_t deadline_all = t0 + (uint64_t)(O.timeout_s * 1e9);
    uint64_t deadline_drain = 0;
    int next = 0, inflight = 0, settled = 0, ready_sent = 0, stop = 0;
    struct epoll_event evs[512];

    while (!stop) {
        while (next < count && inflight < O.conc) {
            if (sub_start(ep, &subs[next], src) == 0) inflight++;
            else settled++;
            next++;
        }
        uint64_t now = now_ns();
        if (!ready_sent && (settled == count || now > deadline_connect)) {
            msg_t m = { M_READY, 0 };
            sstats_t cp = SS;
            write_all(ctl, &m, sizeof(m));
            write_all(ctl, &cp, sizeof(cp));
            ready_sent = 1;
        }
        if (have_expect && (n_done == count || now > deadline_drain))
            break;
        if (now > deadline_all) break;
        int n = epoll_wait(ep, evs, 512, 100);
        for (int i = 0; i < n; i++) {
            sub_t *s = evs[i].data.ptr;
            if (!s) {
                msg_t m;
                if (read_all(ctl, &m, sizeof(m)) < 0) { stop = 1; break; }
                if (m.type == M_EXPECT) {
                    read_all(ctl, expect_cnt, (size_t)O.nchans * sizeof(uint32_t));
                    have_expect = 1;
                    for (int j = 0; j < count; j++) {
                        sub_t *t = &subs[j];
                        if (!t->done && (t->state != S_STREAM
                                         || t->next_seq > expect_cnt[t->chan])) {
                            t->done = 1;
                            n_done++;
                        }
                    }
                    deadline_drain = now_ns() + (uint64_t)(O.drain_s * 1e9);
                } else if (m.type == M_WINDOW) {
                    read_all(ctl, replay_win, sizeof(replay_win));
                    have_window = 1;
                } else {
                    stop = 1;
                }
                continue;
            }
            if (s->state == S_CLOSED) continue;
            if (s->state == S_CONNECTING) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                    sub_connected(ep, s);
                    if (s->state == S_CLOSED) { inflight--; settled++; }
                }
                continue;
            }
            if (s->state == S_TLS) {
                sub_tls_step(ep, s);
                if (s->state == S_CLOSED) { inflight--; settled++; }
                continue;
            }
            int was_head = s->state == S_HEAD;
            sub_read(ep, s);
            if (was_head && s->state != S_HEAD) { inflight--; settled++; }
        }
    }
    if (have_expect)
        sub_finish_counts();
    for (size_t i = 0; have_window && i < dlv_n; i++)
        hist_add(dlv_rec[i][0] >= replay_win[0] && dlv_rec[i][0] <= replay_win[1]
                 ? &SS.lat_in : &SS.lat_out, dlv_rec[i][1]);
    msg_t m = { M_RESULT, 0 };
    write_all(ctl, &m, sizeof(m));
    write_all(ctl, &SS, sizeof(SS));
    for (int i = 0; i < count; i++)
        if (subs[i].state != S_CLOSED) close_rst(subs[i].fd);   /* no close_notify: a reset */
    _exit(0);
}

/* ============================================================ publishers */

enum { P_CONNECTING, P_TLS, P_IDLE, P_SENDING, P_WAIT, P_DOWN };

typedef struct {
    int fd, state, idx;
    SSL *ssl;               /* --tls */
    char out[4096];
    int olen, ooff;
    resp_t resp;
    int in_body;
    long long body_left;
    char body[BODY_KEEP + 1];
    int blen;
    uint64_t t_sent;
    int cur;                /* event index in flight, -1: info request */
    int info_chan;
    int port;               /* this connection's server (--pub-ports) */
    int retry;              /* --retry-ms: event cur is sent again at retry_at */
    uint64_t retry_at;      /* (P_DOWN: the connection is opened again then) */
    uint64_t n_ok, n_refused;
    uint64_t t_ok_after_kill;   /* first 2xx to a request sent after --kill's */
} pub_t;

static pub_t *pubs;
static int ep_main;
static int *ev_chan;            /* channel of each event */
static uint32_t *pub_seq;       /* per channel: events sent so far */
static uint32_t *pub_ok;        /* per channel: events answered 2xx */
static int *pub_next;           /* per publisher: next event index to look at */
static hist_t pub_lat;
static uint64_t pubs_ok, pubs_fail, pub_sub_short, pub_noid;
static uint64_t t_pub_first, t_pub_last;
static int pub_first_status;
static uint32_t *chan_expect;   /* subscribers expected per channel */
static int info_result;         /* subscribers from the last info answer, -1: none */
/* --retry-ms: publishes refused (any status but 2xx, or the connection
 * lost: status 0) and sent again; --kill: when, and the refusals after it */
static uint64_t pubs_refused, pubs_connlost;
static uint64_t t_kill, kill_refused, t_kill_first_refused, t_kill_last_refused;

static char payload_pad[65536];

static int pub_open(pub_t *p)
{
    p->fd = tcp_connect(NULL, p->port);
    if (p->fd < 0)
        return -1;
    p->state = P_CONNECTING;
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = p };
    epoll_ctl(ep_main, EPOLL_CTL_ADD, p->fd, &ev);
    resp_reset(&p->resp);
    return 0;
}

static void pub_want(pub_t *p, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = p };
    epoll_ctl(ep_main, EPOLL_CTL_MOD, p->fd, &ev);
}

/* Sends what is in p->out; returns -1 on error. */
static int pub_flush(pub_t *p)
{
    p->state = P_SENDING;
    while (p->ooff < p->olen) {
        ssize_t w = conn_write(p->fd, p->ssl, p->out + p->ooff, (size_t)(p->olen - p->ooff));
        if (w < 0) {
            if (errno == EAGAIN) { pub_want(p, EPOLLOUT); p->state = P_SENDING; return 0; }
            if (errno == EINTR) continue;
            return -1;
        }
        p->ooff += (int)w;
    }
    p->state = P_WAIT;
    pub_want(p, EPOLLIN);
    return 0;
}

static void pub_begin_response(pub_t *p)
{
    resp_reset(&p->resp);
    p->in_body = 0;
    p->blen = 0;
}

static int pub_send_info(pub_t *p, int c)
{
    char path[512];
    expand(path, sizeof(path), O.total_path ? O.total_path : O.info_path, c);
    p->olen = snprintf(p->out, sizeof(p->out),
                       "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: application/json\r\n"
                       "User-Agent: ssebench\r\n\r\n", path, O.host, O.port);
    p->ooff = 0;
    p->cur = -1;
    p->info_chan = c;
    pub_begin_response(p);
    p->t_sent = now_ns();
    return pub_flush(p);
}

/* Sends event seq of channel c; cur is the event's index (-2: --replay's). */
static int pub_send_to(pub_t *p, int c, uint32_t seq, int cur)
{
    char path[512], data[256];
    expand(path, sizeof(path), O.pub_path, c);
    p->t_sent = now_ns();
    int dl = snprintf(data, sizeof(data), "%d.%u.%llu.", c, seq, (unsigned long long)p->t_sent);
    int pad = O.size > dl ? O.size - dl : 0;
    if (pad > (int)sizeof(payload_pad)) pad = sizeof(payload_pad);
    int hl;
    if (O.hub) {
        /* a form: the channel's topic, then the data; the token as a bearer */
        char topic[256], form[1024];
        hub_topic(topic, sizeof(topic), c, 0);
        url_enc(form + 6, sizeof(form) - 12, topic);
        memcpy(form, "topic=", 6);
        strcat(form, "&data=");
        int fl = (int)strlen(form);
        hl = snprintf(p->out, sizeof(p->out),
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                      "User-Agent: ssebench\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                      "Content-Length: %d\r\n\r\n%s%s",
                      O.pub_path, O.host, O.port, hub_jwt, fl + dl + pad, form, data);
    } else {
        int blen = (O.body == BODY_FORM ? 5 : 0) + dl + pad;
        hl = snprintf(p->out, sizeof(p->out),
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: application/json\r\n"
                      "User-Agent: ssebench\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s%s",
                      path, O.host, O.port,
                      O.body == BODY_FORM ? "application/x-www-form-urlencoded" : "text/plain",
                      blen, O.body == BODY_FORM ? "data=" : "", data);
    }
    if (hl + pad >= (int)sizeof(p->out))
        pad = (int)sizeof(p->out) - hl - 1;     /* --size is capped by the buffer */
    memcpy(p->out + hl, payload_pad, (size_t)pad);
    p->olen = hl + pad;
    p->ooff = 0;
    p->cur = cur;
    pub_begin_response(p);
    if (cur >= 0 && !t_pub_first) t_pub_first = p->t_sent;
    return pub_flush(p);
}

static int pub_send_event(pub_t *p, int e)
{
    int c = ev_chan[e];
    return pub_send_to(p, c, ++pub_seq[c], e);
}

/* --replay: the events published before the live ones, on channel nchans */
static int replay_sent, replay_ok, replay_fail, replay_status;
static uint64_t t_replay_first, t_replay_last;
static char replay_id[256];     /* the first event's id, from its answer */

/* The first number after "subscribers" in an answer, or -1. */
static long find_subscribers(const char *body)
{
    const char *k = strstr(body, "subscribers");
    if (!k) return -1;
    k += 11;
    while (*k && !isdigit((unsigned char)*k) && *k != '\n' && *k != ',') k++;
    return isdigit((unsigned char)*k) ? atol(k) : -1;
}

/* --retry-ms: event p->cur was refused with status st (0: the connection
 * was lost) at t; it is sent again retry_ms later, with the same data. */
static void pub_refused(pub_t *p, uint64_t t, int st)
{
    pubs_refused++;
    p->n_refused++;
    if (!pub_first_status) pub_first_status = st;
    if (t_kill && p->t_sent > t_kill) {
        kill_refused++;
        if (!t_kill_first_refused) t_kill_first_refused = t;
        t_kill_last_refused = t;
    }
    p->retry = 1;
    p->retry_at = t + (uint64_t)O.retry_ms * 1000000ull;
}

/* The connection of p broke (or could not be made).  Without --retry-ms the
 * run stops; with it, the event in flight counts as refused and the
 * connection is opened again when it is due. */
static void pub_broken(pub_t *p, const char *what)
{
    if (!O.retry_ms)
        die("%s: %s", what, errno ? strerror(errno) : "closed by the server");
    uint64_t t = now_ns();
    epoll_ctl(ep_main, EPOLL_CTL_DEL, p->fd, NULL);
    if (p->ssl) { SSL_free(p->ssl); p->ssl = NULL; }
    close_rst(p->fd);
    p->fd = -1;
    pubs_connlost++;
    if (p->cur >= 0 && (p->state == P_SENDING || p->state == P_WAIT))
        pub_refused(p, t, 0);
    if (!p->retry) p->retry_at = t + (uint64_t)O.retry_ms * 1000000ull;
    p->state = P_DOWN;
}

/* A whole answer has arrived on p. */
static void pub_answer(pub_t *p)
{
    uint64_t t = now_ns();
    p->body[p->blen] = 0;
    long subsn = find_subscribers(p->body);
    int st = p->resp.status;
    if (p->cur == -2) {
        t_replay_last = t;
        if (st >= 200 && st < 300) {
            replay_ok++;
            const char *k = strstr(p->body, "\"id\":\"");
            if (replay_ok == 1 && k) {
                k += 6;
                size_t n = strcspn(k, "\"");
                if (n < sizeof(replay_id)) memcpy(replay_id, k, n), replay_id[n] = 0;
            }
        } else {
            replay_fail++;
            if (!replay_status) replay_status = st;
        }
    } else if (p->cur < 0) {
        info_result = (st >= 200 && st < 300) ? (int)(subsn < 0 ? 0 : subsn) : 0;
    } else {
        int c = ev_chan[p->cur];
        hist_add(&pub_lat, t - p->t_sent);
        t_pub_last = t;
        if (O.hub && st >= 200 && st < 300 && !p->blen) {
            /* a hub answers a publish with the update's id */
            pub_noid++;
            pubs_fail++;
            if (!pub_first_status) pub_first_status = st;
        } else if (st >= 200 && st < 300) {
            pubs_ok++;
            p->n_ok++;
            if (t_kill && p->t_sent > t_kill && !p->t_ok_after_kill) p->t_ok_after_kill = t;
            pub_ok[c] = pub_seq[c];
            if (subsn >= 0 && (uint32_t)subsn < chan_expect[c]) pub_sub_short++;
        } else if (O.retry_ms) {
            pub_refused(p, t, st);
        } else {
            pubs_fail++;
            if (!pub_first_status) pub_first_status = st;
            /* A refused event keeps its sequence number; later ones would
             * look like losses, so stop counting this channel's successes. */
        }
    }
    p->state = P_IDLE;
    if (p->resp.close) {
        epoll_ctl(ep_main, EPOLL_CTL_DEL, p->fd, NULL);
        if (p->ssl) { SSL_free(p->ssl); p->ssl = NULL; }
        close(p->fd);
        p->fd = -1;
        pub_open(p);
    }
}

/* Handles readable bytes on a publisher connection.  -1: connection lost. */
static int pub_read(pub_t *p)
{
    char buf[65536];
    /* TLS: one record at most, the rest stays in the socket (see sub_read) */
    ssize_t r = conn_read(p->fd, p->ssl, buf, sizeof(buf));
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (r <= 0) return -1;
    char *q = buf;
    int n = (int)r;
    while (n > 0 && p->state == P_WAIT) {
        if (!p->in_body) {
            int done;
            int used = resp_feed_head(&p->resp, q, n, &done);
            if (used < 0) return -1;
            q += used;
            n -= used;
            if (!done) return 0;
            p->in_body = 1;
            p->body_left = p->resp.clen;
            if (!p->resp.chunked && p->resp.clen <= 0) { pub_answer(p); continue; }
        }
        if (p->resp.chunked) {
            int end;
            int m = chunk_decode(&p->resp, q, n, &end);
            if (m < 0) return -1;
            int keep = m < BODY_KEEP - p->blen ? m : BODY_KEEP - p->blen;
            memcpy(p->body + p->blen, q, (size_t)keep);
            p->blen += keep;
            n = 0;      /* keep-alive answers are never pipelined here */
            if (end) pub_answer(p);
        } else {
            long long take = n < p->body_left ? n : p->body_left;
            int keep = take < BODY_KEEP - p->blen ? (int)take : BODY_KEEP - p->blen;
            memcpy(p->body + p->blen, q, (size_t)keep);
            p->blen += keep;
            q += take;
            n -= (int)take;
            p->body_left -= take;
            if (!p->body_left) pub_answer(p);
        }
    }
    return 0;
}

static uint64_t *pub_next_at;   /* per publisher: --interval-us, time of its next event */
static void rsub_io(void);

/* Runs the publisher loop until pred() is true or the deadline passes.
 * kick(p) starts the next request on an idle connection (or does nothing). */
static int pub_loop(int (*pred)(void), void (*kick)(pub_t *), uint64_t deadline)
{
    struct epoll_event evs[64];
    uint64_t kill_at = 0;
    for (;;) {
        /* --kill: kill_after_s after the first event was sent */
        if (O.kill_pid && t_pub_first && !kill_at)
            kill_at = t_pub_first + (uint64_t)(O.kill_after_s * 1e9);
        if (O.kill_pid && t_pub_first && !t_kill && now_ns() >= kill_at) {
            if (kill(O.kill_pid, SIGKILL) < 0)
                printf("kill: process %d: %s\n", O.kill_pid, strerror(errno));
            t_kill = now_ns();
        }
        for (int i = 0; i < O.npubs; i++) {
            if (pubs[i].state == P_DOWN && now_ns() >= pubs[i].retry_at
                && pub_open(&pubs[i]) < 0)
                pub_broken(&pubs[i], "publisher connect");
            if (pubs[i].state == P_IDLE) kick(&pubs[i]);
        }
        if (pred()) return 0;
        if (now_ns() > deadline) return -1;
        int wait_ms = 50;
        if (O.interval_us || O.retry_ms) {
            /* the next event's (or retry's) time, not the next 50 ms (lone
             * events every 10 ms) */
            uint64_t t = now_ns(), first = t + 50000000ull;
            for (int i = 0; i < O.npubs; i++) {
                uint64_t at = 0;
                if (pubs[i].state == P_IDLE) at = pubs[i].retry ? pubs[i].retry_at : pub_next_at[i];
                else if (pubs[i].state == P_DOWN) at = pubs[i].retry_at;
                if (at > t && at < first) first = at;
            }
            if (O.kill_pid && kill_at && !t_kill && kill_at > t && kill_at < first)
                first = kill_at;
            wait_ms = first > t ? (int)((first - t + 999999) / 1000000) : 0;
        }
        int n = epoll_wait(ep_main, evs, 64, wait_ms);
        for (int i = 0; i < n; i++) {
            pub_t *p = evs[i].data.ptr;
            if (!p) continue;
            if ((void *)p == (void *)&rsub) { rsub_io(); continue; }
            if (p->state == P_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof(err);
                getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) { errno = err; pub_broken(p, "publisher connection"); continue; }
                if (O.tls) {
                    if (!(p->ssl = tls_new(p->fd))) die("publisher: SSL_new failed");
                    p->state = P_TLS;
                    pub_want(p, EPOLLOUT);
                } else {
                    p->state = P_IDLE;
                    pub_want(p, EPOLLIN);
                }
            } else if (p->state == P_TLS) {
                uint32_t want = 0;
                int r = tls_step(p->ssl, &want);
                if (r < 0) die("publisher: TLS handshake failed");
                if (r == 0) pub_want(p, want);
                else { p->state = P_IDLE; pub_want(p, EPOLLIN); }
            } else if (p->state == P_SENDING) {
                if (pub_flush(p) < 0) pub_broken(p, "publisher write");
            } else if (p->state != P_DOWN) {
                errno = 0;
                if (pub_read(p) < 0) pub_broken(p, "publisher connection");
            }
        }
    }
}

/* ---- info phase: poll every channel until it counts its subscribers */

static int info_chan_next, info_done;
static uint64_t info_retry_at;

static void info_kick(pub_t *p)
{
    if (p->idx != 0 || info_done) return;
    if (p->cur == -1 && p->info_chan >= 0 && p->t_sent) {
        /* the answer to the previous info request is in info_result */
        int c = p->info_chan;
        p->info_chan = -2;
        if (O.total_path ? info_result >= O.nsubs : (uint32_t)info_result >= chan_expect[c]) {
            info_chan_next = c + 1;
        } else {
            info_retry_at = now_ns() + 20000000ull;
            info_chan_next = c;
        }
    }
    while (info_chan_next < O.nchans && !chan_expect[info_chan_next])
        info_chan_next++;
    if (info_chan_next >= (O.total_path ? 1 : O.nchans)) { info_done = 1; return; }
    if (now_ns() < info_retry_at) return;
    pub_send_info(p, info_chan_next);
}

static int info_pred(void) { return info_done; }

/* ---- publish phase */

static int events_answered(void)
{
    return pubs_ok + pubs_fail == (uint64_t)O.nevents;
}

static void event_kick(pub_t *p)
{
    if (p->retry) {
        /* --retry-ms: the refused event again, same channel and number */
        if (now_ns() < p->retry_at) return;
        p->retry = 0;
        if (pub_send_to(p, ev_chan[p->cur], pub_seq[ev_chan[p->cur]], p->cur) < 0)
            pub_broken(p, "publisher write");
        return;
    }
    int i = pub_next[p->idx];
    while (i < O.nevents && ev_chan[i] % O.npubs != p->idx)
        i++;
    pub_next[p->idx] = i;
    if (i >= O.nevents) return;
    if (O.interval_us) {
        uint64_t t = now_ns();
        if (t < pub_next_at[p->idx]) return;
        pub_next_at[p->idx] = t + (uint64_t)O.interval_us * 1000;
    }
    pub_next[p->idx] = i + 1;
    if (pub_send_event(p, i) < 0) pub_broken(p, "publisher write");
}

/* --replay: publisher 0 publishes the replay channel's events one by one */
static void replay_kick(pub_t *p)
{
    if (p->idx != 0 || replay_sent >= O.replay || replay_ok + replay_fail < replay_sent) return;
    if (!replay_sent) t_replay_first = now_ns();
    replay_sent++;
    if (pub_send_to(p, O.nchans, (uint32_t)replay_sent, -2) < 0)
        die("publisher write: %s", strerror(errno));
}
static int replay_published(void) { return replay_ok + replay_fail == O.replay; }

/* The resuming stream: opened once O.replay_after live events are answered,
 * with Last-Event-ID the first replay event's id; done when it has the other
 * O.replay - 1 events or is closed. */
static int rsub_started;
static int rsub_done(void)
{
    return rsub_started && (rsub.state == S_CLOSED || SS.deliveries >= (uint64_t)O.replay - 1);
}
static void rsub_start(void)
{
    if (rsub_started) return;
    rsub_started = 1;
    snprintf(rsub_req_fmt, sizeof(rsub_req_fmt),
             "GET %%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
             "Cache-Control: no-cache\r\nLast-Event-ID: %s\r\nUser-Agent: ssebench\r\n\r\n",
             O.host, O.port, replay_id);
    rsub.chan = O.nchans;
    rsub.next_seq = 2;
    if (sub_start(ep_main, &rsub, NULL) < 0)
        printf("replay: the resuming stream could not connect: %s\n", strerror(errno));
}
static void rsub_io(void)
{
    if (rsub.state == S_CONNECTING) sub_connected(ep_main, &rsub);
    else if (rsub.state == S_TLS) sub_tls_step(ep_main, &rsub);
    else if (rsub.state != S_CLOSED) sub_read(ep_main, &rsub);
}
static void live_kick(pub_t *p)
{
    if (pubs_ok + pubs_fail >= (uint64_t)O.replay_after) rsub_start();
    event_kick(p);
}

static void noop_kick(pub_t *p) { (void)p; }
static int all_connected(void)
{
    for (int i = 0; i < O.npubs; i++)
        if (pubs[i].state == P_CONNECTING || pubs[i].state == P_TLS) return 0;
    return 1;
}

/* ================================================================ main */

static void usage(void)
{
    fprintf(stderr,
"usage: ssebench -p PORT [options]\n"
"  -t, --target T      modsse | nchan | limit | hub: URL shapes and body (default modsse)\n"
"      --sub PATH      subscribe path, %%s = channel   (modsse /events/%%s, nchan /sub/%%s)\n"
"      --pub PATH      publish path, %%s = channel     (modsse /publish?channel=%%s, nchan /pub/%%s)\n"
"      --info PATH     channel info path (GET; answer has \"subscribers\" N); '' for none\n"
"      --total PATH    instead of --info: a path whose \"subscribers\" N counts all channels\n"
"      --body form|raw publish body: form 'data=...' or the data itself\n"
"  -H, --host ADDR     server address (127.0.0.1; loopback only)\n"
"      --tls           HTTPS: every connection over TLS (certificate not verified)\n"
"  -t hub              a Mercure hub (mod_sse's): subscribe GET PATH?topic=https://example.com/cC/NAME,\n"
"                      publish a form topic=...&data=... with a bearer token (PATH: --sub, --pub,\n"
"                      default /.well-known/mercure)\n"
"      --hub-key K     the hub's HS256 secret: signs the token (mercure.publish, .subscribe [\"*\"])\n"
"      --hub-sub-auth A how subscribers send the token: none (anonymous, default), query\n"
"                      (the authorization field) or header (Authorization: Bearer)\n"
"      --hub-templates K the last K subscribers subscribe with the URI template\n"
"                      https://example.com/cC/{id} (distinct per channel, matches its topic)\n"
"  -m, --mode M        hold: connect and hold; publish (default): connect, publish, verify\n"
"  -n N                subscribers (100)           -c C   channels (1)\n"
"  -e E                events (10)                 -P P   publisher connections (1)\n"
"      --random        random channel per event (else round robin)\n"
"      --size B        data bytes per event (at least the ~30-byte header)\n"
"      --interval-us U pause between one publisher's events (0: back to back)\n"
"      --procs K       subscriber processes (default: one per 15000 subscribers)\n"
"      --src A,B,..    source addresses (127.0.0.x), one per subscriber process in turn\n"
"      --conc K        connects in flight per subscriber process (200)\n"
"      --hold S        hold mode: seconds to hold after all are connected (0)\n"
"      --drain S       seconds to wait for deliveries after the last answer (10)\n"
"      --ready S       seconds allowed for connecting and registering (60)\n"
"      --timeout S     hard limit for the whole run (300)\n"
"      --server-pid P  root of the server's process tree: RSS, threads, CPU (P1,P2,..:\n"
"                      several servers, summed)\n"
"      --redis-pid P   a process (Redis) whose CPU time in the publish phase is given apart\n"
"      --sub-ports L   subscribers spread over these ports (P1,P2,..): each channel's in turn\n"
"      --pub-ports L   publisher connection i to port L[i %% n] (channel counts: the first)\n"
"      --retry-ms R    a publish refused (not 2xx, or its connection lost) is sent again R ms\n"
"                      later, same data, until answered 2xx; refusals and duplicates reported\n"
"      --kill PID      SIGKILL PID --kill-after seconds into the publish phase (a failover):\n"
"                      time from it to the first publish answered 2xx, and to every port's\n"
"      --kill-after S  (default 2)\n"
"      --prefix STR    channel name prefix (default: unique per run)\n"
"      --seed N        random seed (1)\n"
"      --kv FILE       also write the results as key=value lines\n"
"      --replay E      mod_sse: publish E events on one more channel first (publisher 0, one at\n"
"                      a time); once --replay-after live events are answered (default a third),\n"
"                      one stream resumes it from the first event's id (Last-Event-ID) and must\n"
"                      get the other E-1 in order; the live latency is also given for the events\n"
"                      published during that replay and for the others\n"
"      --replay-after K live events answered before the resume starts\n");
    exit(2);
}

static void set_target(const char *t)
{
    O.target = t;
    O.hub = !strcmp(t, "hub");
    if (!strcmp(t, "modsse")) {
        O.sub_path = "/events/%s"; O.pub_path = "/publish?channel=%s";
        O.info_path = "/publish?channel=%s"; O.total_path = NULL; O.body = BODY_FORM;
    } else if (!strcmp(t, "nchan")) {
        /* Nchan's channel info counts one worker's subscribers only; its
         * stub status counts all (a location with nchan_stub_status). */
        O.sub_path = "/sub/%s"; O.pub_path = "/pub/%s";
        O.info_path = ""; O.total_path = "/nchan_status"; O.body = BODY_RAW;
    } else if (!strcmp(t, "limit")) {
        O.sub_path = "/sub/%s"; O.pub_path = "/pub"; O.info_path = ""; O.total_path = NULL;
        O.body = BODY_RAW;
    } else if (!strcmp(t, "hub")) {
        /* mod_sse's Mercure hub: --sub and --pub are the hub's path.  No
         * count to poll: a stream that has its ": ok" (in the segment of
         * its headers) is counted by every later publish. */
        O.sub_path = "/.well-known/mercure"; O.pub_path = "/.well-known/mercure";
        O.info_path = ""; O.total_path = NULL; O.body = BODY_HUB;
    } else {
        die("unknown target '%s'", t);
    }
}

static FILE *kvf;
static void kv(const char *key, const char *fmt, ...)
{
    if (!kvf) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(kvf, "%s=", key);
    vfprintf(kvf, fmt, ap);
    fprintf(kvf, "\n");
    va_end(ap);
}

/* A comma-separated list of positive numbers into out[MAX_PORTS]: the count. */
static int int_list(const char *arg, int *out, const char *what)
{
    int n = 0;
    for (const char *p = arg; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || v > 4194304 || (*end && *end != ','))
            die("%s: a list of numbers separated by commas", what);
        if (n == MAX_PORTS) die("%s: at most %d", what, MAX_PORTS);
        out[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!n) die("%s: empty", what);
    return n;
}

static void parse_args(int argc, char **argv)
{
    enum { OPT_SUB = 256, OPT_PUB, OPT_INFO, OPT_BODY, OPT_RANDOM, OPT_SIZE,
           OPT_INTERVAL, OPT_PROCS, OPT_SRC, OPT_CONC, OPT_HOLD, OPT_DRAIN,
           OPT_READY, OPT_TIMEOUT, OPT_SPID, OPT_PREFIX, OPT_SEED, OPT_KV, OPT_TOTAL,
           OPT_TLS, OPT_HUB_KEY, OPT_HUB_AUTH, OPT_HUB_TMPL, OPT_REPLAY, OPT_REPLAY_AFTER,
           OPT_REDIS_PID, OPT_SUB_PORTS, OPT_PUB_PORTS, OPT_RETRY, OPT_KILL, OPT_KILL_AFTER };
    static const struct option lo[] = {
        {"target", 1, 0, 't'}, {"host", 1, 0, 'H'}, {"port", 1, 0, 'p'},
        {"mode", 1, 0, 'm'}, {"sub", 1, 0, OPT_SUB}, {"pub", 1, 0, OPT_PUB},
        {"info", 1, 0, OPT_INFO}, {"total", 1, 0, OPT_TOTAL}, {"body", 1, 0, OPT_BODY},
        {"random", 0, 0, OPT_RANDOM}, {"size", 1, 0, OPT_SIZE},
        {"interval-us", 1, 0, OPT_INTERVAL}, {"procs", 1, 0, OPT_PROCS},
        {"src", 1, 0, OPT_SRC}, {"conc", 1, 0, OPT_CONC}, {"hold", 1, 0, OPT_HOLD},
        {"drain", 1, 0, OPT_DRAIN}, {"ready", 1, 0, OPT_READY},
        {"timeout", 1, 0, OPT_TIMEOUT}, {"server-pid", 1, 0, OPT_SPID},
        {"prefix", 1, 0, OPT_PREFIX}, {"seed", 1, 0, OPT_SEED}, {"kv", 1, 0, OPT_KV},
        {"tls", 0, 0, OPT_TLS}, {"hub-key", 1, 0, OPT_HUB_KEY},
        {"hub-sub-auth", 1, 0, OPT_HUB_AUTH}, {"hub-templates", 1, 0, OPT_HUB_TMPL},
        {"replay", 1, 0, OPT_REPLAY}, {"replay-after", 1, 0, OPT_REPLAY_AFTER},
        {"redis-pid", 1, 0, OPT_REDIS_PID}, {"sub-ports", 1, 0, OPT_SUB_PORTS},
        {"pub-ports", 1, 0, OPT_PUB_PORTS}, {"retry-ms", 1, 0, OPT_RETRY},
        {"kill", 1, 0, OPT_KILL}, {"kill-after", 1, 0, OPT_KILL_AFTER},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}
    };
    const char *sub = NULL, *pub = NULL, *info = NULL, *body = NULL, *total = NULL;
    set_target("modsse");
    int c;
    while ((c = getopt_long(argc, argv, "t:H:p:m:n:c:e:P:qh", lo, NULL)) != -1) {
        switch (c) {
        case 't': set_target(optarg); break;
        case 'H': O.host = optarg; break;
        case 'p': O.port = atoi(optarg); break;
        case 'm':
            if (!strcmp(optarg, "hold")) O.mode = MODE_HOLD;
            else if (!strcmp(optarg, "publish")) O.mode = MODE_PUBLISH;
            else die("unknown mode '%s'", optarg);
            break;
        case 'n': O.nsubs = atoi(optarg); break;
        case 'c': O.nchans = atoi(optarg); break;
        case 'e': O.nevents = atoi(optarg); break;
        case 'P': O.npubs = atoi(optarg); break;
        case 'q': O.quiet = 1; break;
        case OPT_SUB: sub = optarg; break;
        case OPT_PUB: pub = optarg; break;
        case OPT_INFO: info = optarg; break;
        case OPT_TOTAL: total = optarg; break;
        case OPT_BODY: body = optarg; break;
        case OPT_RANDOM: O.random_chans = 1; break;
        case OPT_SIZE: O.size = atoi(optarg); break;
        case OPT_INTERVAL: O.interval_us = atol(optarg); break;
        case OPT_PROCS: O.procs = atoi(optarg); break;
        case OPT_SRC: {
            char *s = strdup(optarg), *tok, *save = NULL;
            for (tok = strtok_r(s, ",", &save); tok && O.nsrc < MAX_SRC;
                 tok = strtok_r(NULL, ",", &save))
                O.srcs[O.nsrc++] = tok;
            break;
        }
        case OPT_CONC: O.conc = atoi(optarg); break;
        case OPT_HOLD: O.hold_s = atof(optarg); break;
        case OPT_DRAIN: O.drain_s = atof(optarg); break;
        case OPT_READY: O.ready_s = atof(optarg); break;
        case OPT_TIMEOUT: O.timeout_s = atof(optarg); break;
        case OPT_SPID: O.nserver_pids = int_list(optarg, O.server_pids, "--server-pid"); break;
        case OPT_REDIS_PID: O.redis_pid = atoi(optarg); break;
        case OPT_SUB_PORTS: O.nsub_ports = int_list(optarg, O.sub_ports, "--sub-ports"); break;
        case OPT_PUB_PORTS: O.npub_ports = int_list(optarg, O.pub_ports, "--pub-ports"); break;
        case OPT_RETRY: O.retry_ms = atol(optarg); break;
        case OPT_KILL: O.kill_pid = atoi(optarg); break;
        case OPT_KILL_AFTER: O.kill_after_s = atof(optarg); break;
        case OPT_PREFIX: O.prefix = optarg; break;
        case OPT_SEED: O.seed = (unsigned)atol(optarg); break;
        case OPT_KV: O.kv_path = optarg; break;
        case OPT_TLS: O.tls = 1; break;
        case OPT_HUB_KEY: O.hub_key = optarg; break;
        case OPT_HUB_AUTH:
            if (!strcmp(optarg, "none")) O.hub_sub_auth = AUTH_NONE;
            else if (!strcmp(optarg, "query")) O.hub_sub_auth = AUTH_QUERY;
            else if (!strcmp(optarg, "header")) O.hub_sub_auth = AUTH_HEADER;
            else die("--hub-sub-auth is none, query or header");
            break;
        case OPT_HUB_TMPL: O.hub_templates = atoi(optarg); break;
        case OPT_REPLAY: O.replay = atoi(optarg); break;
        case OPT_REPLAY_AFTER: O.replay_after = atoi(optarg); break;
        default: usage();
        }
    }
    if (sub) O.sub_path = sub;
    if (pub) O.pub_path = pub;
    if (info) { O.info_path = info; O.total_path = NULL; }
    if (total) O.total_path = *total ? total : NULL;
    if (body && O.hub) die("-t hub takes no --body: an update is a form");
    if (body) {
        if (!strcmp(body, "form")) O.body = BODY_FORM;
        else if (!strcmp(body, "raw")) O.body = BODY_RAW;
        else die("--body is form or raw");
    }
    if (O.port <= 0 && O.npub_ports) O.port = O.pub_ports[0];
    if (O.port <= 0) usage();
    if (O.retry_ms < 0 || O.retry_ms > 60000) die("--retry-ms is 0..60000");
    if (O.kill_pid && (O.kill_pid <= 1 || O.mode != MODE_PUBLISH))
        die("--kill takes a process id, in publish mode");
    if (O.kill_pid && !O.kill_after_s) O.kill_after_s = 2;
    if (O.nsubs < 1 || O.nchans < 1 || O.nevents < 0 || O.npubs < 1 || O.conc < 1)
        die("bad counts");
    if (O.nchans > O.nsubs) die("more channels than subscribers");
    if (O.hub && !O.hub_key) die("-t hub needs --hub-key (the hub's HS256 secret)");
    if (!O.hub && (O.hub_templates || O.hub_sub_auth != AUTH_NONE))
        die("--hub-templates and --hub-sub-auth are for -t hub");
    if (O.hub_templates < 0 || O.hub_templates > O.nsubs) die("bad --hub-templates");
    if (O.replay && (O.replay < 2 || O.mode != MODE_PUBLISH || O.hub || O.body != BODY_FORM))
        die("--replay is at least 2 events, in publish mode against mod_sse's /publish");
    if (O.replay && O.replay_after <= 0) O.replay_after = O.nevents / 3;
    if (O.procs <= 0) O.procs = (O.nsubs + 14999) / 15000;
    if (O.procs > MAX_PROCS) O.procs = MAX_PROCS;
    if (O.timeout_s <= 0 || O.timeout_s > 3600) die("--timeout is 1..3600 seconds");
    if (O.hold_s > O.timeout_s) O.hold_s = O.timeout_s;
    if (O.nevents > 10000000) die("at most 10,000,000 events");
    /* Loopback only: this tool floods whatever it is pointed at. */
    if (inet_pton(AF_INET, O.host, &dst_addr.sin_addr) != 1)
        die("--host must be an IPv4 address");
    if ((ntohl(dst_addr.sin_addr.s_addr) >> 24) != 127)
        die("--host must be a loopback address (127.0.0.0/8)");
    for (int i = 0; i < O.nsrc; i++) {
        struct in_addr a;
        if (inet_pton(AF_INET, O.srcs[i], &a) != 1 || (ntohl(a.s_addr) >> 24) != 127)
            die("--src addresses must be in 127.0.0.0/8");
    }
    dst_addr.sin_family = AF_INET;
    dst_addr.sin_port = htons((uint16_t)O.port);
    if (!O.prefix) {
        static char pfx[32];
        snprintf(pfx, sizeof(pfx), "b%ld-%d-", (long)time(NULL) % 1000000, getpid() % 10000);
        O.prefix = pfx;
    }
}

typedef struct {
    int fd, pid;
    sstats_t st;
    int have_ready, have_result;
} child_t;

static child_t kids[MAX_PROCS];

/* Reads one message from a child; returns its type or -1. */
static int kid_read(child_t *k)
{
    msg_t m;
    if (read_all(k->fd, &m, sizeof(m)) < 0) return -1;
    if (read_all(k->fd, &k->st, sizeof(k->st)) < 0) return -1;
    if (m.type == M_READY) k->have_ready = 1;
    if (m.type == M_RESULT) k->have_result = 1;
    return m.type;
}

/* Waits until every child has sent READY (want_result 0) or RESULT, or the
 * deadline passes.  Returns 0 or -1. */
static int kids_wait(int want_result, uint64_t deadline)
{
    for (;;) {
        struct pollfd pf[MAX_PROCS];
        int n = 0, map[MAX_PROCS];
        for (int i = 0; i < O.procs; i++) {
            int have = want_result ? kids[i].have_result : kids[i].have_ready;
            if (!have && kids[i].fd >= 0) {
                pf[n].fd = kids[i].fd;
                pf[n].events = POLLIN;
                map[n++] = i;
            }
        }
        if (!n) return 0;
        uint64_t t = now_ns();
        if (t > deadline) return -1;
        int r = poll(pf, (nfds_t)n, 100);
        for (int j = 0; r > 0 && j < n; j++) {
            if (!pf[j].revents) continue;
            if (kid_read(&kids[map[j]]) < 0) {
                close(kids[map[j]].fd);
                kids[map[j]].fd = -1;       /* died: its figures are missing */
            }
        }
    }
}

static void kids_send(int type, const void *extra, size_t len)
{
    for (int i = 0; i < O.procs; i++) {
        if (kids[i].fd < 0) continue;
        msg_t m = { type, 0 };
        write_all(kids[i].fd, &m, sizeof(m));
        if (len) write_all(kids[i].fd, extra, len);
    }
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static void print_hist(const char *what, const char *key, const hist_t *h)
{
    if (!h->count) return;
    printf("  %-22s p50 %8.2f ms  p90 %8.2f ms  p99 %8.2f ms  max %8.2f ms  (n=%llu)\n",
           what, ms(hist_q(h, 0.5)), ms(hist_q(h, 0.9)), ms(hist_q(h, 0.99)), ms(h->max),
           (unsigned long long)h->count);
    char k[64];
    snprintf(k, sizeof(k), "%s_p50_ms", key); kv(k, "%.3f", ms(hist_q(h, 0.5)));
    snprintf(k, sizeof(k), "%s_p99_ms", key); kv(k, "%.3f", ms(hist_q(h, 0.99)));
    snprintf(k, sizeof(k), "%s_max_ms", key); kv(k, "%.3f", ms(h->max));
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        long per = (O.nsubs + O.procs - 1) / O.procs;
        if ((rlim_t)per + 64 > rl.rlim_cur)
            die("%ld subscribers per process exceed the descriptor limit %lu: use --procs",
                per, (unsigned long)rl.rlim_cur);
    }
    if (O.kv_path && !(kvf = fopen(O.kv_path, "w")))
        die("%s: %s", O.kv_path, strerror(errno));
    memset(payload_pad, 'x', sizeof(payload_pad));
    if (O.tls) tls_init();
    if (O.hub) hub_sign();
    snprintf(sub_req_fmt, sizeof(sub_req_fmt),
             "GET %%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
             "Cache-Control: no-cache\r\nUser-Agent: ssebench\r\n%s%s%s\r\n", O.host, O.port,
             O.hub_sub_auth == AUTH_HEADER ? "Authorization: Bearer " : "",
             O.hub_sub_auth == AUTH_HEADER ? hub_jwt : "",
             O.hub_sub_auth == AUTH_HEADER ? "\r\n" : "");
    uint64_t t_start = now_ns();
    uint64_t hard_deadline = t_start + (uint64_t)(O.timeout_s * 1e9);

    printf("ssebench: target %s at %s://%s:%d, mode %s, %d subscribers, %d channels, "
           "%d events, %d publishers, %d processes\n",
           O.target, O.tls ? "https" : "http", O.host, O.port, O.mode == MODE_HOLD ? "hold" : "publish",
           O.nsubs, O.nchans, O.nevents, O.npubs, O.procs);
    kv("target", "%s", O.target);
    kv("tls", "%d", O.tls);
    kv("subs", "%d", O.nsubs);
    kv("chans", "%d", O.nchans);
    kv("events", "%d", O.nevents);
    if (O.hub) {
        static const char *auth[] = { "none (anonymous)", "query", "header" };
        printf("hub: topics https://example.com/cC/%sC, %d subscribers on URI templates, "
               "subscriber token: %s\n", O.prefix, O.hub_templates, auth[O.hub_sub_auth]);
        kv("hub_templates", "%d", O.hub_templates);
        kv("hub_sub_auth", "%s", auth[O.hub_sub_auth]);
    }

    srvstat_t s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    srvstat_t r2 = {0}, r3 = {0};
    int have_srv = srv_sample(O.server_pids, O.nserver_pids, &s0) == 0;
    if (O.nserver_pids && !have_srv)
        fprintf(stderr, "ssebench: no process %d: no server figures\n", O.server_pids[0]);
    if (O.nsub_ports || O.npub_ports) {
        printf("ports: subscribers on");
        for (int i = 0; i < (O.nsub_ports ? O.nsub_ports : 1); i++)
            printf(" %d", O.nsub_ports ? O.sub_ports[i] : O.port);
        printf(", publishers on");
        for (int i = 0; i < (O.npub_ports ? O.npub_ports : 1); i++)
            printf(" %d", O.npub_ports ? O.pub_ports[i] : O.port);
        printf("\n");
    }

    /* Channel sizes: subscriber g listens on channel g % C. */
    chan_expect = calloc((size_t)O.nchans, sizeof(uint32_t));
    for (int g = 0; g < O.nsubs; g++)
        chan_expect[g % O.nchans]++;

    ep_main = epoll_create1(EPOLL_CLOEXEC);
    fflush(NULL);
    for (int k = 0; k < O.procs; k++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            die("socketpair: %s", strerror(errno));
        int base = (int)((long)O.nsubs * k / O.procs);
        int end = (int)((long)O.nsubs * (k + 1) / O.procs);
        pid_t pid = fork();
        if (pid < 0) die("fork: %s", strerror(errno));
        if (pid == 0) {
            close(sv[0]);
            for (int j = 0; j < k; j++) close(kids[j].fd);
            close(ep_main);
            if (kvf) fclose(kvf), kvf = NULL;
            sub_main(sv[1], k, base, end - base);
        }
        close(sv[1]);
        kids[k].fd = sv[0];
        kids[k].pid = pid;
    }

    /* ---- connect */
    int rc = kids_wait(0, t_start + (uint64_t)((O.ready_s + 5) * 1e9));
    sstats_t C;
    memset(&C, 0, sizeof(C));
    hist_init(&C.conn_lat);
    C.t_first_start = UINT64_MAX;
    int first_err = 0;
    for (int k = 0; k < O.procs; k++) {
        sstats_t *st = &kids[k].st;
        C.n_ok += st->n_ok;
        C.n_fail += st->n_fail;
        C.n_badresp += st->n_badresp;
        if (st->t_first_start && st->t_first_start < C.t_first_start) C.t_first_start = st->t_first_start;
        if (st->t_last_open > C.t_last_open) C.t_last_open = st->t_last_open;
        hist_merge(&C.conn_lat, &st->conn_lat);
        if (!first_err) first_err = st->first_err;
    }
    double conn_s = C.t_last_open > C.t_first_start ? (double)(C.t_last_open - C.t_first_start) / 1e9 : 0;
    double conn_rate = conn_s > 0 ? C.n_ok / conn_s : 0;
    if (have_srv) srv_sample(O.server_pids, O.nserver_pids, &s1);
    printf("connect: %d of %d subscribers open in %.3f s: %.0f subscriptions/s (%d failed%s%s)\n",
           C.n_ok, O.nsubs, conn_s, conn_rate, C.n_fail,
           first_err ? ", first error: " : "",
           first_err > 0 ? strerror(first_err) : first_err < 0 ? "bad HTTP status" : "");
    if (first_err < 0)
        printf("  first refused subscriber got HTTP status %d\n", -first_err);
    print_hist("connect time", "connect", &C.conn_lat);
    kv("subs_ok", "%d", C.n_ok);
    kv("subs_fail", "%d", C.n_fail);
    kv("connect_rate", "%.1f", conn_rate);
    if (have_srv && C.n_ok) {
        kv("connect_cpu_us", "%.2f", (s1.cpu_s - s0.cpu_s) * 1e6 / C.n_ok);
        printf("  server CPU %.2f us per connection\n", (s1.cpu_s - s0.cpu_s) * 1e6 / C.n_ok);
    }
    int ok = rc == 0 && C.n_ok == O.nsubs;
    if (!ok)
        printf("FAILED: only %d of %d subscribers connected\n", C.n_ok, O.nsubs);

    /* ---- publishers, then wait until the server counts every subscriber */
    pubs = calloc((size_t)O.npubs, sizeof(pub_t));
    pub_next = calloc((size_t)O.npubs, sizeof(int));
    pub_next_at = calloc((size_t)O.npubs, sizeof(uint64_t));
    hist_init(&pub_lat);
    if (O.replay) {
        rbuf = malloc(RBUF_SIZE);
        hist_init(&SS.lat);
        hist_init(&SS.lat_read);
        rsub.fd = -1;
        rsub.state = S_CLOSED;
    }
    for (int i = 0; ok && i < O.npubs; i++) {
        pubs[i].idx = i;
        pubs[i].port = O.npub_ports ? O.pub_ports[i % O.npub_ports] : O.port;
        pubs[i].info_chan = -2;
        pubs[i].resp.clen = -1;
        if (pub_open(&pubs[i]) < 0) die("publisher connect: %s", strerror(errno));
    }
    uint64_t t_ready = 0;
    if (ok) {
        if (pub_loop(all_connected, noop_kick, now_ns() + 10000000000ull) < 0)
            die("publishers could not connect");
        if (O.total_path || (O.info_path && *O.info_path)) {
            if (pub_loop(info_pred, info_kick, now_ns() + (uint64_t)(O.ready_s * 1e9)) < 0) {
                if (O.total_path)
                    printf("FAILED: the server did not count all subscribers within %.0f s "
                           "(last answer: %d of %d)\n", O.ready_s, info_result, O.nsubs);
                else
                    printf("FAILED: the server did not count all subscribers of channel %s%d "
                           "within %.0f s (last answer: %d of %u)\n", O.prefix, info_chan_next,
                           O.ready_s, info_result, chan_expect[info_chan_next]);
                ok = 0;
            }
        }
        t_ready = now_ns();
        if (ok && C.t_first_start != UINT64_MAX)
            printf("  all subscribers counted by the server %.3f s after the first connect\n",
                   (double)(t_ready - C.t_first_start) / 1e9);
    }

    if (ok && O.mode == MODE_HOLD) {
        double left = (double)(hard_deadline - now_ns()) / 1e9 - 5;
        sleep_s(O.hold_s < left ? O.hold_s : (left > 0 ? left : 0));
        if (have_srv) srv_sample(O.server_pids, O.nserver_pids, &s2);
        kids_send(M_STOP, NULL, 0);
        kids_wait(1, now_ns() + 10000000000ull);
        int closed = 0;
        for (int k = 0; k < O.procs; k++) closed += kids[k].st.n_closed;
        if (have_srv) {
            double per = (double)(s2.rss_kb - s0.rss_kb) * 1024.0 / O.nsubs;
            printf("hold: server %d processes, %d threads, RSS %.1f MiB -> %.1f MiB: "
                   "%.0f bytes per subscriber\n", s2.nproc, (int)s2.threads,
                   s0.rss_kb / 1024.0, s2.rss_kb / 1024.0, per);
            kv("rss_before_kb", "%ld", s0.rss_kb);
            kv("rss_after_kb", "%ld", s2.rss_kb);
            kv("rss_per_sub_b", "%.0f", per);
            kv("threads", "%ld", s2.threads);
            kv("nproc", "%d", s2.nproc);
        }
        printf("hold: %d subscribers closed by the server during %.1f s\n", closed, O.hold_s);
        kv("closed", "%d", closed);
        kv("verified", "%s", closed ? "FAILED" : "OK");
        if (closed) ok = 0;
    } else if (ok) {
        /* ---- publish */
        ev_chan = malloc(sizeof(int) * (size_t)(O.nevents ? O.nevents : 1));
        pub_seq = calloc((size_t)O.nchans, sizeof(uint32_t));
        pub_ok = calloc((size_t)O.nchans, sizeof(uint32_t));
        unsigned seed = O.seed;
        for (int e = 0; e < O.nevents; e++)
            ev_chan[e] = O.random_chans ? (int)(rand_r(&seed) % (unsigned)O.nchans) : e % O.nchans;
        if (O.replay) {
            /* the history the resuming stream will be replayed */
            if (pub_loop(replay_published, replay_kick, hard_deadline - 20000000000ull) < 0)
                printf("FAILED: publishing the %d replay events did not finish in time\n",
                       O.replay), ok = 0;
            double s = (double)(t_replay_last - t_replay_first) / 1e9;
            printf("replay: %d events published on %s%d in %.3f s (%.0f/s, one publisher), "
                   "%d refused%s, first id %s\n", replay_ok, O.prefix, O.nchans, s,
                   s > 0 ? replay_ok / s : 0, replay_fail, replay_fail ? " (first status below)" : "",
                   replay_id[0] ? replay_id : "(none)");
            if (replay_fail) printf("  first refused replay publish: HTTP %d\n", replay_status);
            kv("replay_pub_rate", "%.1f", s > 0 ? replay_ok / s : 0);
            if (replay_fail || !replay_id[0]) ok = 0;
        }
        if (have_srv) srv_sample(O.server_pids, O.nserver_pids, &s2);
        if (O.redis_pid) srv_sample(&O.redis_pid, 1, &r2);
        uint64_t pdl = hard_deadline > now_ns() + (uint64_t)(O.drain_s * 1e9) + 5000000000ull
            ? hard_deadline - (uint64_t)(O.drain_s * 1e9) - 5000000000ull : now_ns();
        if (ok && pub_loop(events_answered, O.replay ? live_kick : event_kick, pdl) < 0)
            printf("FAILED: publishing did not finish before the time limit\n"), ok = 0;
        uint64_t rwin[2] = { 0, 0 };
        if (ok && O.replay) {
            rsub_start();
            if (pub_loop(rsub_done, noop_kick, now_ns() + (uint64_t)(O.drain_s * 1e9)) < 0)
                printf("FAILED: the resuming stream did not get its events within %.0f s\n",
                       O.drain_s);
            rwin[0] = rsub.t_start;
            rwin[1] = SS.t_last_recv ? SS.t_last_recv : now_ns();
            kids_send(M_WINDOW, rwin, sizeof(rwin));
        }
        kids_send(M_EXPECT, pub_ok, (size_t)O.nchans * sizeof(uint32_t));
        kids_wait(1, now_ns() + (uint64_t)((O.drain_s + 10) * 1e9));
        if (have_srv) srv_sample(O.server_pids, O.nserver_pids, &s3);
        /* (after a --kill, Redis is another process: no figure) */
        if (O.redis_pid && !O.kill_pid) srv_sample(&O.redis_pid, 1, &r3);

        sstats_t R;
        memset(&R, 0, sizeof(R));
        hist_init(&R.lat);
        hist_init(&R.lat_read);
        hist_init(&R.lat_in);
        hist_init(&R.lat_out);
        int missing = 0;
        for (int k = 0; k < O.procs; k++) {
            if (!kids[k].have_result) { missing++; continue; }
            sstats_t *st = &kids[k].st;
            R.deliveries += st->deliveries;
            R.lost += st->lost;
            R.dup += st->dup;
            R.wrongchan += st->wrongchan;
            R.malformed += st->malformed;
            R.n_closed += st->n_closed;
            R.incomplete_subs += st->incomplete_subs;
            if (st->t_last_recv > R.t_last_recv) R.t_last_recv = st->t_last_recv;
            hist_merge(&R.lat, &st->lat);
            hist_merge(&R.lat_read, &st->lat_read);
            hist_merge(&R.lat_in, &st->lat_in);
            hist_merge(&R.lat_out, &st->lat_out);
            R.reads += st->reads;
            R.stamped_reads += st->stamped_reads;
        }
        uint64_t expected = 0;
        for (int c = 0; c < O.nchans; c++)
            expected += (uint64_t)pub_ok[c] * chan_expect[c];
        double pub_s = t_pub_last > t_pub_first ? (double)(t_pub_last - t_pub_first) / 1e9 : 0;
        double del_s = R.t_last_recv > t_pub_first ? (double)(R.t_last_recv - t_pub_first) / 1e9 : 0;
        printf("publish: %llu events answered 2xx, %llu refused%s in %.3f s: %.0f publishes/s\n",
               (unsigned long long)pubs_ok, (unsigned long long)pubs_fail,
               pubs_fail ? " (first status below)" : "", pub_s, pub_s > 0 ? pubs_ok / pub_s : 0);
        if (pubs_fail) printf("  first refused publish: HTTP %d\n", pub_first_status);
        if (pub_noid) printf("  %llu hub answers without an update id\n", (unsigned long long)pub_noid);
        print_hist("publish answer", "pub", &pub_lat);
        if (pub_sub_short)
            printf("  %llu publish answers counted fewer subscribers than were connected\n",
                   (unsigned long long)pub_sub_short);
        printf("deliver: %llu of %llu expected deliveries in %.3f s: %.0f deliveries/s\n",
               (unsigned long long)R.deliveries, (unsigned long long)expected, del_s,
               del_s > 0 ? R.deliveries / del_s : 0);
        print_hist("publish-to-arrival", "lat", &R.lat);
        print_hist("publish-to-read", "lat_read", &R.lat_read);
        if (R.reads && R.stamped_reads < R.reads)
            printf("  %llu of %llu reads had no kernel receive stamp: their arrival is the read time\n",
                   (unsigned long long)(R.reads - R.stamped_reads), (unsigned long long)R.reads);
        kv("published", "%llu", (unsigned long long)pubs_ok);
        kv("pub_fail", "%llu", (unsigned long long)pubs_fail);
        kv("pub_rate", "%.1f", pub_s > 0 ? pubs_ok / pub_s : 0);
        kv("pub_sub_short", "%llu", (unsigned long long)pub_sub_short);
        kv("deliveries", "%llu", (unsigned long long)R.deliveries);
        kv("expected", "%llu", (unsigned long long)expected);
        kv("deliv_rate", "%.1f", del_s > 0 ? R.deliveries / del_s : 0);
        if (have_srv) {
            double cpu = s3.cpu_s - s2.cpu_s;
            printf("  server CPU %.3f s: %.3f us per delivery, %.1f us per publish; "
                   "%d processes, %ld threads, RSS %.1f MiB\n", cpu,
                   R.deliveries ? cpu * 1e6 / R.deliveries : 0,
                   pubs_ok ? cpu * 1e6 / pubs_ok : 0, s3.nproc, s3.threads, s3.rss_kb / 1024.0);
            kv("cpu_s", "%.3f", cpu);
            kv("cpu_us_per_delivery", "%.3f", R.deliveries ? cpu * 1e6 / R.deliveries : 0);
            kv("cpu_us_per_publish", "%.2f", pubs_ok ? cpu * 1e6 / pubs_ok : 0);
            kv("threads", "%ld", s3.threads);
            kv("rss_kb", "%ld", s3.rss_kb);
        }
        if (O.redis_pid && r3.nproc) {
            double cpu = r3.cpu_s - r2.cpu_s;
            printf("  redis CPU %.3f s: %.1f us per publish\n", cpu, pubs_ok ? cpu * 1e6 / pubs_ok : 0);
            kv("redis_cpu_s", "%.3f", cpu);
            kv("redis_cpu_us_per_publish", "%.2f", pubs_ok ? cpu * 1e6 / pubs_ok : 0);
        }
        if (O.npub_ports > 1 || O.retry_ms || O.kill_pid) {
            for (int i = 0; i < O.npubs; i++) {
                pub_t *q = &pubs[i];
                printf("  publisher %d (port %d): %llu answered 2xx, %llu refused", i, q->port,
                       (unsigned long long)q->n_ok, (unsigned long long)q->n_refused);
                if (t_kill && q->t_ok_after_kill)
                    printf(", first 2xx %.0f ms after the kill", ms(q->t_ok_after_kill - t_kill));
                printf("\n");
            }
        }
        if (O.retry_ms) {
            printf("retry: %llu publishes refused and sent again (%llu of them with the connection "
                   "lost)%s\n", (unsigned long long)pubs_refused, (unsigned long long)pubs_connlost,
                   pubs_refused ? "; first status below" : "");
            if (pubs_refused) printf("  first refused publish: HTTP %d (0: connection lost)\n",
                                     pub_first_status);
            kv("refused", "%llu", (unsigned long long)pubs_refused);
            kv("connlost", "%llu", (unsigned long long)pubs_connlost);
        }
        int kill_ok = 1;
        if (O.kill_pid) {
            /* the first 2xx to a request sent after the kill: overall, and
             * the last port to get one (each port: its publishers' first) */
            uint64_t first = 0, all = 0;
            int every = t_kill != 0;
            for (int i = 0; i < O.npubs; i++) {
                uint64_t t = pubs[i].t_ok_after_kill;
                if (t && (!first || t < first)) first = t;
            }
            for (int i = 0; every && i < O.npubs; i++) {
                uint64_t port_first = 0;
                for (int j = 0; j < O.npubs; j++) {
                    uint64_t t = pubs[j].t_ok_after_kill;
                    if (pubs[j].port == pubs[i].port && t && (!port_first || t < port_first))
                        port_first = t;
                }
                if (!port_first) every = 0;
                else if (port_first > all) all = port_first;
            }
            if (!t_kill) {
                printf("kill: FAILED: publishing ended before the kill was due\n");
            } else {
                printf("kill: SIGKILL to %d %.3f s into publishing; publishes refused after it %llu "
                       "(first %.0f ms, last %.0f ms after the kill)\n", O.kill_pid,
                       (double)(t_kill - t_pub_first) / 1e9, (unsigned long long)kill_refused,
                       t_kill_first_refused ? ms(t_kill_first_refused - t_kill) : 0.0,
                       t_kill_last_refused ? ms(t_kill_last_refused - t_kill) : 0.0);
                printf("kill: first publish answered 2xx %.0f ms after the kill; every port "
                       "answered 2xx %s%.0f ms after it\n", first ? ms(first - t_kill) : -1.0,
                       every ? "" : "(NOT: a port never did) ", every ? ms(all - t_kill) : -1.0);
                kv("kill_at_s", "%.3f", (double)(t_kill - t_pub_first) / 1e9);
                kv("kill_refused", "%llu", (unsigned long long)kill_refused);
                kv("kill_first_refused_ms", "%.1f",
                   t_kill_first_refused ? ms(t_kill_first_refused - t_kill) : -1.0);
                kv("kill_last_refused_ms", "%.1f",
                   t_kill_last_refused ? ms(t_kill_last_refused - t_kill) : -1.0);
                kv("kill_first_ok_ms", "%.1f", first ? ms(first - t_kill) : -1.0);
                kv("kill_all_ok_ms", "%.1f", every ? ms(all - t_kill) : -1.0);
            }
            if (!t_kill || !every) kill_ok = 0;
        }
        /* With --retry-ms a refused publish may have been written, so a
         * subscriber may get it twice: reported (dup), not a failure. */
        int good = !missing && !pubs_fail && !R.lost && !R.wrongchan && !R.malformed && !R.n_closed
            && (O.retry_ms ? R.deliveries >= expected : R.deliveries == expected && !R.dup)
            && kill_ok;
        if (O.replay) {
            /* the resuming stream: SS of this process */
            uint64_t want = (uint64_t)O.replay - 1;
            int rgood = ok && SS.deliveries == want && !SS.lost && !SS.dup && !SS.wrongchan
                && !SS.malformed && rsub.next_seq == (uint32_t)O.replay + 1;
            double rs = (double)(rwin[1] - rwin[0]) / 1e9;
            printf("replay: a stream resuming from the first id got %llu of %llu events in %.3f s "
                   "(connect to last event; first event after %.3f s): %.0f events/s; %s\n",
                   (unsigned long long)SS.deliveries, (unsigned long long)want, rs,
                   SS.t_first_recv ? (double)(SS.t_first_recv - rsub.t_start) / 1e9 : 0,
                   rs > 0 ? SS.deliveries / rs : 0,
                   rgood ? "all once each, in order" : "FAILED (lost, duplicated, reordered or cut off)");
            printf("  live events published during the replay: arrival p50 %.2f ms, p99 %.2f ms, "
                   "max %.2f ms (n=%llu)\n", ms(hist_q(&R.lat_in, 0.5)), ms(hist_q(&R.lat_in, 0.99)),
                   ms(R.lat_in.max), (unsigned long long)R.lat_in.count);
            printf("  live events published before or after it: arrival p50 %.2f ms, p99 %.2f ms, "
                   "max %.2f ms (n=%llu)\n", ms(hist_q(&R.lat_out, 0.5)), ms(hist_q(&R.lat_out, 0.99)),
                   ms(R.lat_out.max), (unsigned long long)R.lat_out.count);
            kv("replay_events", "%llu", (unsigned long long)SS.deliveries);
            kv("replay_ms", "%.3f", rs * 1e3);
            kv("replay_first_ms", "%.3f",
               SS.t_first_recv ? ms(SS.t_first_recv - rsub.t_start) : 0.0);
            kv("replay_rate", "%.1f", rs > 0 ? SS.deliveries / rs : 0);
            kv("live_in_n", "%llu", (unsigned long long)R.lat_in.count);
            kv("live_in_p50_ms", "%.3f", ms(hist_q(&R.lat_in, 0.5)));
            kv("live_in_p99_ms", "%.3f", ms(hist_q(&R.lat_in, 0.99)));
            kv("live_in_max_ms", "%.3f", ms(R.lat_in.max));
            kv("live_out_n", "%llu", (unsigned long long)R.lat_out.count);
            kv("live_out_p50_ms", "%.3f", ms(hist_q(&R.lat_out, 0.5)));
            kv("live_out_p99_ms", "%.3f", ms(hist_q(&R.lat_out, 0.99)));
            kv("live_out_max_ms", "%.3f", ms(R.lat_out.max));
            kv("replay_verified", "%s", rgood ? "OK" : "FAILED");
            good = good && rgood;
        }
        if (good && O.retry_ms) {
            printf("verify: OK: all %llu deliveries of the events answered 2xx to %d subscribers "
                   "arrived, in order; none lost; %llu received twice (refused publishes sent "
                   "again) or out of order\n", (unsigned long long)expected, O.nsubs,
                   (unsigned long long)R.dup);
        } else if (good) {
            printf("verify: OK: all %llu deliveries to %d subscribers arrived once each, in order; "
                   "none lost, none duplicated\n", (unsigned long long)expected, O.nsubs);
        } else {
            printf("verify: FAILED: lost %llu, duplicated or out of order %llu, wrong channel %llu, "
                   "malformed %llu, subscribers that missed events %llu, closed by the server %d, "
                   "subscriber processes without a result %d\n",
                   (unsigned long long)R.lost, (unsigned long long)R.dup,
                   (unsigned long long)R.wrongchan, (unsigned long long)R.malformed,
                   (unsigned long long)R.incomplete_subs, R.n_closed, missing);
            ok = 0;
        }
        kv("lost", "%llu", (unsigned long long)R.lost);
        kv("dup", "%llu", (unsigned long long)R.dup);
        kv("wrongchan", "%llu", (unsigned long long)R.wrongchan);
        kv("malformed", "%llu", (unsigned long long)R.malformed);
        kv("closed", "%d", R.n_closed);
        kv("verified", "%s", good ? "OK" : "FAILED");
    } else {
        kv("verified", "FAILED");
    }

    kids_send(M_STOP, NULL, 0);
    kids_wait(1, now_ns() + 5000000000ull);
    for (int k = 0; k < O.procs; k++) {
        if (!kids[k].have_result) kill(kids[k].pid, SIGKILL);
        waitpid(kids[k].pid, NULL, 0);
    }
    for (int i = 0; i < O.npubs; i++)
        if (pubs && pubs[i].fd > 0) close_rst(pubs[i].fd);
    struct rusage ru_self, ru_kids;
    getrusage(RUSAGE_SELF, &ru_self);
    getrusage(RUSAGE_CHILDREN, &ru_kids);
    double ccpu = (double)(ru_self.ru_utime.tv_sec + ru_self.ru_stime.tv_sec
                           + ru_kids.ru_utime.tv_sec + ru_kids.ru_stime.tv_sec)
        + (double)(ru_self.ru_utime.tv_usec + ru_self.ru_stime.tv_usec
                   + ru_kids.ru_utime.tv_usec + ru_kids.ru_stime.tv_usec) / 1e6;
    double wall = (double)(now_ns() - t_start) / 1e9;
    printf("client: %.2f s CPU in %.2f s (this tool shares the machine with the server)\n",
           ccpu, wall);
    kv("client_cpu_s", "%.3f", ccpu);
    kv("wall_s", "%.3f", wall);
    if (kvf) fclose(kvf);
    return ok ? 0 : 1;
}

/*
 * sse-publish: publish one Server-Sent Event from a shell script or a cron
 * job, without writing HTTP.
 *
 * As root or as the httpd user it talks to mod_sse's relay directly over
 * its unix socket (the newest /var/run/apache2/sse-relay.*.sock, or
 * --socket), in the relay's own frame format (sse_wire.h), exactly as the
 * publish handler does; --namespace then says whose channels these are
 * (the relay serves every virtual host).  Anybody else gives --url, an http:// publish
 * location, and the event goes out as an ordinary form POST.  Either way the
 * event is checked first with the module's own code (sse_event.c), so what
 * the server would refuse is refused here, with its reason, before anything
 * is sent.
 */
#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "sse_event.h"
#include "sse_proto.h"
#include "sse_sock.h"
#include "sse_wire.h"
#include "sse_version.h"

enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,
    EXIT_INVALID = 2,
    EXIT_UNREACHABLE = 3,
    EXIT_REFUSED = 4
};

#define RELAY_GLOB      "/var/run/apache2/sse-relay.*.sock"
#define HISTORY_COUNT   100     /* SSEHistory's default */
#define HISTORY_AGE     3600
#define IO_TIMEOUT      10      /* seconds, for connect, send and receive */
#define MAX_ANSWER      (1024 * 1024)

static const char usage_text[] =
"usage: sse-publish [--event NAME] [--id ID] [--retry MS]\n"
"                   [--namespace NS [--socket PATH] | --url URL] CHANNEL [DATA | -]\n"
"\n"
"Publish one Server-Sent Event on CHANNEL (several: \"a,b\") through\n"
"mod_sse and print the server's JSON answer, e.g.\n"
"  {\"channel\":\"news\",\"id\":\"1795616731389\",\"subscribers\":3}\n"
"DATA '-' or no DATA: the data is read from standard input (one final\n"
"line break is dropped).\n"
"\n"
"  --event NAME   event name (default: none, delivered to onmessage)\n"
"  --id ID        event id (default: the server assigns the next number)\n"
"  --retry MS     reconnection delay sent to the browsers\n"
"  --namespace NS the channels' namespace, needed through the relay's\n"
"                 socket: the site's ServerName (lower case) or the\n"
"                 SSENamespace of its locations\n"
"  --socket PATH  the relay's unix socket (default: the newest\n"
"                 " RELAY_GLOB "); root or the httpd user only\n"
"  --url URL      an http:// URL of a 'SetHandler sse-publish' location:\n"
"                 the event is POSTed there as a form (for other users;\n"
"                 the location decides the namespace)\n"
"  --help         this text; --version: mod_sse's version\n"
"\n"
"Through the socket the event is kept in the history as SSEHistory's\n"
"default does (100 events per channel, one hour).\n"
"\n"
"Exit status: 0 published; 1 usage error; 2 invalid event (the reason is\n"
"printed); 3 the relay or server cannot be reached; 4 the server refused\n"
"(its HTTP status and reason are printed; through the socket: the relay\n"
"closed the connection without an answer).\n";

typedef struct {
    const char *ns;             /* --namespace */
    const char *socket;
    const char *url;
    apr_array_header_t *chans;  /* const char * */
    sse_event_t ev;
} request_t;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("sse-publish: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int usage_error(const char *why)
{
    if (why) {
        say("%s", why);
    }
    /* the synopsis: the first two lines */
    fprintf(stderr, "%.*s\n(sse-publish --help: options and exit status)\n",
            (int)(strstr(usage_text, "\n\n") - usage_text), usage_text);
    return EXIT_USAGE;
}

/* All of standard input, without one final line break; NULL on error. */
static char *read_stdin(apr_pool_t *p, apr_size_t *len)
{
    apr_size_t cap = 65536, n = 0;
    char *buf = malloc(cap), *copy;
    size_t got;

    while (buf && (got = fread(buf + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            /* half a relay frame: room for the other fields */
            char *bigger = cap * 2 <= SSE_PROTO_MAX_FRAME / 2
                           ? realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    if (!buf || ferror(stdin)) {
        free(buf);
        return NULL;
    }
    if (n && buf[n - 1] == '\n') {
        n--;
        if (n && buf[n - 1] == '\r') {
            n--;
        }
    }
    copy = apr_pstrmemdup(p, buf, n);
    free(buf);
    *len = n;
    return copy;
}

static void set_timeouts(int fd)
{
    struct timeval tv = { IO_TIMEOUT, 0 };

    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* --- through the relay socket -------------------------------------------- */

/* The newest relay socket of the system's httpd, or NULL. */
static const char *find_socket(apr_pool_t *p)
{
    glob_t g;
    const char *best = NULL;
    time_t newest = 0;
    size_t i;

    if (glob(RELAY_GLOB, 0, NULL, &g) != 0) {
        return NULL;
    }
    for (i = 0; i < g.gl_pathc; i++) {
        struct stat sb;
        if (stat(g.gl_pathv[i], &sb) == 0 && S_ISSOCK(sb.st_mode)
            && (!best || sb.st_mtime > newest)) {
            best = apr_pstrdup(p, g.gl_pathv[i]);
            newest = sb.st_mtime;
        }
    }
    globfree(&g);
    return best;
}

/* The relay at path gave no answer (errno e): say why; an exit status. */
static int relay_no_answer(const char *path, int e)
{
    if (e == ETIMEDOUT || e == EAGAIN || e == EWOULDBLOCK) {
        say("the relay at %s did not answer within %d s", path, IO_TIMEOUT);
        return EXIT_UNREACHABLE;
    }
    say("the relay at %s closed the connection without an answer "
        "(refused: a user other than root or the httpd user, or a relay "
        "too busy to answer in time)",
        path);
    return EXIT_REFUSED;
}

/* Send the request frame req on fd (connected to the relay at path) and
 * read its RESULT into *res (the payload and the array in p).  An exit
 * status, the reason said. */
static int relay_exchange(apr_pool_t *p, int fd, const char *path,
                          sse_buf_t *req, sse_wire_result_t *res)
{
    sse_frame_hdr_t h;
    sse_rd_t rd;
    char *payload = NULL;

    char raw[sizeof(h)];

    sse_frame_stamp(req);       /* as sse_relay_call does */
    if (sse_sock_write_all(fd, req->data, req->len)
        || sse_sock_read_all(fd, raw, sizeof(raw), IO_TIMEOUT * 1000)) {
        return relay_no_answer(path, errno);
    }
    if (sse_frame_hdr_read(raw, &h) == -2) {
        say("the relay at %s speaks frame format %u, this sse-publish %u: "
            "use the sse-publish of the module's build", path,
            (unsigned)sse_frame_format(&h), SSE_FRAME_FORMAT);
        return EXIT_REFUSED;
    }
    if ((h.type != SSE_OP_RESULT && h.type != SSE_OP_REFUSED)
        || h.len > MAX_ANSWER
        || sse_sock_read_all(fd, payload = apr_palloc(p, h.len + 1), h.len,
                             IO_TIMEOUT * 1000)) {
        return relay_no_answer(path, errno);
    }
    rd.p = payload;
    rd.left = h.len;
    if (h.type == SSE_OP_REFUSED) {
        const char *why;
        size_t len;
        if (sse_wire_refused_get(&rd, &why, &len)) {
            say("the relay at %s answered with a malformed frame", path);
        }
        else {
            say("the relay at %s refused the event: %.*s", path, (int)len,
                why);
        }
        return EXIT_REFUSED;
    }
    if (sse_wire_result_get(p, &rd, res)) {
        say("the relay at %s answered with a malformed frame", path);
        return EXIT_REFUSED;
    }
    return EXIT_OK;
}

/* One publish on one channel: its JSON answer in *json (in p), or an exit
 * status with the reason said. */
static int relay_publish(apr_pool_t *p, const char *path, const char *ns,
                         const char *chan, const sse_event_t *ev,
                         const char **json)
{
    sse_buf_t b = { 0 };
    sse_wire_publish_t pub = { NULL, { 0 }, HISTORY_COUNT, HISTORY_AGE, NULL };
    sse_wire_result_t res;
    long subs = 0;
    int fd, i, rc;

    if ((fd = sse_sock_connect_unix(path, IO_TIMEOUT)) < 0) {
        say("cannot connect to the relay at %s: %s%s", path, strerror(errno),
            errno == EACCES ? " (only root and the httpd user may; "
                              "others publish with --url)" : "");
        return EXIT_UNREACHABLE;
    }
    pub.key = sse_key_make(p, ns, chan);
    pub.ev = *ev;
    if (sse_wire_publish_put(&b, &pub)) {
        say("out of memory");
        rc = EXIT_INVALID;
    }
    else {
        rc = relay_exchange(p, fd, path, &b, &res);
    }
    sse_buf_free(&b);
    close(fd);
    if (rc != EXIT_OK) {
        return rc;
    }
    for (i = 0; i < res.replies->nelts; i++) {
        subs += atol(APR_ARRAY_IDX(res.replies, i, const char *));
    }
    *json = apr_psprintf(p, "{\"channel\":%s,\"id\":%s,\"subscribers\":%ld}",
                         sse_json_str(p, chan), sse_json_str(p, res.id), subs);
    return EXIT_OK;
}

static int publish_socket(apr_pool_t *p, const request_t *rq)
{
    apr_array_header_t *out = apr_array_make(p, rq->chans->nelts, sizeof(char *));
    const char *path = rq->socket ? rq->socket : find_socket(p);
    int i, rc;

    if (!path) {
        say("no relay socket found (" RELAY_GLOB "); is httpd running with "
            "mod_sse?  Give --socket PATH, or --url URL");
        return EXIT_UNREACHABLE;
    }
    for (i = 0; i < rq->chans->nelts; i++) {
        const char *json;
        rc = relay_publish(p, path, rq->ns,
                           APR_ARRAY_IDX(rq->chans, i, const char *),
                           &rq->ev, &json);
        if (rc != EXIT_OK) {
            if (i) {
                say("published on %d of %d channels before this", i,
                    rq->chans->nelts);
            }
            return rc;
        }
        APR_ARRAY_PUSH(out, const char *) = json;
    }
    if (out->nelts == 1) {
        printf("%s\n", APR_ARRAY_IDX(out, 0, const char *));
    }
    else {
        printf("[%s]\n", apr_array_pstrcat(p, out, ','));
    }
    return EXIT_OK;
}

/* --- through an HTTP publish URL ----------------------------------------- */

typedef struct {
    const char *host;           /* without brackets */
    const char *port;
    const char *hostport;       /* for the Host header */
    const char *path;           /* with the query */
} url_t;

/* Split an http:// URL; NULL or the reason it is not one. */
static const char *url_parse(apr_pool_t *p, const char *s, url_t *u)
{
    const char *hp, *slash, *close;

    if (strncasecmp(s, "http://", 7)) {
        return strncasecmp(s, "https://", 8) ? "--url must start with http://"
            : "--url: https:// is not supported; use a local http:// "
              "publish location (or curl)";
    }
    hp = s + 7;
    slash = hp + strcspn(hp, "/?#");
    u->hostport = apr_pstrmemdup(p, hp, (apr_size_t)(slash - hp));
    u->path = *slash == '/' ? apr_pstrdup(p, slash)
              : apr_pstrcat(p, "/", slash, NULL);
    if (strchr(u->path, '#')) {
        *strchr(u->path, '#') = '\0';
    }
    if (strchr(u->hostport, '@')) {
        return "--url: user:password@ is not supported";
    }
    if (u->hostport[0] == '[') {
        if (!(close = strchr(u->hostport, ']'))) {
            return "--url: unterminated [IPv6 address]";
        }
        u->host = apr_pstrmemdup(p, u->hostport + 1,
                                 (apr_size_t)(close - u->hostport - 1));
        u->port = close[1] == ':' ? close + 2 : "80";
    }
    else {
        const char *colon = strchr(u->hostport, ':');
        u->host = colon ? apr_pstrmemdup(p, u->hostport,
                                         (apr_size_t)(colon - u->hostport))
                        : u->hostport;
        u->port = colon ? colon + 1 : "80";
    }
    if (!*u->host || !*u->port || strspn(u->port, "0123456789") != strlen(u->port)) {
        return "--url: bad host or port";
    }
    return NULL;
}

/* application/x-www-form-urlencoded escaping of s[0..len). */
static char *form_escape(apr_pool_t *p, const char *s, apr_size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, len * 3 + 1), *w = out;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || strchr("-._~", c)) {
            *w++ = (char)c;
        }
        else if (c == ' ') {
            *w++ = '+';
        }
        else {
            *w++ = '%';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
    }
    *w = '\0';
    return out;
}

static const char *form_body(apr_pool_t *p, const request_t *rq)
{
    const char *chans = apr_array_pstrcat(p, rq->chans, ',');
    const char *body = apr_pstrcat(p, "channel=", form_escape(p, chans, strlen(chans)),
                                   "&data=", form_escape(p, rq->ev.data,
                                                         rq->ev.data_len), NULL);
    if (rq->ev.event) {
        body = apr_pstrcat(p, body, "&event=", form_escape(p, rq->ev.event,
                                                           strlen(rq->ev.event)), NULL);
    }
    if (rq->ev.id) {
        body = apr_pstrcat(p, body, "&id=", form_escape(p, rq->ev.id,
                                                        strlen(rq->ev.id)), NULL);
    }
    if (rq->ev.retry) {
        body = apr_pstrcat(p, body, "&retry=", rq->ev.retry, NULL);
    }
    return body;
}

static int http_connect(const url_t *u)
{
    struct addrinfo hints, *res, *ai;
    int fd = -1, rc, e = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(u->host, u->port, &hints, &res)) != 0) {
        say("cannot resolve %s: %s", u->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                         ai->ai_protocol)) < 0) {
            e = errno;
            continue;
        }
        set_timeouts(fd);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        say("cannot connect to %s: %s", u->hostport, strerror(e));
    }
    return fd;
}

/* Read the whole answer (HTTP/1.0: the server closes after it); its length,
 * or -1. */
static long http_read(int fd, char *buf, size_t cap)
{
    size_t n = 0;

    while (n < cap) {
        ssize_t got = recv(fd, buf + n, cap - n, 0);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return -1;
        }
        if (got == 0) {
            break;
        }
        n += (size_t)got;
    }
    buf[n] = '\0';
    return (long)n;
}

/* Whether the answer's head says Content-Type: text/plain. */
static int http_is_text(const char *answer)
{
    const char *end = strstr(answer, "\r\n\r\n"), *h = answer;

    while (h && (h = strstr(h, "\r\n")) != NULL && (!end || h < end)) {
        h += 2;
        if (!strncasecmp(h, "Content-Type:", 13)) {
            h += 13 + strspn(h + 13, " \t");
            return !strncasecmp(h, "text/plain", 10);
        }
    }
    return 0;
}

static int publish_url(apr_pool_t *p, const request_t *rq)
{
    url_t u;
    const char *err = url_parse(p, rq->url, &u), *body, *req, *text;
    char *answer;
    long n;
    int fd, status;

    if (err) {
        return usage_error(err);
    }
    body = form_body(p, rq);
    /* HTTP/1.0: no chunked answer to undo, and the server closes after it */
    req = apr_psprintf(p, "POST %s HTTP/1.0\r\nHost: %s\r\n"
                       "User-Agent: sse-publish\r\nAccept: application/json\r\n"
                       "Content-Type: application/x-www-form-urlencoded\r\n"
                       "Content-Length: %" APR_SIZE_T_FMT "\r\n\r\n",
                       u.path, u.hostport, strlen(body));
    if ((fd = http_connect(&u)) < 0) {
        return EXIT_UNREACHABLE;
    }
    answer = apr_palloc(p, MAX_ANSWER + 1);
    if (sse_sock_write_all(fd, req, strlen(req)) || sse_sock_write_all(fd, body, strlen(body))
        || (n = http_read(fd, answer, MAX_ANSWER)) < 0) {
        say("%s: %s", u.hostport, errno == EAGAIN ? "no answer in time"
                                                  : strerror(errno));
        close(fd);
        return EXIT_UNREACHABLE;
    }
    close(fd);
    if (sscanf(answer, "HTTP/%*d.%*d %d", &status) != 1) {
        say("%s did not answer in HTTP", u.hostport);
        return EXIT_UNREACHABLE;
    }
    text = strstr(answer, "\r\n\r\n");
    text = text ? text + 4 : "";
    if (status != 200) {
        /* mod_sse's refusals are one line of text/plain; others say less */
        const char *line = answer + strcspn(answer, " ") + 1;
        if (!http_is_text(answer)) {
            text = "";
        }
        say("the server refused: HTTP %.*s%s%.*s",
            (int)strcspn(line, "\r\n"), line, *text ? ": " : "",
            (int)strcspn(text, "\r\n"), text);
        return EXIT_REFUSED;
    }
    fputs(text, stdout);
    if (*text && text[strlen(text) - 1] != '\n') {
        fputc('\n', stdout);
    }
    return EXIT_OK;
}

/* --- main ---------------------------------------------------------------- */

/* The options into rq, and whether they go together: EXIT_OK, or an exit
 * status with the reason said. */
static int parse_opts(apr_pool_t *p, int argc, char **argv, request_t *rq)
{
    static const struct option opts[] = {
        { "event", required_argument, NULL, 'e' },
        { "id", required_argument, NULL, 'i' },
        { "retry", required_argument, NULL, 'r' },
        { "namespace", required_argument, NULL, 'n' },
        { "socket", required_argument, NULL, 's' },
        { "url", required_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+e:i:r:n:s:u:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'e': rq->ev.event = optarg; break;
        case 'i': rq->ev.id = optarg; break;
        case 'r': rq->ev.retry = optarg; break;
        case 'n': rq->ns = optarg; break;
        case 's': rq->socket = optarg; break;
        case 'u': rq->url = optarg; break;
        case 'h': fputs(usage_text, stdout); exit(EXIT_OK);
        case 'V': puts("sse-publish (mod_sse) " SSE_VERSION_STRING); exit(EXIT_OK);
        default:
            return usage_error(apr_psprintf(p, "unknown option or missing "
                                            "value: %s", argv[optind - 1]));
        }
    }
    if (rq->socket && rq->url) {
        return usage_error("give --socket or --url, not both");
    }
    if (rq->url && rq->ns) {
        return usage_error("--namespace goes with the relay's socket; with "
                           "--url the publish location decides");
    }
    if (!rq->url && !rq->ns) {
        return usage_error("through the relay's socket, give --namespace NS: "
                           "the ServerName of the site whose channels these "
                           "are (lower case), or their SSENamespace");
    }
    if (rq->ns && !sse_namespace_valid(rq->ns, strlen(rq->ns))) {
        say("invalid namespace '%s' (1-%d characters of A-Z a-z 0-9 . _ ~ : "
            "@ -)", rq->ns, SSE_NAMESPACE_MAX);
        return EXIT_INVALID;
    }
    return EXIT_OK;
}

/* What follows the options, CHANNEL [DATA | -], into rq's channels and
 * event, checked as the server would: EXIT_OK, or an exit status with the
 * reason said. */
static int parse_operands(apr_pool_t *p, int argc, char **argv, request_t *rq)
{
    const char *err;

    if (optind >= argc || argc - optind > 2) {
        return usage_error(optind >= argc ? "no channel given"
                                          : "too many arguments");
    }
    rq->chans = apr_array_make(p, 4, sizeof(char *));
    if ((err = sse_channels_parse(p, argv[optind], rq->chans)) != NULL) {
        say("%s", err);
        return EXIT_INVALID;
    }
    if (!rq->chans->nelts) {
        say("no channel given");
        return EXIT_INVALID;
    }
    if (optind + 1 < argc && strcmp(argv[optind + 1], "-")) {
        rq->ev.data = argv[optind + 1];
        rq->ev.data_len = strlen(rq->ev.data);
    }
    else if (!(rq->ev.data = read_stdin(p, &rq->ev.data_len))) {
        say("reading standard input: %s", strerror(errno));
        return errno == EFBIG ? EXIT_INVALID : EXIT_USAGE;
    }
    if ((err = sse_event_check(p, &rq->ev)) != NULL) {
        say("invalid event: %s", err);
        return EXIT_INVALID;
    }
    return EXIT_OK;
}

static int parse_args(apr_pool_t *p, int argc, char **argv, request_t *rq)
{
    int rc;

    memset(rq, 0, sizeof(*rq));
    rc = parse_opts(p, argc, argv, rq);
    return rc != EXIT_OK ? rc : parse_operands(p, argc, argv, rq);
}

int main(int argc, char **argv)
{
    apr_pool_t *p;
    request_t rq;
    int rc;

    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&p, NULL) != APR_SUCCESS) {
        fputs("sse-publish: cannot initialize APR\n", stderr);
        return EXIT_UNREACHABLE;
    }
    atexit(apr_terminate);
    rc = parse_args(p, argc, argv, &rq);
    if (rc == EXIT_OK) {
        rc = rq.url ? publish_url(p, &rq) : publish_socket(p, &rq);
    }
    fflush(stdout);
    return rc;
}

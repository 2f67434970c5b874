/*
 * mod_sse.c: Server-Sent Events on named channels for Apache httpd 2.4.
 *
 * This file holds only the module glue: directives, per-directory config,
 * hooks and the two handlers.  "sse" turns a GET into a stream: it sends
 * the headers, then hands the socket to this child's broker thread
 * (sse_broker.c) and returns, freeing the worker.  "sse-publish" validates
 * an event and sends it through the relay (sse_relay.h, sse_relayd.c) to every child;
 * GET and DELETE on it inspect and close channels.  Framing and parsing
 * live in sse_event.c.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "http_ssl.h"
#include "mpm_common.h"
#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_atomic.h"
#include "apr_shm.h"
#include "apr_uri.h"

#define SSE_MODULE_FILE
#include "sse_config.h"
#include "sse_event.h"
#include "sse_broker.h"
#include "sse_relay.h"
#include "sse_relayd.h"
#include "sse_wire.h"
#include "sse_held.h"
#include "sse_cluster.h"
#include "sse_count.h"
#include "sse_status.h"

/* --- configuration ------------------------------------------------------- */

static void *sse_create_dir_config(apr_pool_t *p, char *dir)
{
    sse_dir_conf_t *dc = apr_pcalloc(p, sizeof(*dc));

    (void)dir;
    dc->max_event_size = -1;
    dc->max_backlog = -1;
    dc->keepalive = -1;
    dc->retry = -1;
    dc->history = -1;
    dc->history_age = -1;
    dc->max_channels = -1;
    dc->handover = -1;
    dc->protected_ok = -1;
    return dc;
}

static void *sse_merge_dir_config(apr_pool_t *p, void *basev, void *addv)
{
    sse_dir_conf_t *base = basev, *add = addv;
    sse_dir_conf_t *dc = apr_pcalloc(p, sizeof(*dc));

    dc->channel = add->channel ? add->channel : base->channel;
    dc->event = add->event ? add->event : base->event;
    dc->data = add->data ? add->data : base->data;
    dc->max_event_size = add->max_event_size >= 0 ? add->max_event_size
                                                  : base->max_event_size;
    dc->max_backlog = add->max_backlog >= 0 ? add->max_backlog
                                            : base->max_backlog;
#define SSE_MERGE_INT(f) dc->f = add->f >= 0 ? add->f : base->f
    SSE_MERGE_INT(keepalive);
    SSE_MERGE_INT(retry);
    SSE_MERGE_INT(max_channels);
    SSE_MERGE_INT(handover);
    SSE_MERGE_INT(protected_ok);
#undef SSE_MERGE_INT
    /* SSEProtectedChannels on was said of the SSEChannel beside it: a
     * section with an SSEChannel of its own must say it again */
    if (add->channel && add->protected_ok < 0) {
        dc->protected_ok = -1;
    }
    dc->ns = add->ns ? add->ns : base->ns;
    dc->origins = add->origins ? add->origins : base->origins;
    if (add->history >= 0) {
        dc->history = add->history;
        dc->history_age = add->history_age;
    }
    else {
        dc->history = base->history;
        dc->history_age = base->history_age;
    }
    return dc;
}

static void *sse_create_srv_config(apr_pool_t *p, server_rec *s)
{
    sse_srv_conf_t *sc = apr_pcalloc(p, sizeof(*sc));

    (void)s;
    sc->max_streams = -1;
    sc->max_held = -1;
    return sc;
}

/* A virtual host with a server directive of its own keeps the main
 * server's others. */
static void *sse_merge_srv_config(apr_pool_t *p, void *basev, void *addv)
{
    sse_srv_conf_t *base = basev, *add = addv;
    sse_srv_conf_t *sc = apr_pmemdup(p, add, sizeof(*sc));

    if (sc->max_streams < 0) {
        sc->max_streams = base->max_streams;
    }
    if (sc->max_held < 0) {
        sc->max_held = base->max_held;
    }
    /* the cluster and stats settings are the main server's alone */
    sc->cluster_url = base->cluster_url;
    sc->cluster_prefix = base->cluster_prefix;
    sc->cluster_password = base->cluster_password;
    sc->stats_channel = base->stats_channel;
    return sc;
}

/* The value of an int setting, or its default when unset. */
#define SSE_OR(v, dflt) ((v) >= 0 ? (v) : (dflt))

static const char *set_expr(cmd_parms *cmd, void *dcv, const char *arg)
{
    const char *err = NULL;
    ap_expr_info_t *expr = ap_expr_parse_cmd(cmd, arg,
                                             AP_EXPR_FLAG_STRING_RESULT,
                                             &err, NULL);
    char *base = (char *)dcv;

    if (err) {
        return apr_psprintf(cmd->pool, "%s: cannot parse '%s': %s",
                            cmd->cmd->name, arg, err);
    }
    *(ap_expr_info_t **)(base + (apr_size_t)cmd->info) = expr;
    return NULL;
}

/* SSEChannel: its items (split at commas and blanks outside %{...}), each
 * an ap_expr string compiled alone, so that where protected channels are
 * served each item can be held to one channel name (a user called
 * "bob,@user-alice" cannot add a channel to the list). */
static const char *set_channel(cmd_parms *cmd, void *dcv, const char *arg)
{
    sse_dir_conf_t *dc = dcv;
    const char *p = arg, *start = NULL, *err = NULL;
    int depth = 0;

    /* A constant channel list can be checked now, by configtest. */
    if (!strstr(arg, "%{") && !strstr(arg, SSE_PRIVATE_WORD)) {
        apr_array_header_t *chans = apr_array_make(cmd->temp_pool, 4,
                                                   sizeof(char *));
        err = sse_channels_parse(cmd->temp_pool, arg, chans);
        if (err || !chans->nelts) {
            return apr_psprintf(cmd->pool, "SSEChannel '%s': %s", arg,
                                err ? err : "no channel name");
        }
    }
    dc->channel = apr_array_make(cmd->pool, 2, sizeof(ap_expr_info_t *));
    for (;; p++) {
        int sep = !*p || (!depth && strchr(", \t", *p));
        if (start && sep) {
            ap_expr_info_t *e = ap_expr_parse_cmd(cmd,
                apr_pstrmemdup(cmd->pool, start, (apr_size_t)(p - start)),
                AP_EXPR_FLAG_STRING_RESULT, &err, NULL);
            if (err) {
                return apr_psprintf(cmd->pool, "SSEChannel: cannot parse "
                                    "'%s': %s", arg, err);
            }
            APR_ARRAY_PUSH(dc->channel, ap_expr_info_t *) = e;
            start = NULL;
        }
        else if (!start && !sep) {
            start = p;
        }
        if (!*p) {
            return dc->channel->nelts ? NULL : "SSEChannel: no channel name";
        }
        if (p[0] == '%' && p[1] == '{') {
            depth++;
            p++;
        }
        else if (*p == '}' && depth) {
            depth--;
        }
    }
}

static const char *set_size(cmd_parms *cmd, void *dcv, const char *arg)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    char *base = (char *)dcv;

    if (*end || end == arg || v < 1 || v > 64 * 1024 * 1024) {
        return apr_psprintf(cmd->pool, "%s must be a number of bytes "
                            "from 1 to 67108864, not '%s'",
                            cmd->cmd->name, arg);
    }
    *(apr_off_t *)(base + (apr_size_t)cmd->info) = (apr_off_t)v;
    return NULL;
}

/* A whole number in [min, max]; returns NULL or an error for cmd. */
static const char *parse_int(cmd_parms *cmd, const char *arg, int min,
                             int max, int *out)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);

    if (*end || end == arg || v < min || v > max) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number "
                            "from %d to %d", cmd->cmd->name, arg, min, max);
    }
    *out = (int)v;
    return NULL;
}

static const char *set_int(cmd_parms *cmd, void *dcv, const char *arg)
{
    char *base = (char *)dcv;
    int max = !strcmp(cmd->cmd->name, "SSERetry") ? 86400000
            : !strcmp(cmd->cmd->name, "SSEKeepalive") ? 3600 : 100000;
    int min = !strcmp(cmd->cmd->name, "SSEMaxChannels") ? 1 : 0;

    return parse_int(cmd, arg, min, max,
                     (int *)(base + (apr_size_t)cmd->info));
}

static const char *set_history(cmd_parms *cmd, void *dcv, const char *count,
                               const char *age)
{
    sse_dir_conf_t *dc = dcv;
    const char *err = parse_int(cmd, count, 0, 100000, &dc->history);

    dc->history_age = SSE_DEFAULT_HISTORY_AGE;
    if (!err && age) {
        err = parse_int(cmd, age, 1, 30 * 86400, &dc->history_age);
    }
    return err;
}

static const char *set_max_streams(cmd_parms *cmd, void *dummy,
                                   const char *arg)
{
    sse_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &sse_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err) {
        return err;
    }
    if (!strcmp(cmd->cmd->name, "SSEMaxHeldStreams")) {
        return parse_int(cmd, arg, 0, 100000, &sc->max_held);
    }
    return parse_int(cmd, arg, 0, 10000000, &sc->max_streams);
}

static const char *set_cluster(cmd_parms *cmd, void *dummy, const char *arg)
{
    sse_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &sse_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *name = cmd->cmd->name;

    (void)dummy;
    if (err) {
        return err;
    }
    if (!strcmp(name, "SSECluster")) {
        if ((err = sse_cluster_check_url(cmd->pool, arg)) != NULL) {
            return apr_pstrcat(cmd->pool, "SSECluster: ", err, NULL);
        }
        sc->cluster_url = arg;
    }
    else if (!strcmp(name, "SSEStatsChannel")) {
        if (!sse_channel_valid(arg, strlen(arg))) {
            return apr_psprintf(cmd->pool, "SSEStatsChannel: '%s' is not a "
                                "valid channel name", arg);
        }
        sc->stats_channel = arg;
    }
    else if (!strcmp(name, "SSEClusterPrefix")) {
        if (!*arg || strlen(arg) > 64
            || arg[strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                               "QRSTUVWXYZ0123456789_-:.")]) {
            return "SSEClusterPrefix: 1-64 characters of A-Z a-z 0-9 _ - : .";
        }
        sc->cluster_prefix = arg;
    }
    else {
        /* read now, as root: the file may be readable by root alone */
        char *buf = NULL;
        apr_file_t *f;
        apr_finfo_t fi;
        const char *path = ap_server_root_relative(cmd->pool, arg);
        apr_size_t n;
        if (!path || apr_file_open(&f, path, APR_READ, 0, cmd->pool)
            || apr_file_info_get(&fi, APR_FINFO_SIZE, f)
            || fi.size > 4096 || !(buf = apr_palloc(cmd->pool, (apr_size_t)fi.size + 1))
            || apr_file_read_full(f, buf, (apr_size_t)fi.size, &n)) {
            return apr_psprintf(cmd->pool, "SSEClusterPasswordFile: cannot "
                                "read '%s' (at most 4096 bytes)", arg);
        }
        apr_file_close(f);
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';   /* the first line is the password */
        sc->cluster_password = buf;
    }
    return NULL;
}

/* An On|Off setting stored as 1 or 0 at the offset cmd->info. */
static const char *set_flag(cmd_parms *cmd, void *dcv, int on)
{
    *(int *)((char *)dcv + (apr_size_t)cmd->info) = on;
    return NULL;
}

static const char *set_namespace(cmd_parms *cmd, void *dcv, const char *arg)
{
    if (!sse_namespace_valid(arg, strlen(arg))) {
        return apr_psprintf(cmd->pool, "SSENamespace: '%s' is not a valid "
                            "namespace (1-%d characters of A-Z a-z 0-9 . _ ~ "
                            ": @ -)", arg, SSE_NAMESPACE_MAX);
    }
    ((sse_dir_conf_t *)dcv)->ns = arg;
    return NULL;
}

/* SSEPublishOrigins: each an origin as a browser sends it (scheme://host
 * [:port], no path), lower case. */
static const char *set_origins(cmd_parms *cmd, void *dcv, const char *arg)
{
    sse_dir_conf_t *dc = dcv;
    apr_uri_t u;
    char *o;

    if (apr_uri_parse(cmd->pool, arg, &u) != APR_SUCCESS || !u.scheme
        || !u.hostname || (u.path && strcmp(u.path, "")) || u.query
        || u.fragment || u.user || (strcasecmp(u.scheme, "http")
                                    && strcasecmp(u.scheme, "https"))) {
        return apr_psprintf(cmd->pool, "SSEPublishOrigins: '%s' is not an "
                            "origin such as https://app.example.com or "
                            "http://localhost:8080 (scheme, host and port, "
                            "no path)", arg);
    }
    if (!dc->origins) {
        dc->origins = apr_array_make(cmd->pool, 2, sizeof(const char *));
    }
    /* as a browser sends it: no default port, no trailing slash */
    o = apr_uri_unparse(cmd->pool, &u, APR_URI_UNP_OMITPATHINFO
                                       | APR_URI_UNP_OMITUSERINFO);
    ap_str_tolower(o);
    APR_ARRAY_PUSH(dc->origins, const char *) = o;
    return NULL;
}

static const command_rec sse_cmds[] = {
    AP_INIT_TAKE1("SSEChannel", set_channel, NULL, OR_FILEINFO,
                  "Channel(s) of a stream or publish location: an ap_expr "
                  "string, several names separated by commas or spaces "
                  "(default: the 'channel' query argument)"),
    AP_INIT_TAKE1("SSEEvent", set_expr,
                  (void *)APR_OFFSETOF(sse_dir_conf_t, event), OR_FILEINFO,
                  "Default event name for a publish location (ap_expr string)"),
    AP_INIT_TAKE1("SSEData", set_expr,
                  (void *)APR_OFFSETOF(sse_dir_conf_t, data), OR_FILEINFO,
                  "Default event data for a publish location, used when the "
                  "request gives none (ap_expr string)"),
    AP_INIT_TAKE1("SSEMaxEventSize", set_size,
                  (void *)APR_OFFSETOF(sse_dir_conf_t, max_event_size),
                  OR_FILEINFO,
                  "Largest publish body in bytes (default 65536)"),
    AP_INIT_TAKE1("SSEMaxBacklog", set_size,
                  (void *)APR_OFFSETOF(sse_dir_conf_t, max_backlog),
                  OR_FILEINFO,
                  "Unsent bytes a stream may queue before it is closed as too "
                  "slow (default 262144)"),
    AP_INIT_TAKE1("SSEKeepalive", set_int,
                  (void *)APR_OFFSETOF(sse_dir_conf_t, keepalive), OR_FILEINFO,
                  "Seconds of quiet after which a stream gets a comment line "
                  "(default 15, 0: never)"),
    AP_INIT_TAKE1("SSERetry", set_int,
                  (void *)APR_OFFSETOF(sse_dir_conf_t, retry), OR_FILEINFO,
                  "Reconnection delay in ms sent to clients as 'retry:' when "
                  "a stream opens (default: none sent)"),
    AP_INIT_TAKE12("SSEHistory", set_history, NULL, OR_FILEINFO,
                   "Events a publish location keeps per channel for resuming "
                   "clients, and for how many seconds (default 100 3600)"),
    AP_INIT_TAKE1("SSEMaxChannels", set_int,
                  (void *)APR_OFFSETOF(sse_dir_conf_t, max_channels),
                  OR_FILEINFO,
                  "Most channels one stream or publish request may name "
                  "(default 32)"),
    AP_INIT_FLAG("SSEHandover", set_flag,
                 (void *)APR_OFFSETOF(sse_dir_conf_t, handover), OR_FILEINFO,
                 "On: a response (CGI, FastCGI, proxy, ...) carrying the "
                 "header " SSE_HANDOVER_HEADER " becomes an event stream on "
                 "those channels (default off)"),
    AP_INIT_TAKE1("SSENamespace", set_namespace, NULL, RSRC_CONF | ACCESS_CONF,
                  "The namespace of the channels of this server or location "
                  "(default: the virtual host's ServerName)"),
    AP_INIT_FLAG("SSEProtectedChannels", set_flag,
                 (void *)APR_OFFSETOF(sse_dir_conf_t, protected_ok), ACCESS_CONF,
                 "On: this stream location may serve protected channels "
                 "(names beginning with @) that its SSEChannel computes "
                 "(default off)"),
    AP_INIT_ITERATE("SSEPublishOrigins", set_origins, NULL,
                    RSRC_CONF | ACCESS_CONF,
                    "Origins (scheme://host[:port]) besides the server's own "
                    "from which a browser with credentials may publish here"),
    AP_INIT_TAKE1("SSEMaxSubscribers", set_max_streams, NULL, RSRC_CONF,
                  "Most open event streams in the whole server; more are "
                  "refused with 503 (default 50000, 0: no limit)"),
    AP_INIT_TAKE1("SSEMaxHeldStreams", set_max_streams, NULL, RSRC_CONF,
                  "Most TLS or HTTP/2 event streams per child process, each "
                  "holding a worker thread (default: half of "
                  "ThreadsPerChild, at least 1)"),
    AP_INIT_TAKE1("SSECluster", set_cluster, NULL, RSRC_CONF,
                  "Share channels, ids, history and counts with other servers "
                  "through Redis: redis://host:port[/db]"),
    AP_INIT_TAKE1("SSEStatsChannel", set_cluster, NULL, RSRC_CONF,
                  "Channel on which the server publishes its counters as a "
                  "JSON 'stats' event every second (default: none)"),
    AP_INIT_TAKE1("SSEClusterPrefix", set_cluster, NULL, RSRC_CONF,
                  "Prefix of mod_sse's Redis keys (default sse)"),
    AP_INIT_TAKE1("SSEClusterPasswordFile", set_cluster, NULL, RSRC_CONF,
                  "File whose first line is the Redis password (read at "
                  "start-up, as root)"),
    { NULL }
};

/* --- small helpers ------------------------------------------------------- */

/* End the request with status and a one-line text reason, logged too. */
static int sse_refuse(request_rec *r, int status, const char *allow,
                      const char *reason)
{
    ap_log_rerror(APLOG_MARK, status >= 500 ? APLOG_ERR : APLOG_INFO, 0, r,
                  "SSE00001: %d %s: %s", status, r->uri, reason);
    r->status = status;
    if (allow) {
        apr_table_setn(r->headers_out, "Allow", allow);
    }
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->headers_out, "Retry-After", "1");
    }
    ap_set_content_type(r, "text/plain; charset=utf-8");
    ap_rprintf(r, "%s\n", reason);
    return OK;
}

/* Append every value of the urlencoded field name in args to out.  Returns
 * NULL or a reason (a bad %-escape). */
static const char *sse_args_collect(apr_pool_t *p, const char *args,
                                    const char *name, apr_array_header_t *out)
{
    apr_size_t nlen = strlen(name);

    while (args && *args) {
        const char *end = strchr(args, '&');
        apr_size_t len = end ? (apr_size_t)(end - args) : strlen(args);
        if (len > nlen && !strncmp(args, name, nlen) && args[nlen] == '=') {
            char *v = apr_pstrmemdup(p, args + nlen + 1, len - nlen - 1);
            if (ap_unescape_urlencoded(v) != OK) {
                return apr_psprintf(p, "bad %%-escape in '%s'", name);
            }
            APR_ARRAY_PUSH(out, const char *) = v;
        }
        else if (len == nlen && !strncmp(args, name, nlen)) {
            APR_ARRAY_PUSH(out, const char *) = "";
        }
        args = end ? end + 1 : NULL;
    }
    return NULL;
}

/* The last value of name in args, or NULL; *err set on a bad escape. */
static const char *sse_arg(apr_pool_t *p, const char *args, const char *name,
                           const char **err)
{
    apr_array_header_t *v = apr_array_make(p, 1, sizeof(const char *));

    if ((*err = sse_args_collect(p, args, name, v)) != NULL || !v->nelts) {
        return NULL;
    }
    return APR_ARRAY_IDX(v, v->nelts - 1, const char *);
}

/* A fresh channel name nobody can guess, for SSEChannel "*private*". */
static const char *sse_private_name(apr_pool_t *p)
{
    unsigned char rnd[16];
    char hex[33];
    int i;

    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        return NULL;
    }
    for (i = 0; i < 16; i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    }
    return apr_pstrcat(p, "private-", hex, NULL);
}

/* Add the channels listed in v to chans; the word *private* (when private
 * is not NULL) becomes a fresh name, returned in *private. */
static const char *sse_channels_add(apr_pool_t *p, const char *v,
                                    apr_array_header_t *chans,
                                    const char **private)
{
    char *list = apr_pstrdup(p, v), *last, *tok;
    const char *err;

    for (tok = apr_strtok(list, ", \t", &last); tok;
         tok = apr_strtok(NULL, ", \t", &last)) {
        if (private && !*private && !strcmp(tok, SSE_PRIVATE_WORD)) {
            if (!(*private = sse_private_name(p))) {
                return "cannot make a private channel name";
            }
            tok = (char *)*private;
        }
        if ((err = sse_channels_parse(p, tok, chans)) != NULL) {
            return err;
        }
    }
    return NULL;
}

/* Resolve the channels of r: SSEChannel if set, else the channel fields of
 * args (the query) and form (a urlencoded body, may be NULL).  Returns NULL
 * with *chans filled (maybe empty), or a one-line reason.  private: as for
 * sse_channels_add (streams only). */
static const char *sse_channels(request_rec *r, const sse_dir_conf_t *dc,
                                const char *form, apr_array_header_t **chans,
                                const char **private)
{
    apr_array_header_t *raw = apr_array_make(r->pool, 2, sizeof(const char *));
    int max = SSE_OR(dc->max_channels, SSE_DEFAULT_MAX_CHANNELS);
    const char *err = NULL;
    int i;

    *chans = apr_array_make(r->pool, 2, sizeof(const char *));
    if (dc->channel) {
        for (i = 0; i < dc->channel->nelts; i++) {
            const char *v = ap_expr_str_exec(r, APR_ARRAY_IDX(
                dc->channel, i, ap_expr_info_t *), &err);
            if (err) {
                return apr_psprintf(r->pool, "SSEChannel failed: %s", err);
            }
            /* elsewhere an item may give a list (%{env:CHANNELS}) */
            if (dc->protected_ok == 1
                && (!*v || v[strcspn(v, ", \t\n\v\f\r")])) {
                return apr_psprintf(r->pool, "SSEChannel's item %d gives "
                                    "'%s', not one channel name", i + 1, v);
            }
            APR_ARRAY_PUSH(raw, const char *) = v;
        }
    }
    else if ((err = sse_args_collect(r->pool, r->args, "channel", raw))
             || (!raw->nelts
                 && (err = sse_args_collect(r->pool, form, "channel", raw)))) {
        return err;             /* the query's channels win over the form's */
    }
    for (i = 0; i < raw->nelts; i++) {
        err = sse_channels_add(r->pool, APR_ARRAY_IDX(raw, i, const char *),
                               *chans, private);
        if (err) {
            return err;
        }
        if ((*chans)->nelts > max) {
            return apr_psprintf(r->pool, "more than %d channels "
                                "(SSEMaxChannels)", max);
        }
    }
    return NULL;
}

/* The namespace of dc's channels on server s: SSENamespace, else the
 * ServerName of the virtual host. */
static const char *sse_namespace(apr_pool_t *p, const sse_dir_conf_t *dc,
                                 const server_rec *s)
{
    return dc->ns ? dc->ns : sse_namespace_from_host(p, s->server_hostname);
}

/* The keys (namespace/name) of the channels called names, in r's namespace:
 * what the broker, the relay and Redis know them by. */
static apr_array_header_t *sse_keys(request_rec *r, const sse_dir_conf_t *dc,
                                    const apr_array_header_t *names)
{
    const char *ns = sse_namespace(r->pool, dc, r->server);
    apr_array_header_t *keys = apr_array_make(r->pool, names->nelts,
                                              sizeof(const char *));
    int i;

    for (i = 0; i < names->nelts; i++) {
        APR_ARRAY_PUSH(keys, const char *) = sse_key_make(r->pool, ns,
            APR_ARRAY_IDX(names, i, const char *));
    }
    return keys;
}

/* A protected channel (@name) among names, unless allowed; else NULL.  A
 * stream location serves them only when its SSEChannel computes the names
 * and it says SSEProtectedChannels on (never where the client picks the
 * channel); a hand-over only where SSEProtectedChannels is on. */
static const char *sse_protected_refused(int allowed,
                                         const apr_array_header_t *names)
{
    int i;

    for (i = 0; !allowed && i < names->nelts; i++) {
        const char *name = APR_ARRAY_IDX(names, i, const char *);
        if (sse_channel_protected(name)) {
            return name;
        }
    }
    return NULL;
}

/* --- the stream handler --------------------------------------------------- */

/* Copy the MPM's socket into a private non-blocking descriptor that the
 * broker owns; -1 on failure. */
static int sse_take_socket(conn_rec *c)
{
    apr_socket_t *csd = ap_get_conn_socket(c);
    apr_os_sock_t fd;
    int dup;

    if (!csd || apr_os_sock_get(&fd, csd) != APR_SUCCESS) {
        return -1;
    }
    /* No O_NONBLOCK needed: the broker passes MSG_DONTWAIT on every call. */
    dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup >= 0) {
        /* A client that stops reading then ties up this much kernel memory
         * at most (the kernel doubles it) before SSEMaxBacklog counts. */
        int sndbuf = SSE_STREAM_SNDBUF;
        setsockopt(dup, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    return dup;
}

/* A content filter still in the chain would hold back or rewrite bytes the
 * broker writes straight to the socket. */
static const char *sse_content_filter(request_rec *r)
{
    ap_filter_t *f;

    for (f = r->output_filters; f; f = f->next) {
        if (f->frec->ftype < AP_FTYPE_PROTOCOL) {
            return f->frec->name;
        }
    }
    return NULL;
}

/* The Last-Event-ID a stream resumes after (header, else the lastEventId
 * query argument for polyfills), NULL for none; *err on a bad one. */
static const char *sse_last_id(request_rec *r, const char **err)
{
    const char *id = apr_table_get(r->headers_in, "Last-Event-ID");

    *err = NULL;
    if (!id) {
        id = sse_arg(r->pool, r->args, "lastEventId", err);
    }
    if (!id || *err) {
        return NULL;
    }
    if (!*id) {
        return NULL;            /* an empty id is "no id" to a browser */
    }
    if (strlen(id) > 1024 || strpbrk(id, "\r\n")
        || !sse_utf8_valid(id, strlen(id))) {
        *err = "Last-Event-ID is not a valid event id";
        return NULL;
    }
    return id;
}

/* Ask the relay whether resuming chans after last_id would miss events.
 * An unreachable relay means the history is out of reach: lost. */
static int sse_history_lost(request_rec *r, const char *last_id,
                            apr_array_header_t *chans)
{
    sse_buf_t b = { 0 };
    sse_relay_result_t res;
    long off = sse_frame_begin(&b, SSE_OP_CHECK, 0);
    int i, lost = 1;

    if (off >= 0 && !sse_buf_put_str(&b, last_id, strlen(last_id))
        && !sse_buf_put_u32(&b, (uint32_t)chans->nelts)) {
        for (i = 0; i < chans->nelts; i++) {
            const char *c = APR_ARRAY_IDX(chans, i, const char *);
            if (sse_buf_put_str(&b, c, strlen(c))) {
                break;
            }
        }
        if (i == chans->nelts) {
            sse_frame_end(&b, off);
            if (sse_relay_call(r->pool, &b, &res) == APR_SUCCESS) {
                lost = strcmp(res.id, "0") != 0;
            }
        }
    }
    sse_buf_free(&b);
    return lost;
}

/* The first bytes of the body: ": ok", then retry: and the private
 * channel's name when there are. */
static const char *sse_preamble(request_rec *r, const sse_dir_conf_t *dc,
                                const char *private)
{
    const char *pre = ": ok\n\n";

    if (dc->retry >= 0) {
        pre = apr_psprintf(r->pool, "%sretry: %d\n\n", pre, dc->retry);
    }
    if (private) {
        pre = apr_pstrcat(r->pool, pre, "event: sse-channel\ndata: ",
                          private, "\n\n", NULL);
    }
    return pre;
}

/* SSEMaxHeldStreams of r's server, or its default. */
static int sse_max_held(request_rec *r)
{
    sse_srv_conf_t *sc = ap_get_module_config(r->server->module_config,
                                              &sse_module);

    return sc->max_held >= 0 ? sc->max_held : sse_held_default_max();
}

/* Count the stream against SSEMaxSubscribers; 0, or -1 when full. */
static int sse_stream_admit(request_rec *r)
{
    sse_srv_conf_t *sc = ap_get_module_config(r->server->module_config,
                                              &sse_module);

    return sse_count_admit(SSE_OR(sc->max_streams, SSE_DEFAULT_MAX_STREAMS));
}

/* TLS records or HTTP/2 frames cannot be written by the broker: a stream
 * on such a connection keeps its worker thread (sse_held.c). */
static int sse_conn_held(conn_rec *c)
{
    return c->master != NULL || ap_ssl_conn_is_ssl(c);
}

/* Take a new stream's places: a held-stream slot when held, and one of
 * SSEMaxSubscribers.  NULL, or why not (then nothing is taken). */
static const char *sse_admit(request_rec *r, int held)
{
    if (held && sse_held_admit(sse_max_held(r)) < 0) {
        return "too many TLS/HTTP/2 event streams in this process "
               "(SSEMaxHeldStreams)";
    }
    if (sse_stream_admit(r) < 0) {
        if (held) {
            sse_held_release();
        }
        return "too many event streams (SSEMaxSubscribers)";
    }
    return NULL;
}

/* Give back what sse_admit() took, for a stream that never started. */
static void sse_unadmit(int held)
{
    if (held) {
        sse_held_release();
    }
    sse_count_release();
}

/* TCP_CORK on c's socket: the headers wait for the broker's first bytes
 * (": ok"), so a new stream starts with one segment, not two. */
static void sse_cork(conn_rec *c, int on)
{
    apr_socket_t *csd = ap_get_conn_socket(c);
    apr_os_sock_t fd;

    if (csd && apr_os_sock_get(&fd, csd) == APR_SUCCESS) {
        setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
    }
}

/* Hand the connection to the broker; returns 0 or -1 (logged). */
static int sse_park(request_rec *r, const sse_sub_spec_t *spec)
{
    conn_rec *c = r->connection;
    const char *filter = sse_content_filter(r);
    sse_sub_t *sub = NULL;
    int fd = -1;

    if (filter) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "SSE00002: output filter '%s' is in the way of the "
                      "event stream; remove it from this location", filter);
        return -1;
    }
    if ((fd = sse_take_socket(c)) >= 0 && (sub = sse_sub_create(fd, spec))
        && sse_broker_park(sub) == APR_SUCCESS) {
        /* The socket is the broker's now: the MPM must only close its own
         * descriptor, not shut the connection down. */
        c->aborted = 1;
        return 0;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "SSE00003: cannot hand the stream to the broker");
    if (sub) {
        sse_sub_free(sub);
    }
    else if (fd >= 0) {
        close(fd);
    }
    return -1;
}

/* Send what goes before a new stream (its headers; in bb, which may be
 * empty, a handed-over application's answer) so that none of it reaches the
 * client before the broker's ": ok" (parked: corked until the broker writes;
 * held: not flushed, sse_held_serve() sends it with ": ok"), and park the
 * connection unless held.  Returns 1, or 0 when the stream cannot start
 * (HEAD, the client gone, parking failed: its places are given back); *rv
 * is what passing bb returned.  Held, the caller then calls
 * sse_held_serve(), so a client that sees anything is on its channels. */
static int sse_stream_begin(request_rec *r, ap_filter_t *next,
                            apr_bucket_brigade *bb, int held,
                            const sse_sub_spec_t *spec, apr_status_t *rv)
{
    conn_rec *c = r->connection;

    if (!held) {
        sse_cork(c, 1);
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(c->bucket_alloc));
    }
    *rv = APR_BRIGADE_EMPTY(bb) ? APR_SUCCESS : ap_pass_brigade(next, bb);
    if (*rv != APR_SUCCESS || c->aborted || r->header_only
        || (!held && sse_park(r, spec) < 0)) {
        if (!held) {
            sse_cork(c, 0);
        }
        sse_unadmit(held);
        return 0;
    }
    return 1;
}

/* The response headers of a stream, and no keep-alive: the body runs
 * until the connection ends (for HEAD too, so the headers are the same). */
static void sse_stream_headers(request_rec *r, apr_array_header_t *chans,
                               const char *last_id)
{
    apr_table_setn(r->subprocess_env, "no-gzip", "1");
    apr_table_unset(r->headers_out, "Content-Length");
    ap_set_content_type(r, "text/event-stream");
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    if (last_id && sse_history_lost(r, last_id, chans)) {
        apr_table_setn(r->headers_out, "SSE-History-Lost", "true");
    }
    r->connection->keepalive = AP_CONN_CLOSE;
}

/* What the broker needs to know of the stream (spec->last_id is set). */
static void sse_spec_fill(request_rec *r, const sse_dir_conf_t *dc,
                          sse_sub_spec_t *spec, apr_array_header_t *chans,
                          const char *private)
{
    spec->channels = (const char *const *)chans->elts;
    spec->nchannels = chans->nelts;
    spec->remote = r->connection->client_ip;
    spec->max_backlog = dc->max_backlog >= 0 ? (apr_size_t)dc->max_backlog
                                             : SSE_DEFAULT_MAX_BACKLOG;
    spec->preamble = sse_preamble(r, dc, private);
    spec->keepalive = SSE_OR(dc->keepalive, SSE_DEFAULT_KEEPALIVE);
}

static int sse_stream_handler(request_rec *r)
{
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);
    conn_rec *c = r->connection;
    apr_array_header_t *chans, *keys;
    const char *err, *private = NULL;
    sse_sub_spec_t spec;
    apr_status_t rv;
    int held;

    if (r->method_number != M_GET) {
        return sse_refuse(r, HTTP_METHOD_NOT_ALLOWED, "GET, HEAD",
                          "an event stream answers GET and HEAD only");
    }
    memset(&spec, 0, sizeof(spec));
    if ((err = sse_channels(r, dc, NULL, &chans, &private)) != NULL
        || (spec.last_id = sse_last_id(r, &err), err)) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
    }
    if (!chans->nelts) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, "no channel given");
    }
    if ((err = sse_protected_refused(dc->channel && dc->protected_ok == 1,
                                     chans)) != NULL) {
        return sse_refuse(r, HTTP_FORBIDDEN, NULL, apr_psprintf(r->pool,
            "channel '%s' is protected: only a location whose SSEChannel "
            "names it and that has SSEProtectedChannels on serves it", err));
    }
    keys = sse_keys(r, dc, chans);
    held = sse_conn_held(c);
    if (!r->header_only && (err = sse_admit(r, held)) != NULL) {
        return sse_refuse(r, HTTP_SERVICE_UNAVAILABLE, NULL, err);
    }
    sse_stream_headers(r, keys, spec.last_id);
    if (r->header_only) {
        return OK;
    }
    sse_spec_fill(r, dc, &spec, keys, private);
    if (!sse_stream_begin(r, r->output_filters,
                          apr_brigade_create(r->pool, c->bucket_alloc),
                          held, &spec, &rv)) {
        return OK;
    }
    if (held) {
        return sse_held_serve(r, &spec);
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "SSE00004: stream on %s parked%s%s",
                  apr_array_pstrcat(r->pool, keys, ','),
                  spec.last_id ? ", resuming after " : "",
                  spec.last_id ? spec.last_id : "");
    return OK;
}

/* --- the publish handler --------------------------------------------------- */

/* Read the whole body, up to max bytes.  Returns OK with the body and its length set,
 * or an HTTP status. */
static int sse_read_body(request_rec *r, apr_off_t max, char **body,
                         apr_size_t *len)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_size_t got = 0;
    long n;
    int rc;

    *body = NULL;
    *len = 0;
    if (cl && apr_atoi64(cl) > max) {
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    if ((rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK)) != OK) {
        return rc;
    }
    if (!ap_should_client_block(r)) {
        return OK;
    }
    *body = apr_palloc(r->pool, (apr_size_t)max + 1);
    while ((n = ap_get_client_block(r, *body + got, (apr_size_t)max + 1 - got)) > 0) {
        got += (apr_size_t)n;
        if (got > (apr_size_t)max) {
            return HTTP_REQUEST_ENTITY_TOO_LARGE;
        }
    }
    if (n < 0) {
        return HTTP_BAD_REQUEST;
    }
    (*body)[got] = '\0';
    *len = got;
    return OK;
}

/* The field name of a urlencoded form or the query, or NULL. */
static const char *sse_field(request_rec *r, const char *form,
                             const char *name, const char **err)
{
    const char *v = form ? sse_arg(r->pool, form, name, err) : NULL;

    if (!v && !*err) {
        v = sse_arg(r->pool, r->args, name, err);
    }
    return v;
}

/* Build the events of a POST from its body, query and the location's
 * defaults.  Returns NULL or a reason; *form is set for a urlencoded body. */
static const char *sse_post_events(request_rec *r, const sse_dir_conf_t *dc,
                                   char *body, apr_size_t len,
                                   const char **form, apr_array_header_t **evs)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type");
    const char *err = NULL;
    sse_event_t *ev;

    *form = NULL;
    if (ct && !strncasecmp(ct, "text/event-stream", 17) && len) {
        return sse_event_parse_stream(r->pool, body, len, evs);
    }
    *evs = apr_array_make(r->pool, 1, sizeof(sse_event_t));
    ev = apr_array_push(*evs);
    memset(ev, 0, sizeof(*ev));
    if (ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
        if (memchr(body ? body : "", '\0', len)) {
            return "NUL byte in form body";
        }
        *form = body ? body : "";
        ev->data = sse_field(r, *form, "data", &err);
    }
    else if (len) {
        ev->data = body;
    }
    ev->event = err ? NULL : sse_field(r, *form, "event", &err);
    ev->id = err ? NULL : sse_field(r, *form, "id", &err);
    ev->retry = err ? NULL : sse_field(r, *form, "retry", &err);
    if (err) {
        return err;
    }
    if (!ev->event && dc->event) {
        ev->event = ap_expr_str_exec(r, dc->event, &err);
    }
    if (!ev->data && dc->data && !err) {
        ev->data = ap_expr_str_exec(r, dc->data, &err);
    }
    if (err) {
        return apr_psprintf(r->pool, "SSEEvent/SSEData failed: %s", err);
    }
    if (!ev->data) {
        ev->data = "";
    }
    ev->data_len = ev->data == body ? len : strlen(ev->data);
    if (ev->event && !*ev->event) {
        ev->event = NULL;
    }
    return NULL;
}

/* Sum of the brokers' numeric replies. */
static long sse_sum(const sse_relay_result_t *res)
{
    long sum = 0;
    int i;

    for (i = 0; i < res->replies->nelts; i++) {
        sum += atol(APR_ARRAY_IDX(res->replies, i, const char *));
    }
    return sum;
}

static int sse_relay_down(request_rec *r, apr_status_t rv)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                  "SSE00005: the relay did not answer");
    return sse_refuse(r, HTTP_SERVICE_UNAVAILABLE, NULL,
                      "the event relay is not available; try again");
}

static int sse_json_answer(request_rec *r, apr_array_header_t *items)
{
    ap_set_content_type(r, "application/json");
    if (items->nelts == 1) {
        ap_rprintf(r, "%s\n", APR_ARRAY_IDX(items, 0, const char *));
    }
    else {
        ap_rprintf(r, "[%s]\n", apr_array_pstrcat(r->pool, items, ','));
    }
    return OK;
}

static int sse_publish(request_rec *r, const sse_dir_conf_t *dc)
{
    apr_off_t max = dc->max_event_size >= 0 ? dc->max_event_size
                                            : SSE_DEFAULT_MAX_EVENT_SIZE;
    apr_array_header_t *evs, *chans, *keys, *items;
    const char *form, *err;
    apr_size_t len;
    char *body;
    int rc, i, j;

    rc = sse_read_body(r, max, &body, &len);
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return sse_refuse(r, rc, NULL, apr_psprintf(r->pool,
                          "event larger than SSEMaxEventSize (%" APR_OFF_T_FMT
                          " bytes)", max));
    }
    if (rc != OK) {
        return rc;
    }
    if ((err = sse_post_events(r, dc, body, len, &form, &evs)) != NULL
        || (err = sse_channels(r, dc, form, &chans, NULL)) != NULL) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
    }
    if (!chans->nelts) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, "no channel given");
    }
    for (j = 0; j < evs->nelts; j++) {
        if ((err = sse_event_check(r->pool, &APR_ARRAY_IDX(evs, j, sse_event_t)))) {
            return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
        }
    }
    keys = sse_keys(r, dc, chans);
    items = apr_array_make(r->pool, chans->nelts * evs->nelts, sizeof(char *));
    for (i = 0; i < chans->nelts; i++) {
        const char *chan = APR_ARRAY_IDX(chans, i, const char *);
        const char *key = APR_ARRAY_IDX(keys, i, const char *);
        for (j = 0; j < evs->nelts; j++) {
            sse_event_t *ev = &APR_ARRAY_IDX(evs, j, sse_event_t);
            sse_wire_publish_t pub = {
                key, *ev, (uint32_t)SSE_OR(dc->history, SSE_DEFAULT_HISTORY),
                (uint32_t)SSE_OR(dc->history_age, SSE_DEFAULT_HISTORY_AGE) };
            sse_relay_result_t res;
            apr_status_t rv = sse_relay_publish(r->pool, &pub, &res);
            if (rv != APR_SUCCESS) {
                return sse_relay_down(r, rv);
            }
            APR_ARRAY_PUSH(items, const char *) = apr_psprintf(r->pool,
                "{\"channel\":%s,\"id\":%s,\"subscribers\":%ld}",
                sse_json_str(r->pool, chan), sse_json_str(r->pool, res.id),
                sse_sum(&res));
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "SSE00006: published id %s on %s to %ld streams",
                          res.id, key, sse_sum(&res));
        }
    }
    return sse_json_answer(r, items);
}

/* GET on one channel: its streams across every child. */
static const char *sse_admin_conns(request_rec *r, const char *chan,
                                   const char *key, apr_status_t *rv)
{
    apr_size_t len = strlen(key);
    sse_relay_result_t res;
    apr_array_header_t *conns = apr_array_make(r->pool, 8, sizeof(char *));
    int i, n;

    if ((*rv = sse_relay_ask(r->pool, SSE_OP_CONNS, &key, &len, 1, NULL, 0,
                             &res)) != APR_SUCCESS) {
        return NULL;
    }
    for (i = 0; i < res.replies->nelts; i++) {
        /* "remote\tsince\tpid" lines, cut in place in a copy */
        char *txt = apr_pstrdup(r->pool, APR_ARRAY_IDX(res.replies, i, char *));
        char *f[3];             /* remote, since, pid */
        while ((n = sse_wire_line(&txt, '\n', '\t', f, 3)) > 0) {
            char stamp[APR_RFC822_DATE_LEN + 8];
            apr_time_exp_t tm;
            apr_size_t sl;
            if (n < 3 || !*f[0] || !*f[1] || !*f[2]) {
                continue;
            }
            apr_time_exp_gmt(&tm, apr_atoi64(f[1]));
            apr_strftime(stamp, &sl, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
            APR_ARRAY_PUSH(conns, const char *) = apr_psprintf(r->pool,
                "{\"remote\":%s,\"since\":\"%s\",\"pid\":%d}",
                sse_json_str(r->pool, f[0]), stamp, atoi(f[2]));
        }
    }
    return apr_psprintf(r->pool,
                        "{\"channel\":%s,\"subscribers\":%d,\"connections\":[%s]}",
                        sse_json_str(r->pool, chan), conns->nelts,
                        apr_array_pstrcat(r->pool, conns, ','));
}

static int sse_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* GET without a channel: every channel of r's namespace with its count
 * across children. */
static int sse_admin_list(request_rec *r, const char *ns)
{
    apr_size_t nslen = strlen(ns);
    apr_hash_t *counts;
    apr_array_header_t *names;
    apr_array_header_t *items = apr_array_make(r->pool, 8, sizeof(char *));
    sse_relay_result_t res;
    apr_status_t rv = sse_relay_ask(r->pool, SSE_OP_LIST, NULL, NULL, 0,
                                    NULL, 0, &res);
    int i;

    if (rv != APR_SUCCESS) {
        return sse_relay_down(r, rv);
    }
    counts = sse_relay_sum_lists(r->pool, &res, &names);
    qsort(names->elts, names->nelts, sizeof(char *), sse_cmp_str);
    for (i = 0; i < names->nelts; i++) {
        const char *key = APR_ARRAY_IDX(names, i, const char *);
        long *n = apr_hash_get(counts, key, APR_HASH_KEY_STRING);
        if (strncmp(key, ns, nslen) || key[nslen] != '/') {
            continue;           /* another namespace's */
        }
        APR_ARRAY_PUSH(items, const char *) = apr_psprintf(r->pool,
            "{\"channel\":%s,\"subscribers\":%ld}",
            sse_json_str(r->pool, key + nslen + 1), *n);
    }
    ap_set_content_type(r, "application/json");
    ap_rprintf(r, "{\"channels\":[%s]}\n", apr_array_pstrcat(r->pool, items, ','));
    return OK;
}

static int sse_admin(request_rec *r, const sse_dir_conf_t *dc)
{
    apr_array_header_t *chans, *keys, *items;
    const char *err;
    int i;

    if ((err = sse_channels(r, dc, NULL, &chans, NULL)) != NULL) {
        return sse_refuse(r, HTTP_BAD_REQUEST, NULL, err);
    }
    if (!chans->nelts) {
        if (r->method_number == M_DELETE) {
            return sse_refuse(r, HTTP_BAD_REQUEST, NULL, "no channel given");
        }
        return sse_admin_list(r, sse_namespace(r->pool, dc, r->server));
    }
    keys = sse_keys(r, dc, chans);
    items = apr_array_make(r->pool, chans->nelts, sizeof(char *));
    for (i = 0; i < chans->nelts; i++) {
        const char *chan = APR_ARRAY_IDX(chans, i, const char *);
        const char *key = APR_ARRAY_IDX(keys, i, const char *);
        apr_status_t rv = APR_SUCCESS;
        const char *item;
        if (r->method_number == M_DELETE) {
            apr_size_t len = strlen(key);
            sse_relay_result_t res;
            rv = sse_relay_ask(r->pool, SSE_OP_CLOSE, &key, &len, 1, NULL, 0, &res);
            item = rv ? NULL : apr_psprintf(r->pool,
                "{\"channel\":%s,\"closed\":%ld}",
                sse_json_str(r->pool, chan), sse_sum(&res));
        }
        else {
            item = sse_admin_conns(r, chan, key, &rv);
        }
        if (rv != APR_SUCCESS) {
            return sse_relay_down(r, rv);
        }
        APR_ARRAY_PUSH(items, const char *) = item;
    }
    return sse_json_answer(r, items);
}

/* The origin a browser's request came from: its Origin header, else the
 * scheme, host and port of its Referer; NULL when it has neither (not a
 * browser's cross-site request).  Lower case. */
static const char *sse_request_origin(request_rec *r)
{
    const char *o = apr_table_get(r->headers_in, "Origin");
    char *lc;

    if (!o) {
        const char *ref = apr_table_get(r->headers_in, "Referer");
        apr_uri_t u;
        if (!ref) {
            return NULL;
        }
        if (apr_uri_parse(r->pool, ref, &u) != APR_SUCCESS || !u.scheme
            || !u.hostname) {
            return "null";
        }
        o = apr_uri_unparse(r->pool, &u, APR_URI_UNP_OMITPATHINFO
                                         | APR_URI_UNP_OMITUSERINFO);
    }
    lc = apr_pstrdup(r->pool, o);
    ap_str_tolower(lc);
    return lc;
}

/* CSRF: any page a browser shows may make it send a request, with the
 * browser's cookies and HTTP credentials, and from its address (which
 * Require local or Require ip trust).  So a POST or DELETE that a page of
 * another site sent (its Origin, or else its Referer, says so) is taken
 * only from an origin listed in SSEPublishOrigins.  Programs (curl, your
 * application) send neither header.  NULL, or the origin refused. */
static const char *sse_origin_refused(request_rec *r, const sse_dir_conf_t *dc)
{
    const char *origin;
    char *own;
    apr_size_t n;
    int i;

    if (!(origin = sse_request_origin(r))) {
        return NULL;
    }
    own = ap_construct_url(r->pool, "", r);     /* scheme://host[:port]/ */
    n = strlen(own);
    if (n && own[n - 1] == '/') {
        own[n - 1] = '\0';
    }
    ap_str_tolower(own);
    if (!strcmp(origin, own)) {
        return NULL;
    }
    for (i = 0; dc->origins && i < dc->origins->nelts; i++) {
        if (!strcmp(origin, APR_ARRAY_IDX(dc->origins, i, const char *))) {
            return NULL;
        }
    }
    return origin;
}

static int sse_publish_handler(request_rec *r)
{
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);
    const char *bad;

    if ((r->method_number == M_POST || r->method_number == M_DELETE)
        && (bad = sse_origin_refused(r, dc)) != NULL) {
        return sse_refuse(r, HTTP_FORBIDDEN, NULL, apr_psprintf(r->pool,
            "a request from a page of origin %s is refused here (not this "
            "server's own origin nor in SSEPublishOrigins)", bad));
    }
    switch (r->method_number) {
    case M_POST:
        return sse_publish(r, dc);
    case M_GET:
    case M_DELETE:
        if (r->header_only) {
            ap_set_content_type(r, "application/json");
            return OK;
        }
        return sse_admin(r, dc);
    default:
        return sse_refuse(r, HTTP_METHOD_NOT_ALLOWED, "GET, POST, DELETE",
                          "a publish location answers GET, POST and DELETE "
                          "only");
    }
}

/* --- hand-over: an application's response becomes a stream --------------- */

typedef struct {
    int stream;                 /* 1: turning this response into a stream */
    int held;                   /* 1: over TLS or HTTP/2: a held stream */
    int discard;                /* 1: replaced by an error: drop the rest */
    apr_array_header_t *chans;
    const char *last_id;
} sse_handover_t;

/* Replace the application's response by a one-line error. */
static apr_status_t sse_handover_refuse(ap_filter_t *f, apr_bucket_brigade *bb,
                                        sse_handover_t *ctx, int status,
                                        const char *why)
{
    request_rec *r = f->r;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;

    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                  "SSE00009: cannot hand the response over to a stream: %s",
                  why);
    ctx->discard = 1;
    r->status = status;
    apr_table_clear(r->headers_out);
    apr_table_unset(r->err_headers_out, SSE_HANDOVER_HEADER);
    if (status == HTTP_SERVICE_UNAVAILABLE) {
        apr_table_setn(r->headers_out, "Retry-After", "1");
    }
    ap_set_content_type(r, "text/plain; charset=utf-8");
    apr_brigade_cleanup(bb);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_pool_create(
        apr_pstrcat(r->pool, why, "\n", NULL), strlen(why) + 1, r->pool, ba));
    return ap_pass_brigade(f->next, bb);
}

/* The first brigade: does the application hand this response over? */
static apr_status_t sse_handover_start(ap_filter_t *f, apr_bucket_brigade *bb,
                                       sse_handover_t *ctx)
{
    request_rec *r = f->r;
    const char *v = apr_table_get(r->headers_out, SSE_HANDOVER_HEADER);
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);
    const char *err;

    if (!v) {
        v = apr_table_get(r->err_headers_out, SSE_HANDOVER_HEADER);
    }
    if (!v) {
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    apr_table_unset(r->headers_out, SSE_HANDOVER_HEADER);
    apr_table_unset(r->err_headers_out, SSE_HANDOVER_HEADER);
    ctx->chans = apr_array_make(r->pool, 2, sizeof(char *));
    if ((err = sse_channels_add(r->pool, v, ctx->chans, NULL)) != NULL
        || !ctx->chans->nelts) {
        return sse_handover_refuse(f, bb, ctx, HTTP_BAD_GATEWAY,
            apr_psprintf(r->pool, "bad " SSE_HANDOVER_HEADER ": %s",
                         err ? err : "no channel"));
    }
    if ((ctx->last_id = sse_last_id(r, &err), err)) {
        return sse_handover_refuse(f, bb, ctx, HTTP_BAD_REQUEST, err);
    }
    /* the application chose the channels; protected ones only where the
     * admin said so in the configuration (not .htaccess) */
    if ((err = sse_protected_refused(dc->protected_ok == 1, ctx->chans))) {
        return sse_handover_refuse(f, bb, ctx, HTTP_FORBIDDEN,
            apr_psprintf(r->pool, "channel '%s' in " SSE_HANDOVER_HEADER
                         " is protected: this location does not have "
                         "SSEProtectedChannels on", err));
    }
    ctx->chans = sse_keys(r, dc, ctx->chans);
    ctx->held = sse_conn_held(r->connection);
    if ((err = sse_admit(r, ctx->held)) != NULL) {
        return sse_handover_refuse(f, bb, ctx, HTTP_SERVICE_UNAVAILABLE, err);
    }
    sse_stream_headers(r, ctx->chans, ctx->last_id);
    ctx->stream = 1;
    return APR_SUCCESS;
}

/* SSE_HANDOVER output filter (SSEHandover on): the application's status,
 * headers and body go out as the stream's preamble; at its end the
 * connection is parked like any stream, or over TLS or HTTP/2 held: this
 * thread serves the stream here, inside the application's last
 * ap_pass_brigade(), until it ends. */
static apr_status_t sse_handover_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    sse_handover_t *ctx = f->ctx;
    apr_bucket *b;
    apr_status_t rv;

    if (!ctx) {
        ctx = f->ctx = apr_pcalloc(r->pool, sizeof(*ctx));
        if ((rv = sse_handover_start(f, bb, ctx)) != APR_SUCCESS
            || !ctx->stream) {
            return rv;
        }
    }
    if (ctx->discard) {
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            if (APR_BUCKET_IS_EOS(b)) {
                ap_remove_output_filter(f);
                apr_brigade_split_ex(bb, b, NULL);
                apr_brigade_cleanup(bb);
                APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(
                    r->connection->bucket_alloc));
                return ap_pass_brigade(f->next, bb);
            }
        }
        apr_brigade_cleanup(bb);
        return APR_SUCCESS;
    }
    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
         b = APR_BUCKET_NEXT(b)) {
        if (APR_BUCKET_IS_EOS(b)) {
            sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config,
                                                      &sse_module);
            sse_sub_spec_t spec;
            apr_bucket_brigade *rest = apr_brigade_split_ex(bb, b, NULL);
            apr_brigade_cleanup(rest);          /* the EOS: the stream goes on */
            ap_remove_output_filter(f);
            memset(&spec, 0, sizeof(spec));
            spec.last_id = ctx->last_id;
            sse_spec_fill(r, dc, &spec, ctx->chans, NULL);
            /* HEAD: the head is all there is, as for a stream location */
            if (!sse_stream_begin(r, f->next, bb, ctx->held, &spec, &rv)) {
                return rv;
            }
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                          "SSE00010: response handed over to a %s stream "
                          "on %s", ctx->held ? "held" : "parked",
                          apr_array_pstrcat(r->pool, ctx->chans, ','));
            if (ctx->held) {
                sse_held_serve(r, &spec);
            }
            return APR_SUCCESS;
        }
    }
    return ap_pass_brigade(f->next, bb);
}

static void sse_insert_filter(request_rec *r)
{
    sse_dir_conf_t *dc = ap_get_module_config(r->per_dir_config, &sse_module);

    if (dc->handover == 1 && !r->main) {
        /* decided before mod_deflate looks: streams are never compressed */
        apr_table_setn(r->subprocess_env, "no-gzip", "1");
        ap_add_output_filter("SSE_HANDOVER", NULL, r, r->connection);
    }
}

/* --- hooks ------------------------------------------------------------------ */

static int sse_handler(request_rec *r)
{
    if (!r->handler) {
        return DECLINED;
    }
    if (!strcmp(r->handler, "sse")) {
        return sse_stream_handler(r);
    }
    if (!strcmp(r->handler, "sse-publish")) {
        return sse_publish_handler(r);
    }
    return DECLINED;
}

/* A directive that controls access in a section (authentication alone
 * does not: Require does). */
static int sse_is_access(const char *d)
{
    return !strncasecmp(d, "Require", 7) || !strncasecmp(d, "<Require", 8)
        || !strcasecmp(d, "Allow") || !strcasecmp(d, "Deny")
        || !strcasecmp(d, "SSLRequire");
}

/* Does SetHandler's argument name the stream handler? */
static int sse_is_stream_handler(const char *args)
{
    const char *a = args + (*args == '"' || *args == '\'');
    apr_size_t n = strcspn(a, "\"' \t");

    return n == 3 && !strncasecmp(a, "sse", 3);
}

/* Warn of every section that serves streams on channels the client names
 * (SetHandler sse, no SSEChannel) with no access control of its own: any
 * visitor may read any channel of its namespace.  Walks the configuration
 * as read, so the message names the file and line. */
/* The SetHandler sse among the directives from d on when they make a
 * stream location where the client names the channels and nothing
 * controls access, else NULL. */
static const ap_directive_t *sse_open_stream(const ap_directive_t *d)
{
    const ap_directive_t *handler = NULL;
    int chan = 0, access = 0;

    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "SetHandler") && d->args
            && sse_is_stream_handler(d->args)) {
            handler = d;
        }
        else if (!strcasecmp(d->directive, "SSEChannel")) {
            chan = 1;
        }
        else if (sse_is_access(d->directive)) {
            access = 1;
        }
    }
    return chan || access ? NULL : handler;
}

static void sse_warn_open(server_rec *s, const ap_directive_t *at,
                          const char *what)
{
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                 "SSE00011: %s:%d: %s serves every channel a client names "
                 "(SetHandler sse without SSEChannel) to anyone: it has no "
                 "Require. Add 'Require all granted' if that is meant",
                 at->filename, at->line_num, what);
}

static void sse_check_open_streams(const ap_directive_t *d, server_rec *s)
{
    for (; d; d = d->next) {
        if (d->directive[0] != '<' || !d->first_child) {
            continue;
        }
        if (sse_open_stream(d->first_child)) {
            sse_warn_open(s, d, apr_pstrcat(s->process->pconf, d->directive,
                                            " ", d->args ? d->args : ">",
                                            NULL));
        }
        sse_check_open_streams(d->first_child, s);
    }
}

/* The whole configuration: its top level (the main server's SetHandler
 * applies to every URL), then every section. */
static void sse_check_config_tree(server_rec *s)
{
    const ap_directive_t *h = sse_open_stream(ap_conftree);

    if (h) {
        sse_warn_open(s, h, "the server configuration");
    }
    sse_check_open_streams(ap_conftree, s);
}

/* apachectl configtest: the checks that need the whole configuration. */
static int sse_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST) {
        sse_check_config_tree(s);
    }
    return OK;
}

static int sse_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                           apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    (void)ptemp;
    apr_status_t rv;
    int children = 0;

    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    /* the error log is open now: the warnings configtest gives */
    sse_check_config_tree(s);
    /* One stream counter per child process of this generation. */
    ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &children);
    rv = sse_count_init(pconf, children);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "SSE00008: cannot create the stream counters");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    {
        sse_srv_conf_t *sc = ap_get_module_config(s->module_config,
                                                  &sse_module);
        sse_dir_conf_t *dc = ap_get_module_config(s->lookup_defaults,
                                                  &sse_module);
        /* the stats channel is in the main server's namespace */
        const char *stats = sc->stats_channel ? sse_key_make(pconf,
            sse_namespace(pconf, dc, s),
            sc->stats_channel) : NULL;
        sse_cluster_conf_t cc = { sc->cluster_url, sc->cluster_prefix,
                                  sc->cluster_password, stats };
        return sse_relay_spawn(pconf, s, &cc);
    }
}

/* Parent: a child is gone (even by kill -9): its streams are too. */
static void sse_child_status(server_rec *s, pid_t pid, ap_generation_t gen,
                             int slot, mpm_child_status state)
{
    (void)s;
    (void)gen;
    (void)slot;
    if (state == MPM_CHILD_EXITED) {
        sse_count_child_exited(pid);
    }
}

static void sse_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    sse_count_claim();
    sse_relay_child_init();
    rv = sse_broker_start(pchild, s);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "SSE00007: cannot start the broker thread; event "
                     "streams in this child will fail");
    }
}

static void sse_child_stopping(apr_pool_t *pchild, int graceful)
{
    (void)pchild;
    (void)graceful;
    sse_held_stop();
}

/* A stream or publish URL is not a file: like mod_proxy's URLs it skips
 * the directory walk (a stat and an .htaccess probe per path component on
 * every request).  httpd resets the per-directory config before
 * map_to_storage, so the handler is looked at in translate_name, after the
 * <Location> walk: only SetHandler from <Location> or the server config
 * counts, and <Directory>, <Files> and .htaccess do not apply to these URLs. */
static char sse_not_a_file;

static int sse_translate_name(request_rec *r)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    const char *err = NULL, *h;

    if (d->expr_handler) {
        h = ap_expr_str_exec(r, d->expr_handler, &err);
        if (!err && h && (!strcmp(h, "sse") || !strcmp(h, "sse-publish"))) {
            ap_set_module_config(r->request_config, &sse_module,
                                 &sse_not_a_file);
        }
    }
    return DECLINED;
}

static int sse_map_to_storage(request_rec *r)
{
    return ap_get_module_config(r->request_config, &sse_module)
           == &sse_not_a_file ? OK : DECLINED;
}

static void sse_register_hooks(apr_pool_t *p)
{
    sse_status_register_hooks(p);
    ap_hook_child_stopping(sse_child_stopping, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_status(sse_child_status, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(sse_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(sse_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(sse_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(sse_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(sse_translate_name, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_map_to_storage(sse_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_insert_filter(sse_insert_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_register_output_filter("SSE_HANDOVER", sse_handover_filter, NULL,
                              AP_FTYPE_CONTENT_SET - 1);
}

AP_DECLARE_MODULE(sse) = {
    STANDARD20_MODULE_STUFF,
    sse_create_dir_config,
    sse_merge_dir_config,
    sse_create_srv_config,
    sse_merge_srv_config,
    sse_cmds,
    sse_register_hooks,
    AP_MODULE_FLAG_NONE
};

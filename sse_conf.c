/*
 * sse_conf.c: mod_sse's configuration as httpd reads it (see sse_conf.h):
 * the directive table and its setters, the create and merge of the
 * per-directory and per-server records (sse_config.h), and the check of the
 * whole configuration tree for open stream locations.  The setters and the
 * check run in the parent while it reads the configuration (at start and at
 * each restart); merge_dir_config also runs in the worker threads, when
 * httpd merges a request's sections.  Everything is allocated in the pool
 * httpd gives: the configuration pool, or the request's for a merge.
 */
#include <stdlib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_file_io.h"
#include "apr_uri.h"
#include "ap_mpm.h"

#include <sys/resource.h>

#include "sse_config.h"
#include "sse_conf.h"
#include "sse_event.h"
#include "sse_cluster.h"
#include "sse_token.h"
#include "sse_store.h"

/* --- configuration ------------------------------------------------------- */

void *sse_create_dir_config(apr_pool_t *p, char *dir)
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
    dc->lost_event = -1;
    dc->protected_ok = -1;
    dc->max_per_client = -1;
    dc->hub_anonymous = -1;
    return dc;
}

void *sse_merge_dir_config(apr_pool_t *p, void *basev, void *addv)
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
    SSE_MERGE_INT(lost_event);
    SSE_MERGE_INT(protected_ok);
    SSE_MERGE_INT(max_per_client);
    SSE_MERGE_INT(hub_anonymous);
#undef SSE_MERGE_INT
    /* SSEProtectedChannels on was said of the SSEChannel beside it: a
     * section with an SSEChannel of its own must say it again */
    if (add->channel && add->protected_ok < 0) {
        dc->protected_ok = -1;
    }
    dc->ns = add->ns ? add->ns : base->ns;
    dc->origins = add->origins ? add->origins : base->origins;
#define SSE_MERGE_PTR(f) dc->f = add->f ? add->f : base->f
    SSE_MERGE_PTR(hub_pub_key);
    SSE_MERGE_PTR(hub_sub_key);
    SSE_MERGE_PTR(hub_cors);
    SSE_MERGE_PTR(stream_cors);
    SSE_MERGE_PTR(hub_link);
    SSE_MERGE_PTR(stream_key);
#undef SSE_MERGE_PTR
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

void *sse_create_srv_config(apr_pool_t *p, server_rec *s)
{
    sse_srv_conf_t *sc = apr_pcalloc(p, sizeof(*sc));

    (void)s;
    sc->max_streams = -1;
    sc->max_held = -1;
    sc->suspend = -1;
    sc->v6prefix = -1;
    sc->hist_sync = -1;
    sc->hist_max = -1;
    sc->hist_strict = -1;
    sc->restart_spread = -1;
    return sc;
}

/* A virtual host with a server directive of its own keeps the main
 * server's others. */
void *sse_merge_srv_config(apr_pool_t *p, void *basev, void *addv)
{
    sse_srv_conf_t *base = basev, *add = addv;
    sse_srv_conf_t *sc = apr_pmemdup(p, add, sizeof(*sc));

    if (sc->max_streams < 0) {
        sc->max_streams = base->max_streams;
    }
    if (sc->max_held < 0) {
        sc->max_held = base->max_held;
    }
    if (sc->suspend < 0) {
        sc->suspend = base->suspend;
    }
    /* the cluster and stats settings are the main server's alone */
    sc->cluster_url = base->cluster_url;
    sc->cluster_prefix = base->cluster_prefix;
    sc->cluster_password = base->cluster_password;
    sc->cluster_sent_password = base->cluster_sent_password;
    sc->cluster_wait = base->cluster_wait;
    sc->cluster_wait_ms = base->cluster_wait_ms;
    sc->stats_channel = base->stats_channel;
    sc->v6prefix = base->v6prefix;
    sc->hist_path = base->hist_path;
    sc->hist_sync = base->hist_sync;
    sc->hist_max = base->hist_max;
    sc->hist_strict = base->hist_strict;
    sc->restart_spread = base->restart_spread;
    return sc;
}

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

/* SSEMaxStreamsPerClient (server and directory, not .htaccess). */
static const char *set_per_client(cmd_parms *cmd, void *dcv, const char *arg)
{
    return parse_int(cmd, arg, 0, 1000000,
                     &((sse_dir_conf_t *)dcv)->max_per_client);
}

/* SSEClientIPv6Prefix: one for the whole server (the table is). */
static const char *set_v6prefix(cmd_parms *cmd, void *dummy, const char *arg)
{
    sse_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &sse_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    return err ? err : parse_int(cmd, arg, 1, 64, &sc->v6prefix);
}

static const char *set_suspend(cmd_parms *cmd, void *dummy, int on)
{
    sse_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &sse_module);

    (void)dummy;
    sc->suspend = on;
    return NULL;
}

static const char *set_store_strict(cmd_parms *cmd, void *dummy, int on)
{
    sse_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &sse_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err) {
        return err;
    }
    sc->hist_strict = on;
    return NULL;
}

/* SSERestartSpread 5s | 500ms | 5 (seconds) | off: main server only. */
static const char *set_restart_spread(cmd_parms *cmd, void *dummy,
                                      const char *arg)
{
    sse_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &sse_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_interval_time_t t;

    (void)dummy;
    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "off")) {
        sc->restart_spread = 0;
        return NULL;
    }
    if (!apr_isdigit(*arg)
        || ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS
        || t < 0 || t > SSE_MAX_RESTART_SPREAD) {
        return apr_psprintf(cmd->pool, "SSERestartSpread: '%s' is not a "
                            "duration from 0 to 300s (a number of seconds, "
                            "or with ms, s or m after it; off: none)", arg);
    }
    sc->restart_spread = t;
    return NULL;
}

/* SSEClusterWait replicas [timeout]: a publish through Redis is answered
 * 200 once that many replicas have it (WAIT), within timeout (default
 * 500ms); main server only. */
static const char *set_cluster_wait(cmd_parms *cmd, void *dummy,
                                    const char *n, const char *timeout)
{
    sse_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &sse_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_interval_time_t t = apr_time_from_msec(500);
    char *end;
    long v;

    (void)dummy;
    if (err) {
        return err;
    }
    v = strtol(n, &end, 10);
    if (!apr_isdigit(*n) || *end || v < 0 || v > 16) {
        return apr_psprintf(cmd->pool, "SSEClusterWait: '%s' is not a number "
                            "of replicas from 0 to 16", n);
    }
    if (timeout && (!apr_isdigit(*timeout)
                    || ap_timeout_parameter_parse(timeout, &t, "ms")
                       != APR_SUCCESS
                    || t < apr_time_from_msec(1) || t > apr_time_from_sec(5))) {
        return apr_psprintf(cmd->pool, "SSEClusterWait: '%s' is not a "
                            "duration from 1ms to 5s (a number of "
                            "milliseconds, or with ms or s after it)", timeout);
    }
    sc->cluster_wait = (int)v;
    sc->cluster_wait_ms = (int)apr_time_as_msec(t);
    return NULL;
}

/* SSEHistoryPath, SSEHistorySync, SSEHistoryMaxSize: the history on disk
 * (the relay's store, sse_store.h); main server only. */
static const char *set_store(cmd_parms *cmd, void *dummy, const char *arg)
{
    sse_srv_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                              &sse_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *name = cmd->cmd->name;
    char *end;

    (void)dummy;
    if (err) {
        return err;
    }
    if (!strcmp(name, "SSEHistoryPath")) {
        sc->hist_path = ap_server_root_relative(cmd->pool, arg);
        if (!sc->hist_path || !*arg) {
            return apr_psprintf(cmd->pool, "SSEHistoryPath: '%s' is not a "
                                "directory path", arg);
        }
    }
    else if (!strcmp(name, "SSEHistorySync")) {
        if (!strcasecmp(arg, "always")) {
            sc->hist_sync = SSE_STORE_SYNC_ALWAYS;
        }
        else if (!strcasecmp(arg, "everysec")) {
            sc->hist_sync = SSE_STORE_SYNC_EVERYSEC;
        }
        else if (!strcasecmp(arg, "no")) {
            sc->hist_sync = SSE_STORE_SYNC_NO;
        }
        else {
            return apr_psprintf(cmd->pool, "SSEHistorySync: '%s' is not "
                                "always, everysec or no", arg);
        }
    }
    else {
        apr_int64_t v = apr_strtoi64(arg, &end, 10);
        apr_int64_t unit = !strcasecmp(end, "K") ? 1024
                           : !strcasecmp(end, "M") ? 1024 * 1024
                           : !strcasecmp(end, "G") ? 1024 * 1024 * 1024 : 1;
        if (end == arg || (*end && unit == 1) || v < 1
            || v > APR_INT64_C(1) << 40 || v * unit < 1024 * 1024) {
            return apr_psprintf(cmd->pool, "SSEHistoryMaxSize: '%s' is not a "
                                "size of at least 1M (bytes, or with K, M "
                                "or G)", arg);
        }
        sc->hist_max = (apr_off_t)(v * unit);
    }
    return NULL;
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
            return apr_psprintf(cmd->pool, "%s: cannot read '%s' (at most "
                                "4096 bytes)", name, arg);
        }
        apr_file_close(f);
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';   /* the first line is the password */
        if (!*buf) {
            return apr_psprintf(cmd->pool, "%s: '%s' has no password on its "
                                "first line", name, arg);
        }
        if (!strcmp(name, "SSEClusterSentinelPasswordFile")) {
            sc->cluster_sent_password = buf;
        }
        else {
            sc->cluster_password = buf;
        }
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

/* SSEPublishOrigins, SSECORSOrigins and MercureCORSOrigins (the array at
 * cmd->info): each an origin as a browser sends it (scheme://host[:port],
 * no path), lower case; SSECORSOrigins also takes "*" (any origin, without
 * credentials: sse_cors). */
static const char *set_origins(cmd_parms *cmd, void *dcv, const char *arg)
{
    apr_array_header_t **list = (apr_array_header_t **)
                                ((char *)dcv + (apr_size_t)cmd->info);
    int star = !strcmp(cmd->cmd->name, "SSECORSOrigins");
    const char *o = "*";
    apr_uri_t u;

    if (!star || strcmp(arg, "*")) {
        char *lc;
        /* a host name or address (a wildcard such as *.example.com would
         * never match what a browser sends) and a port in 1-65535 (APR
         * takes 99999 as 34463) */
        if (apr_uri_parse(cmd->pool, arg, &u) != APR_SUCCESS || !u.scheme
            || !u.hostname || !*u.hostname
            || u.hostname[strspn(u.hostname, "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:")]
            || (u.port_str && (!*u.port_str || strlen(u.port_str) > 5
                               || u.port_str[strspn(u.port_str, "0123456789")]
                               || atoi(u.port_str) < 1
                               || atoi(u.port_str) > 65535))
            || (u.path && strcmp(u.path, "")) || u.query
            || u.fragment || u.user || (strcasecmp(u.scheme, "http")
                                        && strcasecmp(u.scheme, "https"))) {
            return apr_psprintf(cmd->pool, "%s: '%s' is not an origin such "
                                "as https://app.example.com or "
                                "http://localhost:8080 (scheme, host and "
                                "port, no path; %s)",
                                cmd->directive->directive, arg,
                                star ? "or * for any origin" : "no *");
        }
        /* as a browser sends it: no default port, no trailing slash */
        lc = apr_uri_unparse(cmd->pool, &u, APR_URI_UNP_OMITPATHINFO
                                            | APR_URI_UNP_OMITUSERINFO);
        ap_str_tolower(lc);
        o = lc;
    }
    if (!*list) {
        *list = apr_array_make(cmd->pool, 2, sizeof(const char *));
    }
    APR_ARRAY_PUSH(*list, const char *) = o;
    return NULL;
}

/* MercurePublisherJWT, MercureSubscriberJWT and SSESubscriberJWT: key
 * [alg], as the Go
 * hub's publisher_jwt and subscriber_jwt (alg HS256 by default; for RS*
 * and ES*, key is a PEM public key file, read now). */
static const char *set_hub_key(cmd_parms *cmd, void *dcv, const char *key,
                               const char *alg)
{
    const sse_token_key_t **k = (const sse_token_key_t **)
                                ((char *)dcv + (apr_size_t)cmd->info);
    sse_token_key_t *made;
    const char *err;

    if (alg && alg[0] && alg[0] != 'H' && alg[0] != 'h') {
        key = ap_server_root_relative(cmd->pool, key);
    }
    if ((err = sse_token_key_make(cmd->pool, alg ? alg : "HS256", key,
                                  &made)) != NULL) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->directive->directive,
                            err);
    }
    *k = made;
    return NULL;
}

/* MercureHubLink: the hub's URL, absolute or from the server's root. */
static const char *set_hub_link(cmd_parms *cmd, void *dcv, const char *arg)
{
    apr_uri_t u;

    if (apr_uri_parse(cmd->pool, arg, &u) != APR_SUCCESS
        || strpbrk(arg, "<>\" \t\r\n")
        || (!u.scheme && arg[0] != '/')) {
        return apr_psprintf(cmd->pool, "MercureHubLink: '%s' is not a URL "
                            "such as https://example.com/.well-known/mercure "
                            "or /.well-known/mercure", arg);
    }
    ((sse_dir_conf_t *)dcv)->hub_link = arg;
    return NULL;
}

const command_rec sse_cmds[] = {
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
    AP_INIT_FLAG("SSEHistoryLostEvent", set_flag,
                 (void *)APR_OFFSETOF(sse_dir_conf_t, lost_event), OR_FILEINFO,
                 "On: a stream whose history could not be replayed whole "
                 "also gets an 'sse-history-lost' event, which EventSource "
                 "can see (default off)"),
    AP_INIT_TAKE1("SSENamespace", set_namespace, NULL, RSRC_CONF | ACCESS_CONF,
                  "The namespace of the channels of this server or location "
                  "(default: the virtual host's ServerName)"),
    AP_INIT_FLAG("SSEProtectedChannels", set_flag,
                 (void *)APR_OFFSETOF(sse_dir_conf_t, protected_ok), ACCESS_CONF,
                 "On: this stream location may serve protected channels "
                 "(names beginning with @) that its SSEChannel computes "
                 "(default off)"),
    AP_INIT_ITERATE("SSEPublishOrigins", set_origins,
                    (void *)APR_OFFSETOF(sse_dir_conf_t, origins),
                    RSRC_CONF | ACCESS_CONF,
                    "Origins (scheme://host[:port]) besides the server's own "
                    "from which a browser with credentials may publish here"),
    AP_INIT_ITERATE("SSECORSOrigins", set_origins,
                    (void *)APR_OFFSETOF(sse_dir_conf_t, stream_cors),
                    RSRC_CONF | ACCESS_CONF,
                    "Origins (scheme://host[:port]) whose pages may read this "
                    "location's streams with credentials (CORS); * for any "
                    "origin without credentials"),
    AP_INIT_TAKE12("MercurePublisherJWT", set_hub_key,
                   (void *)APR_OFFSETOF(sse_dir_conf_t, hub_pub_key),
                   RSRC_CONF | ACCESS_CONF,
                   "Key and algorithm (default HS256) of the JWTs publishers "
                   "of this Mercure hub present: a secret for HS*, a PEM "
                   "public key file for RS* and ES*"),
    AP_INIT_TAKE12("MercureSubscriberJWT", set_hub_key,
                   (void *)APR_OFFSETOF(sse_dir_conf_t, hub_sub_key),
                   RSRC_CONF | ACCESS_CONF,
                   "Key and algorithm (default HS256) of the JWTs subscribers "
                   "of this Mercure hub present"),
    AP_INIT_TAKE12("SSESubscriberJWT", set_hub_key,
                   (void *)APR_OFFSETOF(sse_dir_conf_t, stream_key),
                   RSRC_CONF | ACCESS_CONF,
                   "A stream location takes only a JWT (Mercure's: cookie, "
                   "authorization query field or Bearer header) whose "
                   "mercure.subscribe claim allows each channel: key and "
                   "algorithm as MercureSubscriberJWT's"),
    AP_INIT_FLAG("MercureAnonymous", set_flag,
                 (void *)APR_OFFSETOF(sse_dir_conf_t, hub_anonymous),
                 RSRC_CONF | ACCESS_CONF,
                 "On: subscribers without a token may receive this Mercure "
                 "hub's public updates (default off)"),
    AP_INIT_ITERATE("MercureCORSOrigins", set_origins,
                    (void *)APR_OFFSETOF(sse_dir_conf_t, hub_cors),
                    RSRC_CONF | ACCESS_CONF,
                    "Origins (scheme://host[:port]) whose pages may use this "
                    "Mercure hub with credentials (CORS)"),
    AP_INIT_TAKE1("MercureHubLink", set_hub_link, NULL,
                  RSRC_CONF | ACCESS_CONF | OR_FILEINFO,
                  "Add the discovery header Link: <URL>; rel=\"mercure\" to "
                  "the responses of this server or location"),
    AP_INIT_TAKE1("SSEMaxSubscribers", set_max_streams, NULL, RSRC_CONF,
                  "Most open event streams in the whole server; more are "
                  "refused with 503 (default 50000, 0: no limit)"),
    AP_INIT_TAKE1("SSEMaxStreamsPerClient", set_per_client, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "Most open event streams one client address may hold in the "
                  "whole server; more are refused with 429 (default 0: no "
                  "cap)"),
    AP_INIT_TAKE1("SSEClientIPv6Prefix", set_v6prefix, NULL, RSRC_CONF,
                  "Leading bits of an IPv6 address that SSEMaxStreamsPerClient "
                  "counts as one client, 1-64 (default 64)"),
    AP_INIT_FLAG("SSESuspend", set_suspend, NULL, RSRC_CONF,
                 "On the event MPM, a TLS (HTTP/1.1) event stream gives its "
                 "worker thread back between events (default on)"),
    AP_INIT_TAKE1("SSEMaxHeldStreams", set_max_streams, NULL, RSRC_CONF,
                  "Most TLS or HTTP/2 event streams in the whole server, each "
                  "holding a worker thread (default: half of "
                  "MaxRequestWorkers, at least 1; 0: none)"),
    AP_INIT_TAKE1("SSEHistoryPath", set_store, NULL, RSRC_CONF,
                  "Keep the history on disk in this directory, so it "
                  "survives a stop, a crash and a reboot (default: in "
                  "memory)"),
    AP_INIT_TAKE1("SSEHistorySync", set_store, NULL, RSRC_CONF,
                  "When a publish is answered relative to its reaching the "
                  "disk: always, everysec or no (default everysec)"),
    AP_INIT_TAKE1("SSEHistoryMaxSize", set_store, NULL, RSRC_CONF,
                  "Largest size of the history on disk (default 256M)"),
    AP_INIT_FLAG("SSEHistoryStrict", set_store_strict, NULL, RSRC_CONF,
                 "On: a damaged history store stops httpd from starting; "
                 "Off: it is moved aside and the history starts empty "
                 "(default Off)"),
    AP_INIT_TAKE12("SSEClusterWait", set_cluster_wait, NULL, RSRC_CONF,
                   "With SSECluster: answer a publish 200 once this many "
                   "Redis replicas have it, waiting at most the second "
                   "argument (default 500ms); 0: do not wait"),
    AP_INIT_TAKE1("SSERestartSpread", set_restart_spread, NULL, RSRC_CONF,
                  "At a graceful restart, tell each stream to reconnect at "
                  "a random time within this window and close the streams "
                  "over it: 5s, 500ms, a number of seconds, or off "
                  "(default off)"),
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
    AP_INIT_TAKE1("SSEClusterSentinelPasswordFile", set_cluster, NULL,
                  RSRC_CONF,
                  "File whose first line is the sentinels' password, for "
                  "SSECluster redis-sentinel:// (read at start-up, as root)"),
    { NULL }
};

/* --- the whole configuration ----------------------------------------------- */

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

/* Warn of every section that serves streams on channels the client names
 * (SetHandler sse, no SSEChannel) with no access control of its own: any
 * visitor may read any channel of its namespace.  Walks the configuration
 * as read, so the message names the file and line. */
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

/* Does the configuration serve streams anywhere (SetHandler sse or
 * mercure)? */
static int sse_tree_has_streams(const ap_directive_t *d)
{
    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "SetHandler") && d->args) {
            const char *a = d->args + (*d->args == '"' || *d->args == '\'');
            if (sse_is_stream_handler(d->args) || !strncasecmp(a, "mercure", 7)) {
                return 1;
            }
        }
        if (d->first_child && sse_tree_has_streams(d->first_child)) {
            return 1;
        }
    }
    return 0;
}

void sse_check_mpm(server_rec *s)
{
    sse_srv_conf_t *sc = ap_get_module_config(s->module_config, &sse_module);
    int threads = 1, daemons = 1, spare = 0, workers, streams, prefork;
    struct rlimit rl;

    if (!sse_tree_has_streams(ap_conftree)) {
        return;
    }
    prefork = !strcmp(ap_show_mpm(), "prefork");
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons);
    threads = threads > 0 ? threads : 1;
    daemons = daemons > 0 ? daemons : 1;
    workers = prefork ? daemons : threads * daemons;
    ap_mpm_query(prefork ? AP_MPMQ_MAX_SPARE_DAEMONS : AP_MPMQ_MAX_SPARE_THREADS,
                 &spare);
    if (spare < workers) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "SSE00308: %s %d is below MaxRequestWorkers %d: the %s "
                     "MPM stops %s, and one whose streams are parked or "
                     "suspended looks idle: its streams end and their clients "
                     "reconnect (set %s to MaxRequestWorkers)",
                     prefork ? "MaxSpareServers" : "MaxSpareThreads", spare,
                     workers, ap_show_mpm(),
                     prefork ? "idle processes" : "children with idle threads",
                     prefork ? "MaxSpareServers" : "MaxSpareThreads");
    }
    if (prefork && ap_find_linked_module("mod_ssl.c")) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "SSE00309: the prefork MPM holds each event stream over "
                     "TLS in a whole process: MaxRequestWorkers %d for streams "
                     "and pages together. For streams without a process each, "
                     "use the event MPM (with PHP: php-fpm through "
                     "proxy_fcgi instead of mod_php), or plain HTTP behind a "
                     "TLS proxy", daemons);
    }
    /* a child's descriptors: its streams, two per worker thread (its
     * connection and the relay's), some for logs and listeners */
    streams = SSE_OR(sc->max_streams, SSE_DEFAULT_MAX_STREAMS);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
        && streams > 0) {
        long per = (long)rl.rlim_cur - 2L * threads - 64;
        long room = (per > 0 ? per : 0) * daemons;
        if (room < streams) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "SSE00313: %lu descriptors per process (ulimit -n) "
                         "let %d children hold about %ld streams, below "
                         "SSEMaxSubscribers %d: raise the limit (Debian: "
                         "APACHE_ULIMIT_MAX_FILES in /etc/apache2/envvars; "
                         "systemd: LimitNOFILE=) or lower SSEMaxSubscribers",
                         (unsigned long)rl.rlim_cur, daemons, room, streams);
        }
    }
}

/* The whole configuration: its top level (the main server's SetHandler
 * applies to every URL), then every section. */
void sse_check_config_tree(server_rec *s)
{
    const ap_directive_t *h = sse_open_stream(ap_conftree);

    if (h) {
        sse_warn_open(s, h, "the server configuration");
    }
    sse_check_open_streams(ap_conftree, s);
}

/*
 * mod_sse.c: Server-Sent Events on named channels for Apache httpd 2.4.
 *
 * This file holds only the module glue: the module record, the hooks, and
 * what the parent (post_config: the stream counters, the relay) and each
 * child (child_init: the broker thread) do at start.  The rest is in rooms
 * of one job each:
 *   sse_conf.c     the directives and the configuration records (parent)
 *   sse_stream.c   "sse": turns a GET into a stream: it sends the headers,
 *                  then hands the socket to this child's broker thread
 *                  (sse_broker.c) and returns, freeing the worker; and the
 *                  hand-over filter (worker threads)
 *   sse_publish.c  "sse-publish": validates an event and sends it through
 *                  the relay (sse_relay.h, sse_relayd.c) to every child;
 *                  GET and DELETE on it inspect and close channels (worker
 *                  threads)
 *   sse_request.c  what those two share: channels, namespaces and keys
 * Framing and parsing live in sse_event.c.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_request.h"
#include "mpm_common.h"
#include "ap_mpm.h"

#define SSE_MODULE_FILE
#include "sse_config.h"
#include "sse_conf.h"
#include "sse_request.h"
#include "sse_handlers.h"
#include "sse_store.h"
#include "sse_event.h"
#include "sse_broker.h"
#include "sse_relay.h"
#include "sse_relayd.h"
#include "sse_suspend.h"
#include "sse_tls.h"
#include "sse_held.h"
#include "sse_count.h"
#include "sse_client.h"
#include "sse_status.h"
#include "sse_trim.h"
#include "sse_version.h"
#include "sse_spread.h"

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
    if (!strcmp(r->handler, "mercure")) {
        return sse_hub_handler(r);
    }
    return DECLINED;
}

/* apachectl configtest: the checks that need the whole configuration. */
static int sse_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                            apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST) {
        sse_srv_conf_t *sc = ap_get_module_config(s->module_config,
                                                  &sse_module);
        sse_check_config_tree(s);
        sse_check_mpm(s);
        sse_held_configure(s, sc->max_held);
        sse_suspend_configure(s);
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
        sse_srv_conf_t *sc = ap_get_module_config(s->module_config,
                                                  &sse_module);
        if (sc->hist_path && sc->hist_strict > 0 && !sc->cluster_url) {
            return sse_relay_store_strict(s, sc->hist_path,
                                          sc->hist_max >= 0 ? sc->hist_max
                                          : SSE_DEFAULT_HISTORY_MAX);
        }
        return OK;
    }
    /* the error log is open now: the warnings configtest gives */
    ap_add_version_component(pconf, "mod_sse/" SSE_VERSION_STRING);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                 "SSE00016: mod_sse/" SSE_VERSION_STRING " configured");
    sse_check_config_tree(s);
    sse_check_mpm(s);
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
        /* the streams of each client address (SSEMaxStreamsPerClient) */
        rv = sse_client_init(pconf, SSE_OR(sc->max_streams,
                                           SSE_DEFAULT_MAX_STREAMS),
                             SSE_OR(sc->v6prefix, SSE_DEFAULT_V6_PREFIX));
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                         "SSE00013: cannot create the per-client stream "
                         "counters");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
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
                                  sc->cluster_password,
                                  sc->cluster_sent_password, stats,
                                  sc->cluster_wait, sc->cluster_wait_ms,
                                  sc->hist_path,
                                  SSE_OR(sc->hist_sync,
                                         SSE_STORE_SYNC_EVERYSEC),
                                  sc->hist_max >= 0 ? sc->hist_max
                                  : SSE_DEFAULT_HISTORY_MAX,
                                  sc->hist_strict > 0, NULL, 0, 0 };
        if (sc->hist_path && sse_relay_store_dir(pconf, s, sc->hist_path) != OK) {
            cc.store_path = NULL;       /* logged: the history in memory */
        }
        sse_held_configure(s, sc->max_held);
        sse_suspend_configure(s);
        sse_spread_configure(sc->restart_spread >= 0 ? sc->restart_spread
                             : SSE_DEFAULT_RESTART_SPREAD);
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
        sse_client_child_exited(pid);
        sse_count_child_exited(pid);
    }
}

static void sse_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    sse_count_claim();
    sse_client_claim();
    sse_relay_child_init();
    rv = sse_broker_start(pchild, s);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     "SSE00007: cannot start the broker thread; event "
                     "streams in this child will fail");
    }
    rv = sse_suspend_start(pchild);
    if (rv != APR_SUCCESS && rv != APR_ENOTIMPL) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "SSE00012: cannot start the suspended streams' watcher; "
                     "TLS streams in this child are held");
    }
}

/* The child stops: its held and suspended streams end now, so that it can
 * exit (its parked ones when it does: sse_broker.c), unless a graceful
 * restart spreads them (SSERestartSpread, sse_spread.h): the broker closes
 * them then, a slice at a time. */
static void sse_child_stopping(apr_pool_t *pchild, int graceful)
{
    (void)pchild;
    if (sse_spread_stopping(graceful)) {
        return;
    }
    sse_held_stop();
    sse_suspend_stop();
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
        if (!err && h && (!strcmp(h, "sse") || !strcmp(h, "sse-publish")
                          || !strcmp(h, "mercure"))) {
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
    sse_trim_register_hooks(p);
    sse_tls_register_hooks();
    ap_hook_child_stopping(sse_child_stopping, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_status(sse_child_status, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(sse_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(sse_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(sse_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_suspend_connection(sse_suspend_connection, NULL, NULL,
                               APR_HOOK_MIDDLE);
    ap_hook_handler(sse_handover_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_handler(sse_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(sse_translate_name, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_map_to_storage(sse_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_insert_filter(sse_insert_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_fixups(sse_hub_link_fixup, NULL, NULL, APR_HOOK_MIDDLE);
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

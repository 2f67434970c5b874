/*
 * sse_relay_spawn.c: the parent's side of the relay (see sse_relayd.h):
 * fork it in post_config (as mod_cgid's cgid_start does its daemon), fork
 * it again when it dies (an "other child", as cgid_maint), replace it when
 * a reload brings another protocol or other cluster settings, and stop it
 * when httpd exits.  Runs in the parent only.
 */
#include <errno.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apr_strings.h"
#include "apr_thread_proc.h"
#include "ap_mpm.h"
#include "mpm_common.h"
#include "sse_store.h"
#include "http_core.h"

#include "sse_log.h"
#include "sse_relay.h"
#include "sse_relayd.h"
#include "unixd.h"

/* Kept in the process pool so that it survives the module's reload on
 * restart: the relay of an earlier generation goes on serving. */
typedef struct {
    apr_proc_t proc;
    int running;
    pid_t parent;
    apr_pool_t *pconf;          /* the current generation's, for respawns */
    server_rec *s;
    sse_cluster_conf_t cc;      /* in pconf, for the next fork */
    char *cluster;              /* the running relay's cluster settings
                                   (malloc'ed: two password files of up to
                                   4 KB each are in them), or NULL */
    char sock[1024];            /* the running relay's socket path */
    int starts, upgrades;       /* relays forked, replaced by a new build */
} relay_state_t;

#define SSE_STR2(x) #x
#define SSE_STR(x) SSE_STR2(x)
#ifdef SSE_BUILD_STAMP
const char sse_build_id[] = "mod_sse-build " SSE_STR(SSE_BUILD_STAMP);
#else
const char sse_build_id[] = "mod_sse-build " __DATE__ " " __TIME__;
#endif

static int relay_fork(relay_state_t *st);

static void relay_maint(int reason, void *data, apr_wait_t status)
{
    relay_state_t *st = data;

    (void)status;
    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        st->running = 0;
        apr_proc_other_child_unregister(st);
        if (ap_mpm_query(AP_MPMQ_MPM_STATE, &reason) == APR_SUCCESS
            && reason != AP_MPMQ_STOPPING) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, st->s,
                         "SSE00208: relay died; restarting it");
            if (relay_fork(st) == OK) {
                apr_proc_other_child_register(&st->proc, relay_maint, st,
                                              NULL, st->pconf);
            }
        }
        break;
    default:
        break;
    }
}

/* The directory where a relay being replaced leaves its history: beside
 * its socket, made by the parent (the runtime directory may be root's)
 * for the httpd user, mode 0700, empty.  NULL when it cannot be made. */
static const char *handover_dir(apr_pool_t *p, server_rec *s, const char *sock)
{
    const char *dir = apr_pstrcat(p, sock, ".handover", NULL);
    static const char *const files[] = { "data.mdb", "lock.mdb", "owner.lock" };
    int i;

    for (i = 0; i < 3; i++) {
        unlink(apr_pstrcat(p, dir, "/", files[i], NULL));
    }
    if ((mkdir(dir, 0700) < 0 && errno != EEXIST)
        || (geteuid() == 0 && chown(dir, ap_unixd_config.user_id,
                                    ap_unixd_config.group_id) < 0)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, "SSE00225: cannot make "
                     "%s for the relay's history: the new relay starts with "
                     "an empty history", dir);
        return NULL;
    }
    return dir;
}

/* pconf cleanup: the relay goes when httpd exits, stays over restarts. */
static apr_status_t relay_kill(void *data)
{
    relay_state_t *st = data;

    if (getpid() != st->parent
        || ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING) {
        return APR_SUCCESS;
    }
    if (st->running) {
        kill(st->proc.pid, SIGTERM);
        waitpid(st->proc.pid, NULL, 0);
        st->running = 0;
    }
    /* the relay, no longer root, may not remove it from a root-owned
     * runtime directory; nor has it, when it went first (a SIGTERM to the
     * whole process group: pkill, Ctrl-C) */
    if (sse_relay_path) {
        char dir[1100];
        unlink(sse_relay_path);
        /* what a replaced relay's history went through, emptied */
        snprintf(dir, sizeof(dir), "%s.handover", sse_relay_path);
        rmdir(dir);
    }
    return APR_SUCCESS;
}

static int relay_fork(relay_state_t *st)
{
    apr_status_t rv;

    st->cc.starts = ++st->starts;
    st->cc.upgrades = st->upgrades;
    rv = apr_proc_fork(&st->proc, st->pconf);

    if (rv == APR_INCHILD) {
        sse_relayd_main(st->pconf, st->s, sse_relay_path, &st->cc);
    }
    if (rv != APR_INPARENT) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, st->s,
                     "SSE00209: cannot fork the relay");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    st->running = 1;
    apr_cpystrn(st->sock, sse_relay_path, sizeof(st->sock));
    return OK;
}

int sse_relay_spawn(apr_pool_t *pconf, server_rec *s,
                    const sse_cluster_conf_t *cc)
{
    const char *cluster;
    static const char key[] = "sse_relay_state";
    apr_pool_t *pproc = s->process->pool;
    relay_state_t *st;
    void *data;

    sse_relay_path = ap_runtime_dir_relative(pconf,
                        apr_psprintf(pconf, "sse-relay.%d.sock", (int)getpid()));
    apr_pool_userdata_get(&data, key, pproc);
    st = data;
    if (!st) {
        st = apr_pcalloc(pproc, sizeof(*st));
        st->parent = getpid();
        apr_pool_userdata_set(st, key, apr_pool_cleanup_null, pproc);
    }
    st->pconf = pconf;
    st->s = s;
    st->cc = *cc;
    if (st->running && kill(st->proc.pid, 0) < 0) {
        st->running = 0;
    }
    /* A relay started with other cluster settings must make way. */
    /* The protocol is part of it: a relay kept across a graceful restart
     * must speak the protocol of the module that was just loaded. */
    cluster = apr_pstrcat(pconf, sse_build_id,
                          apr_psprintf(pconf, "|frames %u|", SSE_FRAME_FORMAT),
                          cc->url ? cc->url : "", "|",
                          cc->prefix ? cc->prefix : "", "|",
                          cc->password ? cc->password : "", "|",
                          cc->sent_password ? cc->sent_password : "", "|",
                          cc->stats_channel ? cc->stats_channel : "", "|",
                          cc->store_path ? cc->store_path : "",
                          apr_psprintf(pconf, "|%d|%" APR_OFF_T_FMT "|%d|%d %d",
                                       cc->store_sync, cc->store_max,
                                       cc->store_strict, cc->wait_replicas,
                                       cc->wait_ms), NULL);
    st->cc.handover = NULL;
    if (st->running && strcmp(cluster, st->cluster ? st->cluster : "")) {
        /* Only a history in memory needs handing over: a store or Redis
         * keeps it for the next relay. */
        const char *dir = !cc->url && !cc->store_path
            ? handover_dir(pconf, s, st->sock) : NULL;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "SSE00211: relay build, protocol, cluster/stats or "
                     "history store settings changed (%s, was %.*s); "
                     "replacing the relay%s", sse_build_id,
                     st->cluster ? (int)strcspn(st->cluster, "|") : 0,
                     st->cluster ? st->cluster : "",
                     dir ? ", which hands its history to the new one" : "");
        kill(st->proc.pid, dir ? SIGUSR2 : SIGTERM);
        waitpid(st->proc.pid, NULL, 0);
        st->running = 0;
        st->cc.handover = dir;
        st->upgrades += !st->cluster
                        || strncmp(cluster, st->cluster,
                                   strcspn(st->cluster, "|") + 1) != 0;
    }
    free(st->cluster);
    st->cluster = strdup(cluster);
    if (!st->running && relay_fork(st) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_proc_other_child_register(&st->proc, relay_maint, st, NULL, pconf);
    apr_pool_cleanup_register(pconf, st, relay_kill, apr_pool_cleanup_null);
    return OK;
}

int sse_relay_store_strict(server_rec *s, const char *path, apr_off_t max)
{
    const char *err;

    if (sse_store_check(path, (size_t)max, &err) < 0) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "SSE00015: SSEHistoryStrict "
                     "On: %s (or set SSEHistoryStrict Off to have it moved "
                     "aside); httpd does not start", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

int sse_relay_store_dir(apr_pool_t *p, server_rec *s, const char *path)
{
    uid_t uid = geteuid() == 0 ? ap_unixd_config.user_id : geteuid();
    gid_t gid = geteuid() == 0 ? ap_unixd_config.group_id : getegid();
    struct stat st;

    (void)p;
    if (mkdir(path, 0700) == 0) {
        if (geteuid() == 0 && chown(path, uid, gid) < 0) {
            ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, "SSE00014: "
                         "SSEHistoryPath %s: cannot give it to the httpd "
                         "user; the history is kept in memory only", path);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    else if (errno != EEXIST) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, "SSE00014: "
                     "SSEHistoryPath %s cannot be created: make its parent "
                     "directory, or point SSEHistoryPath elsewhere; the "
                     "history is kept in memory only", path);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid
        || (st.st_mode & 077)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "SSE00014: "
                     "SSEHistoryPath %s must be a directory of the httpd "
                     "user (uid %d) with mode 0700: chown it to that user "
                     "and chmod 700 it; the history is kept in memory only",
                     path, (int)uid);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

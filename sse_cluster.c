/*
 * sse_cluster.c: the relay's Redis client (see sse_cluster.h).
 *
 * Keys, all under the prefix P (SSEClusterPrefix, default "sse"); CHAN is
 * a channel's key, namespace/name, as everywhere past the handlers:
 *   P:seq          the event sequence shared by every server (INCR)
 *   P:h:CHAN       the channel's history, a Redis stream with ids "SEQ-0"
 *                  and fields i (event id), b (event without id line) and
 *                  t (publish time, ms since the epoch)
 *   P:gone:CHAN    the highest seq trimmed from that history
 *   P:ids:CHAN     publisher-given id -> seq on that channel, for
 *                  Last-Event-ID (a publisher may reuse ids per channel)
 *   P:ev           the pub/sub channel every relay listens to
 *   P:ctl          pub/sub: questions to every relay, "vF OP REQ SID\nBODY"
 *                  (F the format, OP "conns" or "close", REQ the asker's
 *                  number for it, SID the asker's server id, BODY a
 *                  channel's key); relays before it existed do not listen
 *   P:ctl:SID      pub/sub: answers to server SID, "vF ans REQ SID\nBODY"
 *                  (SID the answering server's)
 *   P:srv:SID      one server's "channel -> streams" counts, expiring
 *   P:servers      sorted set of server ids by last refresh (ms)
 *   P:format       the format of all of the above and of the messages
 *                  (SSE_CLUSTER_FORMAT), set by the first relay to connect
 * A relay that finds P:format other than its own uses none of it: it does
 * not connect (and the publish script refuses to write), in one log line;
 * a message whose first line carries another format ("SEQ vN", or "vN" on
 * P:ctl) is not delivered, in one log line.  Builds before formats were numbered wrote
 * format 1 without the tag and ignore it (they read the seq's digits).
 * The hiredis contexts are blocking with short timeouts: Redis runs on the
 * local network, and the relay has nothing else to do while it waits.
 * With Sentinel (redis-sentinel://) a third context asks a sentinel, once
 * a tick, where the master is: the relay connects there (checking ROLE)
 * and leaves as soon as the answer changes, or a command is refused with
 * READONLY (a master demoted under it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "apr_strings.h"
#include "apr_time.h"
#include "apr_general.h"
#include "apr_sha1.h"

#include "sse_log.h"
#include "sse_cluster.h"
#include "sse_relayd.h"      /* sse_build_id */
#include "sse_event.h"
#include "sse_wire.h"

/* A Redis key: the prefix (SSEClusterPrefix, at most 64 bytes), a part
 * name such as ":gone:", and a channel's key. */
#define CLUSTER_KEY_MAX (64 + 8 + SSE_KEY_MAX + 1)

/* At most this many sentinels in a redis-sentinel:// URL. */
#define CLUSTER_SENTINELS_MAX 16

/* A server whose counts were refreshed in the last this many ms is live
 * (it refreshes them every second). */
#define SERVER_LIVE_MS 3000

struct sse_cluster_t {
    server_rec *s;
    apr_pool_t *pool;
    char host[256];             /* Redis, or the master Sentinel named */
    int port, db;
    char was_host[256];         /* the master last connected to ("": none) */
    int was_port;
    int wait_n, wait_ms;        /* SSEClusterWait */
    apr_time_t wait_failed;     /* the last publish not confirmed in time,
                                   or 0: the next ones are refused for a
                                   second before one tries again */
    /* redis-sentinel://: the sentinels (host:port), the master's name,
     * the sentinel asked first (the one that answered last) and its
     * connection, kept between ticks; none answered: said once; their
     * password (SSEClusterSentinelPasswordFile), a refusal said once */
    int nsent, sent_at, sent_silent, sent_refused;
    char *sent_password;
    char *sent_host[CLUSTER_SENTINELS_MAX];
    int sent_port[CLUSTER_SENTINELS_MAX];
    char *master;
    redisContext *sent;
    char *prefix, *password;
    redisContext *cmd, *sub;
    apr_time_t retry_at;
    apr_interval_time_t backoff;
    char sid[33];
    /* the publish script's SHA1 (hex), sent with EVALSHA instead of the
     * script; noscript: Redis did not have it (the last command) */
    char publish_sha[2 * APR_SHA1_DIGESTSIZE + 1];
    int noscript;
    const char *why;            /* why the last publish failed */
    /* the last other format met in the keys and in a message (0: none),
     * each logged once */
    unsigned long other_keys, other_msgs, other_ctl;
};

/* Publish one event: see the key list above.  ARGV: prefix, channel, id
 * ("" = use the seq), body, history count, now, history age (ms; age 0:
 * no limit) and this build's format.  Nothing is written to keys of
 * another format.  The history is trimmed to the count, then of entries
 * older than the age (field t, the publishing server's clock).  ARGV 9
 * and 10: the oldest refresh of a live server (ms) and this server's id.
 * Returns {seq, the other live servers' streams on the channel}: the
 * publish answer's count, in the same round trip. */
static const char publish_lua[] =
    "local P, chan, id, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local keep, now, age = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "local F = redis.call('GET', P .. ':format')\n"
    "if F and F ~= ARGV[8] then return redis.error_reply('SSE-FORMAT ' .. F) end\n"
    "if not F then redis.call('SET', P .. ':format', ARGV[8]) end\n"
    "local seq = redis.call('INCR', P .. ':seq')\n"
    "if id == '' then id = tostring(seq)\n"
    "else redis.call('HSET', P .. ':ids:' .. chan, id, seq) end\n"
    "local hk, ik = P .. ':h:' .. chan, P .. ':ids:' .. chan\n"
    "local gone = nil\n"
    "local function drop(e)\n"
    "  redis.call('XDEL', hk, e[1])\n"
    "  local s = string.match(e[1], '^%d+')\n"
    "  local f = e[2]\n"
    "  for k = 1, #f, 2 do\n"
    "    if f[k] == 'i' and redis.call('HGET', ik, f[k + 1]) == s then\n"
    "      redis.call('HDEL', ik, f[k + 1]) end\n"
    "  end\n"
    "  gone = s\n"
    "end\n"
    "local function born(e)\n"
    "  local f = e[2]\n"
    "  for k = 1, #f, 2 do if f[k] == 't' then return tonumber(f[k + 1]) end end\n"
    "  return now\n"
    "end\n"
    "if keep > 0 then\n"
    "  redis.call('XADD', hk, seq .. '-0', 'i', id, 'b', body, 't', now)\n"
    "  local n = redis.call('XLEN', hk) - keep\n"
    "  if n > 0 then\n"
    "    for _, e in ipairs(redis.call('XRANGE', hk, '-', '+', 'COUNT', n)) do drop(e) end\n"
    "  end\n"
    "  while age > 0 do\n"
    "    local e = redis.call('XRANGE', hk, '-', '+', 'COUNT', 1)[1]\n"
    "    if not e or now - born(e) <= age then break end\n"
    "    drop(e)\n"
    "  end\n"
    "  if gone then redis.call('SET', P .. ':gone:' .. chan, gone) end\n"
    "else redis.call('SET', P .. ':gone:' .. chan, seq) end\n"
    "redis.call('PUBLISH', P .. ':ev', seq .. ' v' .. ARGV[8] .. '\\n' .. id .. '\\n' .. chan .. '\\n' .. body)\n"
    "local others = 0\n"
    "for _, s in ipairs(redis.call('ZRANGEBYSCORE', P .. ':servers', ARGV[9], '+inf')) do\n"
    "  if s ~= ARGV[10] then\n"
    "    others = others + (tonumber(redis.call('HGET', P .. ':srv:' .. s, chan)) or 0)\n"
    "  end\n"
    "end\n"
    "return {seq, others}\n";

/* At a connect: the keys' format, set to ARGV[2] (this build's) when
 * there is none yet. */
static const char format_lua[] =
    "local k = ARGV[1] .. ':format'\n"
    "local v = redis.call('GET', k)\n"
    "if not v then redis.call('SET', k, ARGV[2]) return ARGV[2] end\n"
    "return v\n";

/* After a reconnect: a Redis that lost its data (restarted without
 * persistence, a replica promoted before it had the last events) counts
 * from below what was handed out.  Another relay may have seen more than
 * this one, so the sequence jumps SEQ_JUMP past what this relay saw, and
 * the history before is remembered as gone (P:floor).  After a failover
 * (switched: another master than last time) the sequence jumps too, even
 * when this relay saw nothing lost: it may have seen less than another;
 * unless it is already far past what this relay saw (another relay made
 * the jump).  So no id is given to two events.  With SSEClusterWait, after
 * a failover what the new master lacks was never answered 200 (a replica
 * had to confirm each 200, and the sentinels promote the most advanced):
 * only ids past what it has are unknown, remembered as a range in the
 * sorted set P:gaps (member "lo hi", score hi: a resume after an id in
 * lo < id < hi reports lost history; one per failover, whichever relay
 * comes first, whether it saw past the new master or not), and a resume
 * from before keeps its history.  ARGV: prefix, last seen,
 * jump, switched (0/1), waited (0/1). */
#define SEQ_JUMP "1000000"
static const char bump_lua[] =
    "local P, last = ARGV[1], tonumber(ARGV[2])\n"
    "local jump, switched = tonumber(ARGV[3]), ARGV[4] == '1'\n"
    "local v = tonumber(redis.call('GET', P .. ':seq') or '0')\n"
    "local waited = switched and ARGV[5] == '1'\n"
    "local function gap(hi)\n"
    "  redis.call('ZADD', P .. ':gaps', hi, v .. ' ' .. hi)\n"
    "end\n"
    "if v < last then\n"
    "  redis.call('SET', P .. ':seq', last + jump)\n"
    "  if waited then gap(last + jump)\n"
    "  else redis.call('SET', P .. ':floor', last + jump) end\n"
    "elseif switched and last > 0 and v < last + jump / 2 then\n"
    "  redis.call('SET', P .. ':seq', v + jump)\n"
    "  if waited then gap(v + jump) end\n"
    "end\n"
    "return v\n";

/* host[:port] of len bytes at hp, port defport when absent: NULL, or
 * what is wrong (in p).  host (a copy, in p) and port are set when given. */
static const char *parse_hostport(apr_pool_t *p, const char *url,
                                  const char *hp, size_t len, int defport,
                                  char **host, int *port)
{
    const char *stop = hp + len;
    const char *close = *hp == '[' ? memchr(hp, ']', len) : NULL;
    const char *colon = memchr(close ? close : hp, ':',
                               len - (size_t)((close ? close : hp) - hp));
    size_t hlen = colon ? (size_t)(colon - hp) : len;
    long v = defport;
    char *end;

    if (*hp == '[') {           /* [IPv6]: the address without brackets */
        if (!close || (close + 1 != stop && close + 1 != colon)) {
            return apr_psprintf(p, "'%s' has a bad [address]", url);
        }
        hp++;
        hlen = (size_t)(close - hp);
    }
    if (!hlen) {
        return apr_psprintf(p, "'%s' has no host", url);
    }
    if (hlen > 255) {
        return apr_psprintf(p, "'%s' has a host over 255 bytes", url);
    }
    if (colon) {
        v = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || v < 1 || v > 65535 || end != stop) {
            return apr_psprintf(p, "'%s' has a bad port", url);
        }
    }
    if (host) {
        *host = apr_pstrmemdup(p, hp, hlen);
        *port = (int)v;
    }
    return NULL;
}

/* The URL's parts into c (NULL: only check); NULL or what is wrong.
 *   redis://HOST[:PORT][/DB]
 *   redis-sentinel://HOST[:PORT][,HOST[:PORT]...]/MASTERNAME[/DB]
 * (ports 6379 and 26379 by default). */
static const char *cluster_parse_url(apr_pool_t *p, const char *url,
                                     sse_cluster_t *c)
{
    const char *hp, *slash, *err, *db = NULL;
    char *h = NULL, *end;
    int port, n = 0;

    if (!strncmp(url, "redis://", 8)) {
        hp = url + 8;
        slash = strchr(hp, '/');
        if ((err = parse_hostport(p, url, hp, slash ? (size_t)(slash - hp)
                                  : strlen(hp), 6379, &h, &port)) != NULL) {
            return err;
        }
        if (c) {
            apr_cpystrn(c->host, h, sizeof(c->host));
            c->port = port;
        }
        db = slash ? slash + 1 : NULL;
    }
    else if (!strncmp(url, "redis-sentinel://", 17)) {
        const char *name;
        hp = url + 17;
        if (!(slash = strchr(hp, '/'))) {
            return apr_psprintf(p, "'%s' has no /MASTERNAME after the "
                                "sentinels", url);
        }
        while (hp < slash) {
            const char *comma = memchr(hp, ',', (size_t)(slash - hp));
            const char *e = comma ? comma : slash;
            if (n == CLUSTER_SENTINELS_MAX) {
                return apr_psprintf(p, "'%s' names over %d sentinels", url,
                                    CLUSTER_SENTINELS_MAX);
            }
            if ((err = parse_hostport(p, url, hp, (size_t)(e - hp), 26379,
                                      &h, &port)) != NULL) {
                return err;
            }
            if (c) {
                c->sent_host[n] = h;
                c->sent_port[n] = port;
            }
            n++;
            hp = comma ? comma + 1 : slash;
            if (comma && hp == slash) {
                return apr_psprintf(p, "'%s' has no host", url);
            }
        }
        if (!n) {
            return apr_psprintf(p, "'%s' has no host", url);
        }
        name = slash + 1;
        slash = strchr(name, '/');
        if (slash == name || !*name) {
            return apr_psprintf(p, "'%s' has no master name", url);
        }
        if ((slash ? (size_t)(slash - name) : strlen(name)) > 128
            || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                            "QRSTUVWXYZ0123456789_-.")
               != (slash ? (size_t)(slash - name) : strlen(name))) {
            return apr_psprintf(p, "'%s': the master name is 1-128 "
                                "characters of A-Z a-z 0-9 _ - .", url);
        }
        if (c) {
            c->nsent = n;
            c->master = slash ? apr_pstrmemdup(p, name, (size_t)(slash - name))
                              : apr_pstrdup(p, name);
        }
        db = slash ? slash + 1 : NULL;
    }
    else {
        return apr_psprintf(p, "'%s' does not start with redis:// or "
                            "redis-sentinel://", url);
    }
    if (db && *db) {
        long v = strtol(db, &end, 10);
        if (*end || v < 0 || v > 65535) {
            return apr_psprintf(p, "'%s' has a bad database number", url);
        }
        if (c) {
            c->db = (int)v;
        }
    }
    return NULL;
}

const char *sse_cluster_check_url(apr_pool_t *p, const char *url)
{
    return cluster_parse_url(p, url, NULL);
}

sse_cluster_t *sse_cluster_create(server_rec *s, const char *url,
                                  const char *prefix, const char *password,
                                  const char *sent_password)
{
    apr_pool_t *p;
    sse_cluster_t *c;
    unsigned char rnd[16];
    int i;

    apr_pool_create(&p, NULL);
    c = apr_pcalloc(p, sizeof(*c));
    c->pool = p;
    c->s = s;
    cluster_parse_url(p, url, c);       /* checked by the configuration */
    c->prefix = apr_pstrdup(p, prefix ? prefix : "sse");
    c->password = password ? apr_pstrdup(p, password) : NULL;
    c->sent_password = sent_password ? apr_pstrdup(p, sent_password) : NULL;
    {
        apr_sha1_ctx_t sha;
        unsigned char dig[APR_SHA1_DIGESTSIZE];
        apr_sha1_init(&sha);
        apr_sha1_update(&sha, publish_lua, sizeof(publish_lua) - 1);
        apr_sha1_final(dig, &sha);
        for (i = 0; i < APR_SHA1_DIGESTSIZE; i++) {
            apr_snprintf(c->publish_sha + 2 * i, 3, "%02x", dig[i]);
        }
    }
    c->backoff = apr_time_from_msec(200);
    apr_generate_random_bytes(rnd, sizeof(rnd));
    for (i = 0; i < 16; i++) {
        apr_snprintf(c->sid + 2 * i, 3, "%02x", rnd[i]);
    }
    return c;
}

int sse_cluster_fd(const sse_cluster_t *c)
{
    return c->sub ? c->sub->fd : -1;
}

int sse_cluster_up(const sse_cluster_t *c)
{
    return c->cmd && c->sub;
}

static void cluster_down(sse_cluster_t *c, const char *why)
{
    if (!c->cmd && !c->sub) {
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s,
                 "SSE00401: lost Redis at %s:%d (%s); publishing answers 503 "
                 "until it is back", c->host, c->port, why);
    if (c->cmd) {
        redisFree(c->cmd);
    }
    if (c->sub) {
        redisFree(c->sub);
    }
    c->cmd = c->sub = NULL;
    c->retry_at = apr_time_now() + c->backoff;
}

/* The keys under the prefix are in format v, not this build's: said once
 * per format met. */
static void cluster_other_keys(sse_cluster_t *c, const char *v)
{
    unsigned long f = strtoul(v, NULL, 10);

    if (f != c->other_keys) {
        c->other_keys = f;
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s,
                     "SSE00410: the keys under SSEClusterPrefix '%s' in Redis "
                     "at %s:%d are in format %s; this build (%s) speaks "
                     "format %d: not using them, publishing answers 503 (a "
                     "newer build wrote them: upgrade this server, or give "
                     "it another prefix)", c->prefix, c->host, c->port, v,
                     sse_build_id, SSE_CLUSTER_FORMAT);
    }
}

/* Run one command (argv of NUL-terminated strings, or with lengths);
 * returns the reply (free with freeReplyObject) or NULL, Redis then down. */
static redisReply *cluster_cmd(sse_cluster_t *c, int argc, const char **argv,
                               const size_t *lens)
{
    redisReply *r;

    if (!c->cmd) {
        return NULL;
    }
    r = redisCommandArgv(c->cmd, argc, argv, lens);
    if (!r) {
        cluster_down(c, c->cmd->errstr[0] ? c->cmd->errstr : "no answer");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (!strncmp(r->str, "SSE-FORMAT ", 11)) {
            cluster_other_keys(c, r->str + 11);
        }
        else if (!strncmp(r->str, "NOSCRIPT", 8)) {
            c->noscript = 1;    /* the caller sends the whole script */
        }
        else if (!strncmp(r->str, "READONLY", 8)) {
            /* a master demoted to replica under us (Sentinel failover) */
            freeReplyObject(r);
            cluster_down(c, "it is a read-only replica now");
            return NULL;
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s,
                         "SSE00402: Redis said: %s", r->str);
        }
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Connect one context: AUTH and SELECT as configured. */
static redisContext *cluster_connect(sse_cluster_t *c)
{
    struct timeval tv = { 1, 0 };
    redisContext *ctx = redisConnectWithTimeout(c->host, c->port, tv);
    redisReply *r;

    if (!ctx || ctx->err) {
        if (ctx) {
            redisFree(ctx);
        }
        return NULL;
    }
    tv.tv_sec = 2;
    redisSetTimeout(ctx, tv);
    if (c->password) {
        r = redisCommand(ctx, "AUTH %s", c->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s,
                         "SSE00403: Redis refused the password from "
                         "SSEClusterPasswordFile");
            if (r) {
                freeReplyObject(r);
            }
            redisFree(ctx);
            return NULL;
        }
        freeReplyObject(r);
    }
    if (c->db) {
        r = redisCommand(ctx, "SELECT %d", c->db);
        if (r) {
            freeReplyObject(r);
        }
    }
    return ctx;
}

/* Are the keys in this build's format (set it when none)?  1 yes, 0 no
 * (said once), -1 Redis failed. */
static int cluster_format(sse_cluster_t *c)
{
    char mine[16];
    const char *argv[5] = { "EVAL", format_lua, "0", c->prefix, mine };
    redisReply *r;
    int ok;

    apr_snprintf(mine, sizeof(mine), "%d", SSE_CLUSTER_FORMAT);
    if (!(r = cluster_cmd(c, 5, argv, NULL))) {
        return -1;
    }
    ok = r->type == REDIS_REPLY_STRING && !strcmp(r->str, mine);
    if (!ok) {
        cluster_other_keys(c, r->type == REDIS_REPLY_STRING ? r->str : "?");
    }
    else {
        c->other_keys = 0;
    }
    freeReplyObject(r);
    return ok;
}

/* Drop both connections; try again at retry_at. */
static void cluster_drop(sse_cluster_t *c, apr_time_t retry_at)
{
    if (c->cmd) {
        redisFree(c->cmd);
    }
    if (c->sub) {
        redisFree(c->sub);
    }
    c->cmd = c->sub = NULL;
    c->retry_at = retry_at;
}

/* AUTH on the new connection to sentinel i: 1, or 0 (refused: said once
 * until one takes it). */
static int sentinel_auth(sse_cluster_t *c, int i)
{
    redisReply *r = redisCommand(c->sent, "AUTH %s", c->sent_password);
    int ok = r && r->type == REDIS_REPLY_STATUS;

    if (!ok && !c->sent_refused) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s,
                     "SSE00436: the sentinel at %s:%d refused the password "
                     "from SSEClusterSentinelPasswordFile: %s",
                     c->sent_host[i], c->sent_port[i],
                     r && r->type == REDIS_REPLY_ERROR ? r->str : "no answer");
    }
    c->sent_refused = !ok;
    if (r) {
        freeReplyObject(r);
    }
    return ok;
}

/* Ask the sentinels in turn, from the one that answered last, where the
 * master is: 0 and host (256 bytes) and *port, or -1 (none answered:
 * said once until one does).  The connection to the sentinel that
 * answered is kept for the next question. */
static int sentinel_master(sse_cluster_t *c, char *host, int *port)
{
    struct timeval tv = { 0, 500000 };
    int k;

    for (k = 0; k < c->nsent; k++) {
        int i = (c->sent_at + k) % c->nsent;
        redisReply *r;
        if (i != c->sent_at && c->sent) {
            redisFree(c->sent);
            c->sent = NULL;
        }
        if (!c->sent) {
            c->sent = redisConnectWithTimeout(c->sent_host[i],
                                              c->sent_port[i], tv);
            if (!c->sent || c->sent->err) {
                if (c->sent) {
                    redisFree(c->sent);
                }
                c->sent = NULL;
                continue;
            }
            redisSetTimeout(c->sent, tv);
            if (c->sent_password && !sentinel_auth(c, i)) {
                redisFree(c->sent);
                c->sent = NULL;
                continue;
            }
        }
        c->sent_at = i;
        r = redisCommand(c->sent, "SENTINEL get-master-addr-by-name %s",
                         c->master);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2
            && r->element[0]->type == REDIS_REPLY_STRING
            && r->element[1]->type == REDIS_REPLY_STRING
            && r->element[0]->len < 256) {
            memcpy(host, r->element[0]->str, r->element[0]->len + 1);
            *port = atoi(r->element[1]->str);
            freeReplyObject(r);
            c->sent_silent = 0;
            return 0;
        }
        /* no answer, an error or a nil (this sentinel does not know the
         * master): the next one */
        if (r) {
            freeReplyObject(r);
        }
        redisFree(c->sent);
        c->sent = NULL;
    }
    if (!c->sent_silent) {
        c->sent_silent = 1;
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s,
                     "SSE00432: none of the %d sentinels of SSECluster "
                     "answered where master '%s' is; %s", c->nsent,
                     c->master, sse_cluster_up(c)
                     ? "staying on the one connected to"
                     : "publishing answers 503 until one does");
    }
    return -1;
}

/* Is what cmd is connected to a master (ROLE)?  1 yes, 0 no (said). */
static int sentinel_role_master(sse_cluster_t *c)
{
    redisReply *r = redisCommand(c->cmd, "ROLE");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0
             && r->element[0]->type == REDIS_REPLY_STRING
             && !strcmp(r->element[0]->str, "master");

    if (!ok) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, c->s,
                     "SSE00431: Redis at %s:%d, named master '%s' by the "
                     "sentinel at %s:%d, is not a master (its role: %s): "
                     "left, asking again in a second", c->host, c->port,
                     c->master, c->sent_host[c->sent_at],
                     c->sent_port[c->sent_at],
                     r && r->type == REDIS_REPLY_ARRAY && r->elements > 0
                     && r->element[0]->type == REDIS_REPLY_STRING
                     ? r->element[0]->str : "no answer");
    }
    if (r) {
        freeReplyObject(r);
    }
    return ok;
}

/* With Sentinel: where is the master now?  Connected: when it moved, the
 * connections are dropped (said) and 1 returned, to connect at once.
 * Down: host and port become the master's; 1 when it is a new address
 * (connect now, whatever the backoff), 0 the same, -1 no sentinel. */
static int sentinel_follow(sse_cluster_t *c)
{
    char host[256];
    int port;

    if (sentinel_master(c, host, &port) < 0) {
        return -1;
    }
    if (!strcmp(host, c->host) && port == c->port) {
        return 0;
    }
    if (sse_cluster_up(c)) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, c->s,
                     "SSE00433: the sentinel at %s:%d says master '%s' moved "
                     "from %s:%d to %s:%d: following (publishing answers 503 "
                     "until connected there)", c->sent_host[c->sent_at],
                     c->sent_port[c->sent_at], c->master, c->host, c->port,
                     host, port);
        cluster_drop(c, 0);
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, c->s,
                 "SSE00430: the sentinel at %s:%d says master '%s' is at "
                 "%s:%d", c->sent_host[c->sent_at], c->sent_port[c->sent_at],
                 c->master, host, port);
    apr_cpystrn(c->host, host, sizeof(c->host));
    c->port = port;
    return 1;
}

int sse_cluster_tick(sse_cluster_t *c, uint64_t last_seq)
{
    redisReply *r;
    char last[24];
    const char *bump[8] = { "EVAL", bump_lua, "0", c->prefix, last, SEQ_JUMP,
                            "0", c->wait_n ? "1" : "0" };
    int switched = 0;

    if (c->nsent) {
        /* Sentinel: asked once a tick, connected or not; a new address
         * is tried at once, the same one after the backoff */
        int moved = sentinel_follow(c);
        if (sse_cluster_up(c) || moved < 0
            || (!moved && apr_time_now() < c->retry_at)) {
            return 0;
        }
    }
    else if (sse_cluster_up(c) || apr_time_now() < c->retry_at) {
        return 0;
    }
    c->cmd = cluster_connect(c);
    if (c->cmd && c->nsent && !sentinel_role_master(c)) {
        cluster_drop(c, apr_time_now() + apr_time_from_sec(1));
        return 0;
    }
    c->sub = c->cmd ? cluster_connect(c) : NULL;
    /* one reply per channel: the first read here, the others skipped by
     * sse_cluster_readable (they are not messages) */
    r = c->sub ? redisCommand(c->sub, "SUBSCRIBE %s:ev %s:ctl %s:ctl:%s",
                              c->prefix, c->prefix, c->prefix, c->sid) : NULL;
    if (!r) {
        cluster_drop(c, apr_time_now() + c->backoff);
        if (c->backoff < apr_time_from_sec(2)) {
            c->backoff *= 2;
        }
        return 0;
    }
    freeReplyObject(r);
    if (cluster_format(c) <= 0) {
        /* another format (said), or Redis failed: try again later */
        cluster_drop(c, apr_time_now() + apr_time_from_sec(2));
        return 0;
    }
    apr_snprintf(last, sizeof(last), "%" APR_UINT64_T_FMT, last_seq);
    if (c->was_host[0] && (strcmp(c->was_host, c->host)
                           || c->was_port != c->port)) {
        bump[6] = "1";          /* a failover: another master */
        switched = 1;
    }
    if ((r = cluster_cmd(c, 8, bump, NULL)) != NULL) {
        if (r->type == REDIS_REPLY_INTEGER && (uint64_t)r->integer < last_seq) {
            if (switched && c->wait_n) {
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, c->s,
                             "SSE00407: the new Redis master's sequence is at "
                             "%" APR_INT64_T_FMT ", this server had seen %s: "
                             "the events between were not confirmed by a "
                             "replica (SSEClusterWait), so none was answered "
                             "200; resumes from their ids report lost history",
                             (apr_int64_t)r->integer, last);
            }
            else {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, c->s,
                             "SSE00405: Redis lost its data (its sequence was at "
                             "%" APR_INT64_T_FMT ", this server had seen %s); "
                             "resumes from before now report lost history",
                             (apr_int64_t)r->integer, last);
            }
        }
        freeReplyObject(r);
    }
    if (!c->cmd) {
        return 0;
    }
    c->backoff = apr_time_from_msec(200);
    apr_cpystrn(c->was_host, c->host, sizeof(c->was_host));
    c->was_port = c->port;
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, c->s,
                 "SSE00404: connected to Redis at %s:%d (server id %s)",
                 c->host, c->port, c->sid);
    return 1;
}

void sse_cluster_set_wait(sse_cluster_t *c, int n, int ms)
{
    c->wait_n = n;
    c->wait_ms = ms;
}

/* SSEClusterWait: did wait_n replicas get what this connection wrote,
 * within wait_ms?  1 yes; 0 no (said when it starts failing). */
static int cluster_confirmed(sse_cluster_t *c)
{
    char n[16], ms[16];
    const char *argv[3] = { "WAIT", n, ms };
    redisReply *r;
    long long got = -1;

    apr_snprintf(n, sizeof(n), "%d", c->wait_n);
    apr_snprintf(ms, sizeof(ms), "%d", c->wait_ms);
    if ((r = cluster_cmd(c, 3, argv, NULL)) != NULL) {
        got = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        freeReplyObject(r);
    }
    if (got >= c->wait_n) {
        if (c->wait_failed) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, c->s,
                         "SSE00435: %d Redis replica(s) confirm publishes "
                         "again (SSEClusterWait)", c->wait_n);
        }
        c->wait_failed = 0;
        return 1;
    }
    if (!c->wait_failed) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s,
                     "SSE00434: a publish reached %" APR_INT64_T_FMT " of "
                     "the %d Redis replica(s) SSEClusterWait asks for "
                     "within %d ms: answered 503 (it may still reach "
                     "streams), and the next ones are refused until "
                     "replicas confirm again",
                     (apr_int64_t)(got < 0 ? 0 : got), c->wait_n, c->wait_ms);
    }
    c->wait_failed = apr_time_now();
    return 0;
}

int sse_cluster_publish(sse_cluster_t *c, const char *chan, const char *id,
                        const char *body, size_t len, unsigned keep,
                        unsigned age, uint64_t *seq, long *others)
{
    char keepstr[16], nowstr[24], agestr[24], fmt[16], live[24];
    const char *argv[13] = { "EVALSHA", c->publish_sha, "0", c->prefix, chan,
                             id, body, keepstr, nowstr, agestr, fmt, live,
                             c->sid };
    size_t lens[13];
    int was_up;
    apr_int64_t now = (apr_int64_t)apr_time_as_msec(apr_time_now());
    redisReply *r;
    int i;

    if (c->wait_n && c->wait_failed
        && apr_time_now() - c->wait_failed < apr_time_from_sec(1)) {
        /* replicas failing: refused, not written */
        c->why = "not published: the Redis replicas SSEClusterWait asks for "
                 "did not confirm the last publish (SSE00434)";
        return -1;
    }
    apr_snprintf(fmt, sizeof(fmt), "%d", SSE_CLUSTER_FORMAT);
    apr_snprintf(keepstr, sizeof(keepstr), "%u", keep);
    apr_snprintf(nowstr, sizeof(nowstr), "%" APR_INT64_T_FMT, now);
    apr_snprintf(live, sizeof(live), "%" APR_INT64_T_FMT, now - SERVER_LIVE_MS);
    apr_snprintf(agestr, sizeof(agestr), "%" APR_INT64_T_FMT,
                 (apr_int64_t)age * 1000);
    for (i = 0; i < 13; i++) {
        lens[i] = strlen(argv[i]);
    }
    lens[6] = len;
    c->noscript = 0;
    was_up = c->cmd != NULL;
    r = cluster_cmd(c, 13, argv, lens);
    if (!r && c->noscript) {
        /* Redis lacks the script (restarted, a new master, SCRIPT FLUSH):
         * the whole of it, which also caches it there */
        argv[0] = "EVAL";
        argv[1] = publish_lua;
        lens[0] = 4;
        lens[1] = sizeof(publish_lua) - 1;
        r = cluster_cmd(c, 13, argv, lens);
    }
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2
        || r->element[0]->type != REDIS_REPLY_INTEGER
        || r->element[1]->type != REDIS_REPLY_INTEGER) {
        if (r) {
            freeReplyObject(r);
        }
        /* down before it was sent; down after (no answer: the script
         * may have run); or an error answer (nothing written) */
        c->why = !was_up ? "not published: Redis is not reachable (see the "
                           "error log)"
                 : !c->cmd ? "Redis did not answer (see the error log): it may "
                             "have been published"
                 : "not published: Redis refused it (see the error log)";
        return -1;
    }
    *seq = (uint64_t)r->element[0]->integer;
    if (others) {
        *others = (long)r->element[1]->integer;
    }
    freeReplyObject(r);
    if (c->wait_n && !cluster_confirmed(c)) {
        c->why = "written but not confirmed by the Redis replicas "
                 "SSEClusterWait asks for (SSE00434): it may still be "
                 "delivered";
        return -1;
    }
    return 0;
}

const char *sse_cluster_why(const sse_cluster_t *c)
{
    return c->why ? c->why : "not published: Redis is not reachable";
}

/* A pub/sub message of format fmt on P:chan: 1 when it is this build's;
 * else 0, said once per format met (*seen, the last one said) as "what
 * ... was not done". */
static int msg_format_ok(sse_cluster_t *c, unsigned long fmt,
                         unsigned long *seen, const char *what,
                         const char *chan, const char *done)
{
    if (fmt == SSE_CLUSTER_FORMAT) {
        return 1;
    }
    if (fmt != *seen) {
        *seen = fmt;
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, c->s,
                     "%s of format %lu on %s:%s (this build speaks format %d) "
                     "was not %s: a newer server shares this "
                     "SSEClusterPrefix; logged once per format", what, fmt,
                     c->prefix, chan, SSE_CLUSTER_FORMAT, done);
    }
    return 0;
}

/* One control message "vFORMAT OP REQ SID\nbody" (P:ctl, P:ctl:SID) to
 * fn; this server's own questions (on P:ctl) are skipped. */
static void cluster_ctl(sse_cluster_t *c, const redisReply *m,
                        sse_cluster_ctl_fn *fn, void *ctx)
{
    char head[128], op[16], from[40];
    const char *nl = memchr(m->str, '\n', m->len);
    unsigned long fmt;
    unsigned long long req;
    size_t hl;

    if (!nl || (hl = (size_t)(nl - m->str)) >= sizeof(head) || m->str[0] != 'v') {
        return;
    }
    memcpy(head, m->str, hl);
    head[hl] = '\0';
    fmt = strtoul(head + 1, NULL, 10);
    if (!msg_format_ok(c, fmt, &c->other_ctl,
                       "SSE00420: a control message", "ctl", "taken")) {
        return;
    }
    if (sscanf(head, "v%*u %15s %llu %39s", op, &req, from) != 3
        || !strcmp(from, c->sid)) {
        return;
    }
    fn(ctx, op, (uint64_t)req, from, nl + 1, m->len - hl - 1);
}

/* One pub/sub message "seq vFORMAT\nid\nchan\nbody" to fn (" vFORMAT"
 * absent: format 1, from a build before formats were numbered), or a
 * control message to ctl. */
static void cluster_message(sse_cluster_t *c, redisReply *r,
                            sse_cluster_event_fn *fn,
                            sse_cluster_ctl_fn *ctl, void *ctx)
{
    char idbuf[1100], chbuf[SSE_KEY_MAX + 1];
    const char *p, *end, *nl1, *nl2, *nl3;
    char *after;
    unsigned long long seq;
    unsigned long fmt = 1;
    redisReply *m;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3
        || r->element[0]->type != REDIS_REPLY_STRING
        || strcmp(r->element[0]->str, "message")
        || r->element[2]->type != REDIS_REPLY_STRING) {
        return;
    }
    m = r->element[2];
    if (r->element[1]->type == REDIS_REPLY_STRING
        && !strncmp(r->element[1]->str, c->prefix, strlen(c->prefix))
        && !strncmp(r->element[1]->str + strlen(c->prefix), ":ctl", 4)) {
        cluster_ctl(c, m, ctl, ctx);
        return;
    }
    p = m->str;
    end = m->str + m->len;
    if (!(nl1 = memchr(p, '\n', (size_t)(end - p)))
        || !(nl2 = memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)))
        || !(nl3 = memchr(nl2 + 1, '\n', (size_t)(end - nl2 - 1)))
        || (size_t)(nl2 - nl1 - 1) >= sizeof(idbuf)
        || (size_t)(nl3 - nl2 - 1) >= sizeof(chbuf)) {
        return;
    }
    seq = strtoull(p, &after, 10);
    if (after + 2 < nl1 && after[0] == ' ' && after[1] == 'v') {
        fmt = strtoul(after + 2, NULL, 10);
    }
    if (!msg_format_ok(c, fmt, &c->other_msgs, "SSE00411: a message", "ev",
                       "delivered")) {
        return;
    }
    memcpy(idbuf, nl1 + 1, (size_t)(nl2 - nl1 - 1));
    idbuf[nl2 - nl1 - 1] = '\0';
    memcpy(chbuf, nl2 + 1, (size_t)(nl3 - nl2 - 1));
    chbuf[nl3 - nl2 - 1] = '\0';
    fn(ctx, seq, idbuf, chbuf, nl3 + 1,
       (size_t)(end - nl3 - 1));
}

void sse_cluster_readable(sse_cluster_t *c, sse_cluster_event_fn *fn,
                          sse_cluster_ctl_fn *ctl, void *ctx, int do_read)
{
    void *reply;

    if (!c->sub) {
        return;
    }
    if (do_read && redisBufferRead(c->sub) != REDIS_OK) {
        cluster_down(c, "subscription closed");
        return;
    }
    while (c->sub && redisGetReplyFromReader(c->sub, &reply) == REDIS_OK
           && reply) {
        cluster_message(c, reply, fn, ctl, ctx);
        freeReplyObject(reply);
    }
}

int sse_cluster_lookup(sse_cluster_t *c, const char *id,
                       const char *const *chans, int n, uint64_t *seq)
{
    char key[CLUSTER_KEY_MAX];
    const char *argv[3] = { "HGET", key, id };
    const char *p;
    int i, found = 0;

    for (i = 0; i < n; i++) {
        redisReply *r;
        apr_snprintf(key, sizeof(key), "%s:ids:%s", c->prefix, chans[i]);
        if (!(r = cluster_cmd(c, 3, argv, NULL))) {
            return -1;
        }
        if (r->type == REDIS_REPLY_STRING) {
            uint64_t v = strtoull(r->str, NULL, 10);
            if (!found || v > *seq) {
                *seq = v;
                found = 1;
            }
        }
        freeReplyObject(r);
    }
    if (found) {
        return 1;
    }
    for (p = id; *p >= '0' && *p <= '9'; p++) {
    }
    if (p == id || *p || p - id > 19) {
        return 0;
    }
    *seq = strtoull(id, NULL, 10);
    return 1;
}

/* The history entries of chan after seq, as an XRANGE reply (or NULL). */
static redisReply *cluster_range(sse_cluster_t *c, const char *chan,
                                 uint64_t after)
{
    char key[CLUSTER_KEY_MAX], start[32];
    const char *argv[4] = { "XRANGE", key, start, "+" };

    apr_snprintf(key, sizeof(key), "%s:h:%s", c->prefix, chan);
    apr_snprintf(start, sizeof(start), "%" APR_UINT64_T_FMT "-0", after + 1);
    return cluster_cmd(c, 4, argv, NULL);
}

/* Merge the XRANGE replies of n channels by seq, calling emit for each. */
typedef int emit_fn(void *ctx, uint64_t seq, redisReply *fields,
                    const char *chan);

static int cluster_merge(redisReply **rr, const char *const *chans, int n,
                         emit_fn *emit, void *ctx)
{
    size_t *pos = calloc((size_t)n + 1, sizeof(*pos));
    int i, rc = 0;

    if (!pos) {
        return -1;
    }
    for (;;) {
        int best = -1;
        uint64_t bseq = 0;
        for (i = 0; i < n; i++) {
            if (rr[i] && pos[i] < rr[i]->elements) {
                uint64_t s = strtoull(rr[i]->element[pos[i]]->element[0]->str,
                                      NULL, 10);
                if (best < 0 || s < bseq) {
                    best = i;
                    bseq = s;
                }
            }
        }
        if (best < 0) {
            break;
        }
        if ((rc = emit(ctx, bseq, rr[best]->element[pos[best]]->element[1],
                       chans[best])) != 0) {
            break;
        }
        pos[best]++;
    }
    free(pos);
    return rc;
}

/* Fields of an entry: i, the id, b, the body (in any order). */
static void entry_fields(redisReply *f, const char **id, const char **body,
                         size_t *blen)
{
    size_t k;

    *id = "";
    *body = "";
    *blen = 0;
    for (k = 0; k + 1 < f->elements; k += 2) {
        if (!strcmp(f->element[k]->str, "i")) {
            *id = f->element[k + 1]->str;
        }
        else if (!strcmp(f->element[k]->str, "b")) {
            *body = f->element[k + 1]->str;
            *blen = f->element[k + 1]->len;
        }
    }
}

typedef struct {
    sse_buf_t *out;
    uint64_t *max;
} replay_ctx_t;

static int emit_replay(void *vctx, uint64_t seq, redisReply *f,
                       const char *chan)
{
    replay_ctx_t *ctx = vctx;
    const char *id, *body;
    size_t blen;

    (void)chan;
    entry_fields(f, &id, &body, &blen);
    if (sse_buf_put(ctx->out, "id: ", 4) || sse_buf_put(ctx->out, id, strlen(id))
        || sse_buf_put(ctx->out, "\n", 1) || sse_buf_put(ctx->out, body, blen)) {
        return -1;
    }
    if (seq > *ctx->max) {
        *ctx->max = seq;
    }
    return 0;
}

typedef struct {
    sse_cluster_event_fn *fn;
    void *ctx;
} fill_ctx_t;

static int emit_fill(void *vctx, uint64_t seq, redisReply *f, const char *chan)
{
    fill_ctx_t *ctx = vctx;
    const char *id, *body;
    size_t blen;

    entry_fields(f, &id, &body, &blen);
    ctx->fn(ctx->ctx, seq, id, chan, body, blen);
    return 0;
}

/* XRANGE every channel after `after`, then merge through emit. */
static int cluster_walk(sse_cluster_t *c, const char *const *chans, int n,
                        uint64_t after, emit_fn *emit, void *ctx)
{
    redisReply **rr = calloc((size_t)n + 1, sizeof(*rr));
    int i, rc = 0;

    if (!rr) {
        return -1;
    }
    for (i = 0; i < n && !rc; i++) {
        rr[i] = cluster_range(c, chans[i], after);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, c->s,
                     "SSE00406: history of %s after %" APR_UINT64_T_FMT ": %ld",
                     chans[i], after, rr[i] && rr[i]->type == REDIS_REPLY_ARRAY
                     ? (long)rr[i]->elements : -1L);
        if (!rr[i]) {
            rc = -1;
        }
        else if (rr[i]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rr[i]);
            rr[i] = NULL;
        }
    }
    if (!rc) {
        rc = cluster_merge(rr, chans, n, emit, ctx);
    }
    for (i = 0; i < n; i++) {
        if (rr[i]) {
            freeReplyObject(rr[i]);
        }
    }
    free(rr);
    return rc;
}

int sse_cluster_replay(sse_cluster_t *c, const char *const *chans, int n,
                       uint64_t after, sse_buf_t *out, int *lost,
                       uint64_t *max)
{
    replay_ctx_t ctx = { out, max };
    char key[CLUSTER_KEY_MAX];
    const char *argv[2] = { "GET", key };
    int i;

    *lost = 0;
    *max = after;
    apr_snprintf(key, sizeof(key), "%s:floor", c->prefix);
    {
        redisReply *r = cluster_cmd(c, 2, argv, NULL);
        if (!r) {
            return -1;
        }
        if (r->type == REDIS_REPLY_STRING && strtoull(r->str, NULL, 10) > after) {
            *lost = 1;
        }
        freeReplyObject(r);
    }
    {
        /* the failovers' gaps that end past after: lost if one begins
         * before it (an id the new master never had) */
        char gkey[CLUSTER_KEY_MAX], min[32];
        const char *zr[4] = { "ZRANGEBYSCORE", gkey, min, "+inf" };
        redisReply *r;
        size_t k;
        apr_snprintf(gkey, sizeof(gkey), "%s:gaps", c->prefix);
        apr_snprintf(min, sizeof(min), "(%" APR_UINT64_T_FMT, after);
        if (!(r = cluster_cmd(c, 4, zr, NULL))) {
            return -1;
        }
        for (k = 0; r->type == REDIS_REPLY_ARRAY && k < r->elements; k++) {
            if (r->element[k]->type == REDIS_REPLY_STRING
                && strtoull(r->element[k]->str, NULL, 10) < after) {
                *lost = 1;
            }
        }
        freeReplyObject(r);
    }
    for (i = 0; i < n; i++) {
        redisReply *r;
        apr_snprintf(key, sizeof(key), "%s:gone:%s", c->prefix, chans[i]);
        if (!(r = cluster_cmd(c, 2, argv, NULL))) {
            return -1;
        }
        if (r->type == REDIS_REPLY_STRING && strtoull(r->str, NULL, 10) > after) {
            *lost = 1;
        }
        freeReplyObject(r);
    }
    return cluster_walk(c, chans, n, after, emit_replay, &ctx);
}

int sse_cluster_fill(sse_cluster_t *c, const char *const *chans, int n,
                     uint64_t after, sse_cluster_event_fn *fn, void *ctx)
{
    fill_ctx_t fc = { fn, ctx };

    return cluster_walk(c, chans, n, after, emit_fill, &fc);
}

int sse_cluster_put_counts(sse_cluster_t *c, const char *lines, size_t len)
{
    char key[256], zkey[256], now[32];
    apr_pool_t *p;
    char *txt, *f[2];
    apr_array_header_t *argv;
    redisReply *r;
    const char *del[2] = { "DEL", key };
    const char *exp[3] = { "EXPIRE", key, "3" };
    const char *zadd[4] = { "ZADD", zkey, now, c->sid };
    int ok, nf;

    apr_pool_create(&p, c->pool);
    txt = apr_pstrmemdup(p, lines, len);
    argv = apr_array_make(p, 16, sizeof(char *));
    apr_snprintf(key, sizeof(key), "%s:srv:%s", c->prefix, c->sid);
    apr_snprintf(zkey, sizeof(zkey), "%s:servers", c->prefix);
    apr_snprintf(now, sizeof(now), "%" APR_TIME_T_FMT, apr_time_now() / 1000);
    APR_ARRAY_PUSH(argv, const char *) = "HSET";
    APR_ARRAY_PUSH(argv, const char *) = key;
    while ((nf = sse_wire_line(&txt, '\n', '\t', f, 2)) > 0) {
        if (nf == 2) {
            APR_ARRAY_PUSH(argv, const char *) = f[0];
            APR_ARRAY_PUSH(argv, const char *) = f[1];
        }
    }
    ok = (r = cluster_cmd(c, 2, del, NULL)) != NULL;
    if (r) {
        freeReplyObject(r);
    }
    if (ok && argv->nelts > 2) {
        ok = (r = cluster_cmd(c, argv->nelts, (const char **)argv->elts,
                              NULL)) != NULL;
        if (r) {
            freeReplyObject(r);
        }
    }
    if (ok && (r = cluster_cmd(c, 3, exp, NULL)) != NULL) {
        freeReplyObject(r);
    }
    if (ok && (r = cluster_cmd(c, 4, zadd, NULL)) != NULL) {
        freeReplyObject(r);
    }
    apr_pool_destroy(p);
    return ok ? 0 : -1;
}

/* The other live servers (refreshed in the last 3 s): fn(c, sid, its
 * counts' key, ctx) for each, until one returns nonzero.  0, or -1 (Redis
 * down or fn's error). */
typedef int cluster_server_fn(sse_cluster_t *c, const char *sid,
                              const char *key, void *ctx);

static int cluster_each_server(sse_cluster_t *c, cluster_server_fn *fn,
                               void *ctx)
{
    char zkey[256], min[32], key[256];
    const char *zr[4] = { "ZRANGEBYSCORE", zkey, min, "+inf" };
    redisReply *ids;
    size_t i;
    int rc = 0;

    apr_snprintf(zkey, sizeof(zkey), "%s:servers", c->prefix);
    apr_snprintf(min, sizeof(min), "%" APR_TIME_T_FMT,
                 apr_time_now() / 1000 - SERVER_LIVE_MS);
    if (!(ids = cluster_cmd(c, 4, zr, NULL))) {
        return -1;
    }
    for (i = 0; ids->type == REDIS_REPLY_ARRAY && i < ids->elements && !rc; i++) {
        const char *sid = ids->element[i]->str;
        if (strcmp(sid, c->sid)) {
            apr_snprintf(key, sizeof(key), "%s:srv:%s", c->prefix, sid);
            rc = fn(c, sid, key, ctx);
        }
    }
    freeReplyObject(ids);
    return rc ? -1 : 0;
}

typedef struct {
    const char *chan;           /* one channel, or NULL: all */
    sse_buf_t *out;
} counts_ctx_t;

/* One "key\tvalue\n" line onto out; 0 or -1. */
static int put_pair(sse_buf_t *out, const char *k, size_t klen,
                    const char *v, size_t vlen)
{
    return sse_buf_put(out, k, klen) || sse_buf_put(out, "\t", 1)
           || sse_buf_put(out, v, vlen) || sse_buf_put(out, "\n", 1) ? -1 : 0;
}

/* sse_cluster_get_counts: one server's "chan\tcount\n" lines. */
static int counts_of(sse_cluster_t *c, const char *sid, const char *key,
                     void *ctx)
{
    counts_ctx_t *x = ctx;
    const char *argv[2] = { "HGETALL", key };
    redisReply *r;
    size_t k;
    int rc = 0;

    (void)sid;
    if (!(r = cluster_cmd(c, 2, argv, NULL))) {
        return -1;
    }
    for (k = 0; r->type == REDIS_REPLY_ARRAY && k + 1 < r->elements; k += 2) {
        rc |= put_pair(x->out, r->element[k]->str, r->element[k]->len,
                       r->element[k + 1]->str, r->element[k + 1]->len);
    }
    freeReplyObject(r);
    return rc;
}

int sse_cluster_get_counts(sse_cluster_t *c, sse_buf_t *out)
{
    counts_ctx_t x = { NULL, out };

    return cluster_each_server(c, counts_of, &x);
}

const char *sse_cluster_sid(const sse_cluster_t *c)
{
    return c->sid;
}

int sse_cluster_ctl_send(sse_cluster_t *c, const char *to, const char *op,
                         uint64_t req, const char *body, size_t len,
                         long *heard)
{
    char chan[256], head[128];
    const char *argv[3] = { "PUBLISH", chan, NULL };
    size_t lens[3];
    sse_buf_t msg = { 0 };
    redisReply *r;
    int hl, rc = -1;

    if (to) {
        apr_snprintf(chan, sizeof(chan), "%s:ctl:%s", c->prefix, to);
    }
    else {
        apr_snprintf(chan, sizeof(chan), "%s:ctl", c->prefix);
    }
    hl = apr_snprintf(head, sizeof(head), "v%d %s %" APR_UINT64_T_FMT " %s\n",
                      SSE_CLUSTER_FORMAT, op, req, c->sid);
    if (sse_buf_put(&msg, head, (size_t)hl) || sse_buf_put(&msg, body, len)) {
        sse_buf_free(&msg);
        return -1;
    }
    argv[2] = msg.data;
    lens[0] = 7;
    lens[1] = strlen(chan);
    lens[2] = msg.len;
    if ((r = cluster_cmd(c, 3, argv, lens)) != NULL) {
        if (r->type == REDIS_REPLY_INTEGER) {
            rc = 0;
            if (heard) {
                *heard = (long)r->integer;
            }
        }
        freeReplyObject(r);
    }
    sse_buf_free(&msg);
    return rc;
}

/* sse_cluster_servers: one server's "SID\tcount\n" on the channel. */
static int server_count(sse_cluster_t *c, const char *sid, const char *key,
                        void *ctx)
{
    counts_ctx_t *x = ctx;
    const char *hget[3] = { "HGET", key, x->chan };
    redisReply *r;
    int rc;

    if (!(r = cluster_cmd(c, 3, hget, NULL))) {
        return -1;
    }
    rc = r->type == REDIS_REPLY_STRING
         ? put_pair(x->out, sid, strlen(sid), r->str, r->len)
         : put_pair(x->out, sid, strlen(sid), "0", 1);
    freeReplyObject(r);
    return rc;
}

int sse_cluster_servers(sse_cluster_t *c, const char *chan, sse_buf_t *out)
{
    counts_ctx_t x = { chan, out };

    return cluster_each_server(c, server_count, &x);
}

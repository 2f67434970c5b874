/*
 * sse_store.h: the relay's event history kept on disk (LMDB), so that a
 * client resuming with Last-Event-ID still finds what it missed after
 * `apachectl stop`/start, a crash of the relay or a reboot.
 *
 * The store mirrors sse_hist.c: every event has its seq (one sequence for
 * all channels), its id, its time and its serialized bytes; each channel
 * keeps its newest events bounded by a count and an age.  At start-up the
 * relay loads the store into its in-memory history (sse_store_load) and
 * continues the sequence after the highest seq ever stored; every event it
 * keeps afterwards is written here as well (sse_store_put).
 *
 * Files: dir/data.mdb (the data, at most cap bytes plus LMDB's rounding to
 * pages) and dir/lock.mdb (LMDB's lock and reader table).  Trimming frees
 * pages and LMDB reuses them, so the file settles at the size the
 * channels' limits ask for, and never passes cap.
 *
 * Durability (sync):
 *   - A crash of the relay process (a signal, an abort, a kill -9) loses
 *     nothing committed, in any mode: LMDB writes each committed
 *     transaction into the file (into the kernel's page cache) before
 *     sse_store_put returns, and the kernel writes it out later even
 *     though the process is gone.  The same holds for `apachectl stop`.
 *   - SSE_STORE_SYNC_ALWAYS: each put is flushed to disk (fdatasync)
 *     before it returns.  A power failure or kernel crash loses nothing
 *     that sse_store_put reported done.  Costs a disk flush per event.
 *   - SSE_STORE_SYNC_EVERYSEC: puts are committed without a flush
 *     (MDB_NOSYNC) and sse_store_sync, which the relay calls once a
 *     second, flushes them.  A power failure or kernel crash loses the
 *     events of the last second or so (since the last sse_store_sync).
 *     Worse, LMDB does not order its writes without the flush: if the
 *     kernel wrote a transaction's meta page before its data pages and
 *     the power went in between, the file can be left inconsistent;
 *     sse_store_open then refuses it (or a check reads garbage, see
 *     below) and the history must be removed.  LMDB's documentation says
 *     as much for MDB_NOSYNC: integrity is kept only when the filesystem
 *     preserves write order.
 *   - SSE_STORE_SYNC_NO: MDB_NOSYNC and no flush of our own: the kernel
 *     writes when it likes (by default dirty pages are written within
 *     about 30 seconds).  A power failure loses about that much, with
 *     the same risk to the file as EVERYSEC.  sse_store_close does not
 *     flush either (the kernel still writes the file after a clean stop).
 *
 * Damage: LMDB keeps no checksums and trusts its pages; a damaged page
 * may make it read garbage, crash or abort, when reading or later when
 * writing.  So sse_store_open never lets the relay use a file as it
 * finds it: a child process reads every event (keys rising, lengths, a
 * CRC-32 of each record and of last_seq) and writes them into a new file,
 * which replaces the old one (dir/copy.tmp while it is made).  A crash of
 * the child, a record that does not read back whole, a file of another
 * LMDB or store format, a bad header or a truncated file make the file
 * "damaged": it is renamed data.mdb.damaged-<time> and the store starts
 * empty (strict: refused, left as it is).  After that the relay writes
 * only to pages LMDB itself made; damage done to the file while it runs
 * (a disk's) may still crash it, and the relay started again reads the
 * file afresh.  Cost: the open reads and writes the whole file once.
 *
 * dir/owner.lock is flock()ed while the store is open: a second process
 * (another httpd with the same SSEHistoryPath) is refused.
 *
 * Not thread-safe: owned and called by the relay's single thread, in the
 * relay process (open it after the fork, never before).
 */
#ifndef SSE_STORE_H
#define SSE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "apr_time.h"

typedef struct sse_store_t sse_store_t;

enum { SSE_STORE_SYNC_NO, SSE_STORE_SYNC_EVERYSEC, SSE_STORE_SYNC_ALWAYS };

/* Open or create the store in directory dir (which must exist; the caller
 * creates it 0700), its data file capped at cap bytes (LMDB's map size;
 * a store already bigger than cap keeps its size).  The store, with *err
 * NULL, or with *err a one-line warning to log: a damaged file was moved
 * aside ("history store /x/data.mdb is damaged (...): moved to
 * /x/data.mdb.damaged-1764806400; the history starts empty"), or could
 * not be copied (the disk is full, say) and is used as it is.  NULL with
 * *err a one-line reason naming the path: the directory cannot be used,
 * another process holds the store, or (strict) the file is damaged ("...:
 * remove /x/data.mdb to start with an empty history").  *err is valid
 * until the next sse_store_open. */
sse_store_t *sse_store_open(const char *dir, size_t cap, int sync,
                            int strict, const char **err);

/* Read the store in dir as sse_store_open would (in a child process),
 * without writing anything, not even LMDB's lock file: for a check before
 * start-up by another user than the store's.  0 (also when there is no
 * store yet), or -1 with *err as for a strict sse_store_open. */
int sse_store_check(const char *dir, size_t cap, const char **err);
void sse_store_close(sse_store_t *st);

/* Keep an event: channel key chan, its seq (greater than any seq stored
 * before), id, time t, its serialized bytes; then trim chan to its newest
 * max_count events no older than max_age (measured from t; 0 age: no age
 * limit; 0 count: keep none, the event is not written), and remember seq
 * as the highest ever given; all in ONE transaction.  Returns 0; -1 when
 * the store is full (MDB_MAP_FULL even after trimming chan: the event was
 * not written, the caller answers 503; the trimming of chan may have been
 * committed on its own); -2 on another error (*err set, valid until the
 * next call on st). */
int sse_store_put(sse_store_t *st, const char *chan, uint64_t seq,
                  const char *id, apr_time_t t, const char *bytes, size_t len,
                  unsigned max_count, apr_interval_time_t max_age,
                  const char **err);

/* Called by sse_store_load for each held event; chan and id are
 * NUL-terminated, bytes (len of them) are valid during the call only.
 * Return 0 to go on; anything else stops the load, which returns it. */
typedef int sse_store_fn(void *ctx, const char *chan, uint64_t seq,
                         const char *id, apr_time_t t, const char *bytes,
                         size_t len);

/* Called by sse_store_load for each channel that dropped events: the
 * highest seq it dropped (a resume from before it lost something). */
typedef void sse_store_gone_fn(void *ctx, const char *chan, uint64_t gone);

/* Call fn for every held event in seq order (to rebuild the in-memory
 * history at start-up), then gone_fn (if not NULL) for every channel that
 * dropped events, and give the highest seq ever stored (0: none) so ids
 * keep rising across stops.  Returns 0, fn's non-zero return, or -1 with
 * *err set (a damaged record). */
int sse_store_load(sse_store_t *st, sse_store_fn *fn,
                   sse_store_gone_fn *gone_fn, void *ctx,
                   uint64_t *last_seq, const char **err);

/* Say that chan (which holds events) dropped everything up to seq gone,
 * as the history being handed over knew: 0, -1 when chan holds nothing,
 * -2 on an error (*err). */
int sse_store_set_gone(sse_store_t *st, const char *chan, uint64_t gone,
                       const char **err);

/* Flush committed puts to disk; for SSE_STORE_SYNC_EVERYSEC the relay
 * calls it once a second.  0 or -1. */
int sse_store_sync(sse_store_t *st);

/* Bytes the data file uses (its highest page in use: the file's size,
 * free pages waiting for reuse included) and events held. */
void sse_store_stats(sse_store_t *st, size_t *bytes, size_t *events);

#endif

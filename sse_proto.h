/*
 * sse_proto.h: the relay protocol's frames, shared by the relay daemon,
 * each child's broker and the requesters.  A frame is a fixed header
 * (type, seq, payload length; native byte order, both ends are the same
 * host) followed by a payload of length-prefixed, NUL-terminated strings
 * and 32-bit integers (written and read with sse_buf.h).  Here: the ops,
 * the header, the EVENT frame and the runs a broker reads of them, the
 * clock requests are stamped with.  Every other op is put and got in
 * sse_wire.h; socket I/O is sse_sock.h.  No httpd, no system call but the
 * clock: pure code, testable alone.
 */
#ifndef SSE_PROTO_H
#define SSE_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sse_buf.h"

#define SSE_PROTO_MAX_FRAME SSE_BUF_MAX_STR

/* The frames' format: every frame carries it (the high 16 bits of its
 * header's type word, the op in the low 16), and a frame of another
 * format is refused, never read (sse_frame_peek answers -2).  Raise it
 * with any change to the frames below that a peer of the previous format
 * would misread (a new op that such a peer would only take for no answer,
 * as REFUSED, needs none); a relay kept running across a
 * graceful restart is replaced when the new module's differs, and an
 * old child or an old sse-publish that meets the new relay is told off in
 * one log line.  Frames before formats were numbered carry 0 there. */
#define SSE_FRAME_FORMAT 8u
#define SSE_FRAME_OP_MASK 0xffffu

/* Frame types.  Requests travel publisher -> relay -> every broker; each
 * broker answers with one REPLY (in request order); the relay gathers them
 * and answers the publisher with one RESULT.  A publish is the exception:
 * the relay answers it from its census (the COUNT frames every broker sends
 * before a new stream's first byte) and sends the EVENT, which owes no
 * reply, only to the brokers that count its channel. */
/* A request's header seq (PUBLISH, LIST, CONNS, CLOSE, CHECK, STATS) is
 * the requester's sse_clock_ms() when it sent it; its RESULT echoes it.
 * The relay refuses a request that waited too long to be answered before
 * the requester gives up (see sse_relayd.c). */
/* A PUBLISH from a publisher: channel, id ("" = assign one), event,
 * retry, data, then u32 history count and u32 history age in seconds, and
 * a hub update's tail ("" = none; sse_update.h). */
enum {
    SSE_OP_HELLO = 1,   /* broker -> relay: "I am a broker" (u32 pid)       */
    SSE_OP_PUBLISH,     /* publisher -> relay: channel id event retry data
                           (the brokers get it as an EVENT)                 */
    SSE_OP_LIST,        /* channels with their subscriber counts (answered
                           by the relay from its census)                    */
    SSE_OP_CONNS,       /* connections on one channel                       */
    SSE_OP_CLOSE,       /* close every stream on one channel                */
    SSE_OP_REPLY,       /* broker -> relay: one text answer                 */
    SSE_OP_RESULT,      /* relay -> publisher: id, u32 n, n text answers    */
    SSE_OP_REPLAY,      /* broker -> relay, seq = the broker's token:
                           last id, u32 n, n channels                        */
    SSE_OP_REPLAYED,    /* relay -> broker, same seq: u32 lost, events       */
    SSE_OP_CHECK,       /* publisher -> relay: last id, u32 n, n channels;
                           RESULT id is "1" when history was lost, else "0"  */
    SSE_OP_STATS,       /* publisher -> relay -> brokers: counters; each
                           broker answers one "key value" line per counter,
                           the RESULT id holds the relay's own lines        */
    SSE_OP_COUNT,       /* broker -> relay: u32 n, n x (channel, u32 delta
                           as a signed 32-bit number); no answer            */
    SSE_OP_EVENT,       /* relay -> broker: channel, serialized event, u32
                           seq high, u32 seq low; no answer                 */
    SSE_OP_SYNC,        /* relay -> broker: u32 mark high, u32 mark low;
                           answered by SYNCED once every frame before it
                           has been handled (flow control)                  */
    SSE_OP_SYNCED,      /* broker -> relay: the SYNC's mark, echoed         */
    SSE_OP_CATCHUP,     /* broker -> relay, seq = the broker's token: u64
                           since (sse_clock_us), u32 n, n channels: the events of a stream that began
                           while the broker was off this relay; answered
                           by REPLAYED, as a REPLAY                          */
    SSE_OP_AFTER,       /* broker -> relay, seq = the broker's token: u64
                           seq, u32 n, n channels: the events after that
                           seq (the last the broker had from the relay
                           before this one: what other servers published
                           while no relay listened); answered by REPLAYED */
    SSE_OP_REFUSED      /* relay -> publisher, the PUBLISH's seq: why (one
                           string, saying whether it was written); the
                           publisher answers 503                             */
};

typedef struct {
    uint32_t type;      /* the op; on the wire | SSE_FRAME_FORMAT << 16 */
    uint32_t seq;
    uint32_t len;       /* payload bytes after the header */
} sse_frame_hdr_t;

/* Start a frame: returns the offset to give sse_frame_end, or -1. */
long sse_frame_begin(sse_buf_t *b, uint32_t type, uint32_t seq);
/* Finish the frame started at off by filling in its payload length. */
void sse_frame_end(sse_buf_t *b, long off);
/* Stamp the request frame at the start of req with the time of sending
 * (header seq = sse_clock_ms()): the relay refuses a request that waited
 * too long for it to be answered before its requester gives up. */
void sse_frame_stamp(sse_buf_t *req);

/* Read a frame header from in (sizeof(*h) bytes there): 0 with h->type
 * the op; -1 when impossible (oversized frame); -2 when the frame is of
 * another format, *h then as sent (its format: sse_frame_format(h)). */
int sse_frame_hdr_read(const char *in, sse_frame_hdr_t *h);
#define sse_frame_format(h) ((h)->type >> 16)

/* Look for a whole frame at the front of in[0..len).  Returns 1 and fills
 * *h and *payload (pointing into in) when one is there, 0 when more bytes
 * are needed, -1 or -2 as sse_frame_hdr_read. */
int sse_frame_peek(const char *in, size_t len, sse_frame_hdr_t *h,
                   const char **payload);

/* EVENT frames.  Append one (frame seq fseq) to b; 0, or -1 when out of
 * memory (b unchanged: no half frame). */
int sse_event_frame_put(sse_buf_t *b, uint32_t fseq, const char *chan,
                        size_t clen, const char *bytes, size_t len,
                        uint64_t seq);

/* A run: the EVENT frames that follow one another on one channel in what
 * a broker read at once, so each stream gets them in one write.  A SYNC
 * between two of them is part of the run (it asks about what came before
 * it: answered once the run is delivered, with the last one's mark).
 * Points into the bytes it was read from. */
#define SSE_RUN_MAX_EVENTS 64
#define SSE_RUN_MAX_BYTES  (256u * 1024u)

typedef struct {
    const char *name;
    size_t nlen;
    unsigned n;                 /* events, 1 .. SSE_RUN_MAX_EVENTS */
    struct {
        const char *bytes;
        size_t len;
        uint64_t seq;
    } ev[SSE_RUN_MAX_EVENTS];
    int has_sync;               /* a SYNC was inside the run */
    uint64_t sync_mark;         /* the last one's mark */
} sse_run_t;

/* Read the run that starts at in[0..len) with a whole EVENT frame: the
 * EVENT frames after it on the same channel (SYNCs between them included),
 * while whole and within SSE_RUN_MAX_EVENTS and SSE_RUN_MAX_BYTES.  A SYNC
 * after the last of them is not part of it.  Returns the bytes its frames
 * take, or -1 when one is malformed. */
long sse_run_read(const char *in, size_t len, sse_run_t *run);
/* The first of its events with a seq above after (run->n when none). */
unsigned sse_run_first_after(const sse_run_t *run, uint64_t after);
/* The bytes of its events from the k-th on; sse_run_copy writes them. */
size_t sse_run_len(const sse_run_t *run, unsigned k);
void sse_run_copy(const sse_run_t *run, unsigned k, char *dst);

/* CLOCK_MONOTONIC in milliseconds, low 32 bits: the same clock in every
 * process of the machine; compare two with (int32_t)(later - earlier). */
uint32_t sse_clock_ms(void);
/* The same clock in microseconds, whole (for what must be compared across
 * processes over hours: when a stream began, when an event went out). */
uint64_t sse_clock_us(void);

#endif

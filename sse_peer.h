/*
 * sse_peer.h: one end of a relay connection, buffered: the socket (watched
 * by an sse_loop), the bytes read but not yet handled and the bytes to
 * write.  The relay holds one per connection (brokers and requesters), each
 * child's broker one for its link to the relay: both sides read, split
 * frames and write through these few calls.  Owned by one thread.
 */
#ifndef SSE_PEER_H
#define SSE_PEER_H

#include <sys/types.h>

#include "sse_loop.h"
#include "sse_proto.h"

typedef struct {
    sse_io_t io;                /* io.fd: the socket, or -1 */
    sse_buf_t in;               /* read, not yet handled */
    sse_buf_t out;              /* to write */
    const char *lost;           /* why the link is to be dropped, found
                                   where it could not be at once, or NULL */
} sse_peer_t;

/* Append to in up to max bytes that are there already (no wait): n > 0,
 * 0 when the peer closed, -1 with errno (EAGAIN: nothing yet).  Bytes that
 * cannot be kept (no memory) set lost. */
ssize_t sse_peer_read(sse_peer_t *p, size_t max);

/* The whole frame at in[pos..], if any: 1 (h and payload filled, pointing
 * into in), 0 when more bytes are needed, -1 when it is impossible. */
int sse_peer_frame(const sse_peer_t *p, size_t pos, sse_frame_hdr_t *h,
                   const char **payload);

/* Write out without waiting; while some is left the loop also watches the
 * socket for SSE_IO_OUT (loop may be NULL when it is not watched).  0, or
 * -1 when the peer is gone. */
int sse_peer_flush(sse_peer_t *p, sse_loop_t *loop);

/* Write all of out, waiting up to the socket's send timeout (small
 * answers to a peer that always reads); 0, or -1 when the peer is gone or
 * too slow.  out is empty afterwards either way. */
int sse_peer_flush_wait(sse_peer_t *p);

/* Stop watching and close the socket; forget both buffers' bytes (their
 * memory is kept for the next connection).  sse_peer_free() frees it. */
void sse_peer_close(sse_peer_t *p, sse_loop_t *loop);
void sse_peer_free(sse_peer_t *p);

#endif

/*
 * sse_sock.h: socket I/O for relay frames, retrying on EINTR: connecting
 * to the relay's unix socket, and writes and reads with timeouts (the
 * requesters' calls and a broker's answers).
 */
#ifndef SSE_SOCK_H
#define SSE_SOCK_H

#include <stddef.h>
#include <sys/types.h>

/* Write all of buf, blocking (0, or -1: the peer is gone or the send
 * timeout passed). */
int sse_sock_write_all(int fd, const char *buf, size_t len);
/* Connect to the unix socket at path, with timeout_s seconds as the send and
 * receive timeouts; the descriptor, or -1 with errno. */
int sse_sock_connect_unix(const char *path, int timeout_s);
/* recv() what is there, waiting up to timeout_ms in poll() for it: n > 0,
 * 0 when the peer closed, or -1 with errno (ETIMEDOUT).  Not a blocking
 * recv(): a thread asleep in recv() on a unix socket is also woken each
 * time the peer reads what it sent (the kernel announces the freed space
 * to every sleeper), a thread asleep in poll() only for what it asked. */
ssize_t sse_sock_recv_wait(int fd, void *buf, size_t len, int timeout_ms);
/* Read exactly len bytes, each wait up to timeout_ms (sse_sock_recv_wait):
 * 0, or -1 with errno (0 when the peer closed first, ETIMEDOUT). */
int sse_sock_read_all(int fd, char *buf, size_t len, int timeout_ms);

#endif

/*
 * sse_sock.c: socket I/O for relay frames (see sse_sock.h).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "sse_sock.h"

int sse_sock_connect_unix(const char *path, int timeout_s)
{
    struct sockaddr_un sa;
    struct timeval tv = { timeout_s, 0 };
    int fd;

    if (!path || strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strcpy(sa.sun_path, path);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int sse_sock_write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t sse_sock_recv_wait(int fd, void *buf, size_t len, int timeout_ms)
{
    struct pollfd pfd;
    ssize_t n;

    pfd.fd = fd;
    pfd.events = POLLIN;
    for (;;) {
        int r = poll(&pfd, 1, timeout_ms);
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK
                       && errno != EINTR)) {
            return n;
        }
    }
}

int sse_sock_read_all(int fd, char *buf, size_t len, int timeout_ms)
{
    while (len) {
        ssize_t n = sse_sock_recv_wait(fd, buf, len, timeout_ms);
        if (n <= 0) {
            if (n == 0) {
                errno = 0;
            }
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

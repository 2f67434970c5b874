/* bench/wakeup.c: what waking another process costs on this machine.
 *
 * Two processes pass one byte back and forth over a unix socket pair, each
 * sleeping in read() until the other writes: every round trip is two
 * wake-ups.  Measured twice, with both processes pinned to the same CPU and
 * with them pinned to two different CPUs, and printed as key=value lines:
 *
 *   wake_same_wall_us   wall time per round trip, one CPU
 *   wake_same_cpu_us    CPU time of both processes per round trip, one CPU
 *   wake_other_wall_us  the same with the processes on two CPUs
 *   wake_other_cpu_us
 *
 * A publish or a new stream in mod_sse crosses threads and processes (worker,
 * relay, broker) where nginx's event loop stays in one process, so what a
 * wake-up costs here explains part of the difference in the benchmark.
 *
 *   wakeup [-n ROUNDS]     (default 20000)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double rusage_s(int who)
{
    struct rusage ru;

    getrusage(who, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
           + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int pin(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}

/* Pass a byte back and forth rounds times: parent on cpu_a, child on
 * cpu_b.  Prints the two figures under the name given; 0, or -1. */
static int trial(const char *name, int cpu_a, int cpu_b, long rounds)
{
    int sv[2], status;
    long i;
    char c = 'x';
    double t0, t1, self0, kids0;
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("wakeup: socketpair");
        return -1;
    }
    self0 = rusage_s(RUSAGE_SELF);
    kids0 = rusage_s(RUSAGE_CHILDREN);
    pid = fork();
    if (pid < 0) {
        perror("wakeup: fork");
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        if (pin(cpu_b) < 0) {
            _exit(2);
        }
        for (i = 0; i < rounds; i++) {
            if (read(sv[1], &c, 1) != 1 || write(sv[1], &c, 1) != 1) {
                _exit(1);
            }
        }
        _exit(0);
    }
    close(sv[1]);
    if (pin(cpu_a) < 0) {
        perror("wakeup: sched_setaffinity");
        return -1;
    }
    t0 = now_s();
    for (i = 0; i < rounds; i++) {
        if (write(sv[0], &c, 1) != 1 || read(sv[0], &c, 1) != 1) {
            fprintf(stderr, "wakeup: the other process stopped answering\n");
            return -1;
        }
    }
    t1 = now_s();
    close(sv[0]);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "wakeup: the other process failed\n");
        return -1;
    }
    printf("wake_%s_wall_us=%.2f\n", name, (t1 - t0) * 1e6 / (double)rounds);
    printf("wake_%s_cpu_us=%.2f\n", name,
           (rusage_s(RUSAGE_SELF) - self0 + rusage_s(RUSAGE_CHILDREN) - kids0)
           * 1e6 / (double)rounds);
    return 0;
}

int main(int argc, char **argv)
{
    long rounds = 20000;
    int opt;

    while ((opt = getopt(argc, argv, "n:")) != -1) {
        if (opt == 'n' && atol(optarg) > 0) {
            rounds = atol(optarg);
        }
        else {
            fprintf(stderr, "usage: wakeup [-n ROUNDS]\n");
            return 2;
        }
    }
    if (trial("same", 0, 0, rounds) < 0) {
        return 1;
    }
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1 && trial("other", 0, 1, rounds) < 0) {
        return 1;
    }
    return 0;
}

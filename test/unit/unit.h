/* unit.h: the smallest test harness that does the job, for mod_sse's pure C parts.
 *
 * CHECK* macros count passes and print each failure with its file and line (and, for
 * byte strings, both sides with non-printables as \xNN) but carry on, so one run shows
 * every failure. unit_report() prints the closing "N passed, M failed" line and gives
 * the exit status. Include it from exactly one .c file per test program.
 */
#ifndef SSE_UNIT_H
#define SSE_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

static inline int unit_check(int ok, const char *what, const char *file, int line)
{
    if (ok)
        unit_passed++;
    else {
        unit_failed++;
        fprintf(stderr, "%s:%d: FAIL: %s\n", file, line, what);
    }
    return ok;
}

static inline void unit_dump(const char *label, const char *s, size_t n)
{
    size_t i;

    fprintf(stderr, "    %s (%zu bytes): ", label, n);
    if (!s) {
        fprintf(stderr, "NULL\n");
        return;
    }
    fputc('"', stderr);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stderr);
        else if (c == '\r')
            fputs("\\r", stderr);
        else if (c < 0x20 || c > 0x7e || c == '\\' || c == '"')
            fprintf(stderr, "\\x%02X", c);
        else
            fputc(c, stderr);
    }
    fputs("\"\n", stderr);
}

static inline int unit_check_mem(const char *got, size_t glen, const char *want,
                                 size_t wlen, const char *what, const char *file, int line)
{
    int ok = (got == NULL && want == NULL)
          || (got && want && glen == wlen && memcmp(got, want, glen) == 0);

    if (!unit_check(ok, what, file, line)) {
        unit_dump("got ", got, glen);
        unit_dump("want", want, wlen);
    }
    return ok;
}

static inline int unit_check_str(const char *got, const char *want, const char *what,
                                 const char *file, int line)
{
    return unit_check_mem(got, got ? strlen(got) : 0, want, want ? strlen(want) : 0,
                          what, file, line);
}

/* A reason string (or NULL) must contain want; want NULL means no error expected. */
static inline int unit_check_err(const char *err, const char *want, const char *what,
                                 const char *file, int line)
{
    int ok = want ? (err && strstr(err, want)) : err == NULL;

    if (!unit_check(ok, what, file, line)) {
        fprintf(stderr, "    got  error: %s\n", err ? err : "(none)");
        fprintf(stderr, "    want error: %s\n", want ? want : "(none)");
    }
    return ok;
}

#define CHECK(cond) unit_check(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_MEM(got, glen, want, wlen) \
    unit_check_mem((got), (glen), (want), (wlen), #got " == " #want, __FILE__, __LINE__)
/* Compares with a string literal, counting embedded NULs. */
#define CHECK_LIT(got, glen, lit) \
    unit_check_mem((got), (glen), (lit), sizeof(lit) - 1, #got " == " #lit, __FILE__, __LINE__)
#define CHECK_STR(got, want) \
    unit_check_str((got), (want), #got " == " #want, __FILE__, __LINE__)
#define CHECK_ERR(err, want) \
    unit_check_err((err), (want), #err " ~ " #want, __FILE__, __LINE__)

static inline int unit_report(void)
{
    printf("%d passed, %d failed\n", unit_passed, unit_failed);
    return unit_failed ? 1 : 0;
}

#endif /* SSE_UNIT_H */

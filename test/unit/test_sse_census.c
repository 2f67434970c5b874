/* test_sse_census.c: the relay's per-broker stream counts (sse_census.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_general.h"
#include "unit.h"
#include "sse_census.h"

/* Channels counted and the sum of their counts, seen through
 * sse_census_each (the census keeps neither: the relay does not need them). */
static void census_sum_one(void *ctx, const char *name, size_t len, long n)
{
    long *acc = ctx;

    (void)name;
    (void)len;
    acc[0]++;
    acc[1] += n;
}

static long census_channels(sse_census_t *c)
{
    long acc[2] = { 0, 0 };

    sse_census_each(c, census_sum_one, acc);
    return acc[0];
}

static long census_total(sse_census_t *c)
{
    long acc[2] = { 0, 0 };

    sse_census_each(c, census_sum_one, acc);
    return acc[1];
}

#define GET(c, s) sse_census_get((c), (s), strlen(s))
#define ADD(c, s, d) sse_census_add((c), (s), strlen(s), (d))

static void test_counts(apr_pool_t *p)
{
    sse_census_t *c = sse_census_make(p);

    CHECK(GET(c, "news") == 0);
    CHECK(ADD(c, "news", 1) == 0);
    CHECK(ADD(c, "news", 1) == 0);
    CHECK(ADD(c, "sport", 3) == 0);
    CHECK(GET(c, "news") == 2);
    CHECK(GET(c, "sport") == 3);
    CHECK(census_channels(c) == 2);
    CHECK(census_total(c) == 5);
    /* names are compared by their bytes and length, not as prefixes */
    CHECK(GET(c, "new") == 0);
    CHECK(sse_census_get(c, "newsroom", 4) == 2);
    /* down to zero drops the channel */
    CHECK(ADD(c, "news", -2) == 0);
    CHECK(GET(c, "news") == 0);
    CHECK(census_channels(c) == 1);
    CHECK(census_total(c) == 3);
    /* more taken than there is: dropped, never negative */
    CHECK(ADD(c, "sport", -7) == 0);
    CHECK(GET(c, "sport") == 0);
    CHECK(census_total(c) == 0);
    CHECK(ADD(c, "ghost", -1) == 0);
    CHECK(GET(c, "ghost") == 0);
    CHECK(census_channels(c) == 0);
    /* a whole table at once (a broker reconnecting) */
    CHECK(ADD(c, "a", 10) == 0);
    CHECK(ADD(c, "b", 20) == 0);
    CHECK(census_total(c) == 30);
    sse_census_clear(c);
    CHECK(census_channels(c) == 0);
    CHECK(census_total(c) == 0);
    CHECK(GET(c, "a") == 0);
}

static void sum_each(void *ctx, const char *name, size_t len, long count)
{
    long *acc = ctx;

    acc[0] += count;
    acc[1] += (long)len;
    acc[2] += name[len] == '\0';
}

/* sse_census_each visits every channel once, with its count. */
static void test_each(apr_pool_t *p)
{
    sse_census_t *c = sse_census_make(p);
    long acc[3] = { 0, 0, 0 };

    CHECK(ADD(c, "a", 2) == 0);
    CHECK(ADD(c, "bb", 3) == 0);
    CHECK(ADD(c, "ccc", 4) == 0);
    CHECK(ADD(c, "bb", -3) == 0);
    sse_census_each(c, sum_each, acc);
    CHECK(acc[0] == 6);         /* 2 + 4 */
    CHECK(acc[1] == 4);         /* "a" and "ccc" */
    CHECK(acc[2] == 2);         /* names are NUL-terminated */
    sse_census_clear(c);
}

/* Many channels joining and leaving in a shuffled order end at zero, and
 * the counts in between match a plain array. */
static void test_churn(apr_pool_t *p)
{
    enum { N = 500 };
    long want[N] = { 0 };
    sse_census_t *c = sse_census_make(p);
    unsigned seed = 12345;
    char name[32];
    int i, bad = 0;
    long total = 0;

    for (i = 0; i < 20000; i++) {
        int k;
        long d;
        seed = seed * 1103515245u + 12345u;
        k = (int)((seed >> 8) % N);
        d = want[k] > 0 && (seed & 1) ? -1 : 1;
        snprintf(name, sizeof(name), "chan-%d", k);
        bad += ADD(c, name, d) != 0;
        want[k] += d;
        total += d;
    }
    for (i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "chan-%d", i);
        bad += GET(c, name) != want[i];
    }
    CHECK(bad == 0);
    CHECK(census_total(c) == total);
    for (i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "chan-%d", i);
        CHECK(ADD(c, name, -want[i]) == 0);
    }
    CHECK(census_channels(c) == 0);
    CHECK(census_total(c) == 0);
    sse_census_clear(c);
}

int main(void)
{
    apr_pool_t *p;

    apr_initialize();
    apr_pool_create(&p, NULL);
    test_counts(p);
    test_each(p);
    test_churn(p);
    apr_pool_destroy(p);
    apr_terminate();
    return unit_report();
}

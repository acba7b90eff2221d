/*
 * Tiny lttng-ust program for the tracewatch live tests.
 *
 * usage: ust_app COUNT INTERVAL_US [PAUSE_AT PAUSE_US]
 *
 * Emits COUNT events tracewatch_test:seq with seq = 0..COUNT-1, sleeping
 * INTERVAL_US microseconds between two events.  If PAUSE_AT is given, it
 * sleeps PAUSE_US microseconds more before the event whose seq == PAUSE_AT
 * (a quiet period, during which the live timer sends inactivity beacons).
 * Prints "done COUNT" on stdout when finished.
 */
#define TRACEPOINT_DEFINE
#define TRACEPOINT_CREATE_PROBES
#include "ust_tp.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    long long count, i, pause_at = -1;
    long interval_us, pause_us = 0;

    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: %s COUNT INTERVAL_US [PAUSE_AT PAUSE_US]\n", argv[0]);
        return 2;
    }
    count = atoll(argv[1]);
    interval_us = atol(argv[2]);
    if (argc == 5) {
        pause_at = atoll(argv[3]);
        pause_us = atol(argv[4]);
    }
    for (i = 0; i < count; i++) {
        if (i == pause_at && pause_us > 0)
            usleep((useconds_t) pause_us);
        tracepoint(tracewatch_test, seq, (int64_t) i);
        if (interval_us > 0)
            usleep((useconds_t) interval_us);
    }
    printf("done %lld\n", count);
    fflush(stdout);
    return 0;
}

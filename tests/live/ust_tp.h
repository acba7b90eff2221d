/* Tracepoint provider of the tracewatch live tests (used by ust_app.c). */
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER tracewatch_test

#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "./ust_tp.h"

#if !defined(TRACEWATCH_UST_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define TRACEWATCH_UST_TP_H

#include <lttng/tracepoint.h>

/* One numbered event: seq counts 0..N-1 within one run of ust_app. */
TRACEPOINT_EVENT(
    tracewatch_test,
    seq,
    TP_ARGS(int64_t, seq),
    TP_FIELDS(
        ctf_integer(int64_t, seq, seq)
    )
)

#endif /* TRACEWATCH_UST_TP_H */

#include <lttng/tracepoint-event.h>

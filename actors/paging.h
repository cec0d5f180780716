/* A shard's paging counts (actors/shard.h says what paging is), as the
 * engine and the status line read them. */
#ifndef SYM_PAGING_H
#define SYM_PAGING_H

#include <stdint.h>

typedef struct {
    uint64_t page_outs, page_ins;     /* states copied slot -> host tier, host tier -> slot */
    uint64_t page_out_ns, page_in_ns; /* time those copies took */
    uint64_t steps, steps_paged;      /* steps, and those that paged a state in or out first */
    int resident, paged, slots;       /* symbols in slots, in the host tier, now; the pool's slots */
} sym_paging_stats;

#endif

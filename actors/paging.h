/* A shard's paging counts (actors/shard.h says what paging is), as the
 * engine and the status line read them. page_outs and page_ins count
 * every tier; disk_outs and disk_ins the disk's share of the traffic. */
#ifndef SYM_PAGING_H
#define SYM_PAGING_H

#include <stdint.h>

typedef struct {
    uint64_t page_outs, page_ins;     /* states copied slot -> a tier, a tier -> slot */
    uint64_t disk_outs, disk_ins;     /* states written to the disk tier (spilled from the host tier, or
                                         paged out without one), and read back from it into a slot */
    uint64_t page_out_ns, page_in_ns; /* time those copies took */
    uint64_t steps, steps_paged;      /* steps, and those that paged a state in or out first */
    int resident, paged, slots;       /* symbols in slots, in the host tier, now; the pool's slots */
    int on_disk;                      /* symbols in the disk tier, now */
} sym_paging_stats;

#endif

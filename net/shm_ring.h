/* A same-host data path for the frames of a shard link (net/shard_wire.h):
 * one shared-memory region of two single-producer single-consumer byte
 * rings, ring 0 written by the region's creator (the router's link) and
 * read by the process that opened it (the shard process), ring 1 the
 * other way. Each ring carries frames as they are, each a u32 length and
 * then its bytes, cut at the ring's end and continued at its start.
 *
 * The region (POSIX shared memory, /dev/shm):
 *
 *   0       header: u32 magic "SSR1", u32 layout version, u64 max_frame,
 *           u64 ring bytes (a power of two, at least two frames of
 *           max_frame with their lengths), u64 region bytes
 *   64      ring 0's counters, then ring 1's, each four cache lines:
 *             head    bytes written in all (the writer's; release)
 *             tail    bytes read in all (the reader's; release)
 *             rsleep  1 while the reader sleeps for data (futex word)
 *             wsleep  1 while the writer sleeps for room (futex word)
 *   4096    ring 0's bytes, then ring 1's
 *
 * Writer and reader each keep their own count (head, tail) in their own
 * process and only publish it: what the peer writes there is never read
 * back. The other side's count is read with acquire and checked (head -
 * tail within the ring), and a frame's length is checked before any byte
 * of it is read (at most max_frame, within what was written); the frame
 * is copied out before the reader frees its room, so a peer that
 * scribbles over the ring afterwards changes nothing already read. Either
 * failure is EPROTO: the session ends, as for a frame that does not
 * decode. (A peer can do worse than scribble: the file is the same user's
 * (mode 0600), which can also shrink it under the mapping; that peer
 * could as well signal this process.)
 *
 * Waking. A reader that finds its ring empty polls it for spin_ns,
 * yielding the core (sched_yield) at each turn so that it never starves
 * the thread it waits for on a machine of few cores, then sleeps on the
 * ring's rsleep word (FUTEX_WAIT, shared between processes: no
 * FUTEX_PRIVATE_FLAG): it stores 1 there, looks at head again (a
 * sequentially consistent fence between the two), and sleeps only if the
 * ring is still empty and the word still 1. A writer publishes head, the
 * same fence, then wakes the reader only when the word is 1, exchanging
 * it for 0 first: either the reader sees the new head, or the writer sees
 * the 1 and the word changes before the reader's FUTEX_WAIT (which then
 * returns at once) or wakes it. A writer that finds no room waits on
 * wsleep the same way for the reader's tail. Every wait is bounded by the
 * caller's timeout, so a reader notices the session's timeout and a
 * shutdown, and a writer whose peer stopped reading gives up. */
#ifndef SYM_NET_SHM_RING_H
#define SYM_NET_SHM_RING_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* "/symserve-", the creator's pid in 8 hex digits, 8 random ones, the NUL */
#define SYM_SHM_NAME_MAX 32

typedef struct sym_shm sym_shm;

/* A new region for frames of up to max_frame bytes, under a new name
 * (this process's pid and random digits; O_CREAT | O_EXCL, mode 0600):
 * its creator writes ring 0. NULL with e. */
sym_shm *sym_shm_create(size_t max_frame, uint64_t spin_ns, sym_err *e);
/* The region a peer created, by its name: the opener writes ring 1. It
 * must be this build's region for max_frame (its size, its header) and a
 * file of this user's. NULL with e. */
sym_shm *sym_shm_open(const char *name, size_t max_frame, uint64_t spin_ns, sym_err *e);
/* A handle for the other side of m's mapping, in this process: both ends
 * at one address, as ThreadSanitizer needs to see them (tests). Closing
 * it leaves the mapping (and the name) to m, which must outlive it. */
sym_shm *sym_shm_other_side(sym_shm *m, sym_err *e);
const char *sym_shm_name(const sym_shm *m);
/* The name removed, by either side (the creator once the peer has mapped
 * the region or never will, the opener once it has): the mappings stay,
 * and nothing is left behind when either process ends. Once per handle;
 * a creator's close does it when it was not done. NULL: nothing. */
void sym_shm_unlink(sym_shm *m);
/* Unmapped (and unlinked by a creator that has not). NULL: nothing. */
void sym_shm_close(sym_shm *m);
/* The names in /dev/shm of regions this user's processes created and
 * that no process will remove: the creator (its pid, in the name) is gone
 * and the file is older than older_than_s. A live creator removes its
 * name within its handshake, so only one killed inside it leaves a name;
 * the age keeps a creator in another pid namespace (the same /dev/shm, a
 * pid that is not ours) safe while its handshake lasts. How many were
 * removed. */
int sym_shm_sweep(double older_than_s);

/* The frame into this side's ring. 0; -1 with errno EMSGSIZE (longer than
 * max_frame), ETIMEDOUT (no room within timeout_ns: the peer does not
 * read) or EPROTO (the peer's tail is impossible). One thread writes. */
int sym_shm_ring_write(sym_shm *m, const void *frame, size_t len, uint64_t timeout_ns);
/* The next frame of the peer's ring, copied into buf (cap bytes, at least
 * max_frame), its length in *len: 1; 0 when none came within timeout_ns;
 * -1 with e (the ring holds what no writer of this wire writes). One
 * thread reads. */
int sym_shm_ring_read(sym_shm *m, void *buf, size_t cap, size_t *len, uint64_t timeout_ns, sym_err *e);

/* This process's side, counted (for tests): its sleeps on the futex, and
 * the wakes it sent its peer. */
typedef struct {
    uint64_t sleeps, wakes;
} sym_shm_stats;
sym_shm_stats sym_shm_get_stats(const sym_shm *m);

/* The region's size for frames of max_frame bytes. */
size_t sym_shm_region_bytes(size_t max_frame);

#endif

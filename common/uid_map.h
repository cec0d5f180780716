/* unique_id -> int map (open addressing, linear probing, grows at half
 * full). Ids are arbitrary 64-bit integers chosen by the server, so no array
 * indexed by id will do. Deletion shifts the probe chain back (no
 * tombstones), so a map used as a sliding window stays as fast as new. */
#ifndef SYM_UID_MAP_H
#define SYM_UID_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *keys;
    int32_t *vals;
    uint8_t *used;
    size_t cap, n;
} sym_uid_map;

int sym_uid_map_init(sym_uid_map *m, size_t expect);
void sym_uid_map_free(sym_uid_map *m);
/* Pointer to the value of uid, or NULL when absent. */
int32_t *sym_uid_map_get(const sym_uid_map *m, uint64_t uid);
/* Sets uid's value (inserting it). -1 when memory runs out. */
int sym_uid_map_put(sym_uid_map *m, uint64_t uid, int32_t val);
/* Removes uid (absent: nothing happens). */
void sym_uid_map_del(sym_uid_map *m, uint64_t uid);

#endif

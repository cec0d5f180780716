/* CRC-32C (Castagnoli), the checksum of every record and snapshot part
 * symserve writes to disk (state/): it catches torn and flipped bytes, and
 * its polynomial is the one storage systems use (iSCSI, ext4, RocksDB). */
#ifndef SYM_CRC32C_H
#define SYM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 for a fresh sum) over n bytes. */
uint32_t sym_crc32c(uint32_t crc, const void *p, size_t n);

#endif

/* The engine's one JSON config file. Every key, its meaning and its
 * default are documented in docs/CONFIG.md; a key not listed there, or a
 * value of the wrong type or range, is an error that names the key. The
 * text is strict JSON (common/json.h): a key given twice, or anything after
 * the object, is an error; integer keys take integer literals, read exactly.
 *
 *   {
 *     "model":   {"dir": null, "synthetic_seed": 1, "size": "small"},
 *     "backend": "auto",            // "cpu" | "cuda" | "auto" (cuda when a GPU is present)
 *     "precision": null,            // null: fp64 on cpu, "mixed" on cuda; cuda: "fp32" | "bf16" | "mixed"; cpu: "fp64" | "fp32"
 *     "tower_precision": null,      // optional ["bf16","bf16","fp32","bf16"], overrides precision
 *     "state_precision": null,      // optional ["bf16","fp16-sr","fp32","bf16"]: each tower's state storage
 *                                   // (kernels/state_precision.h); cuda stores fp32, bf16, fp16 (not -sr; Hawk fp32)
 *     "shards": {"count": 1, "devices": [0], "tower_split": 1, "endpoints": [],
 *                "heartbeat_ms": 500, "timeout_ms": 5000, "shm": true, "shm_spin_us": 50},
 *                                   // shard i runs on devices[i % len]; tower_split 2 or 4:
 *                                   // each shard's towers spread over that many devices;
 *                                   // endpoints[i] (nanomsg URL, "" = in this process):
 *                                   // shard i is a `symserve shard` process there;
 *                                   // shm: an ipc:// one's frames in shared memory
 *     "max_batch": 128,
 *     "rows_per_symbol": 4,         // waiting requests of one symbol a step may take (in order)
 *     "max_symbols": 1024,          // distinct symbols the engine accepts (the front door's table)
 *     "slots_per_shard": null,      // each shard's backend slot pool; null: max_symbols
 *     "host_tier_mb": 4096,         // per shard: host memory for states paged out of a full pool; 0: none
 *     "queue_capacity": 4096,       // per mailbox, rounded up to a power of two
 *     "hash_seed": 0,
 *     "status_interval_s": 5,
 *     "idle_spin_us": 200,          // an idle actor polls this long before sleeping
 *     "net": {"max_line_bytes": 67108864, "max_output_bytes": 67108864, "id_window": 1000000},
 *                                   // what one peer may make the game client hold (net/play.h)
 *     "state": {"dir": null, "fsync": "every_s", "snapshot_every_s": 60, "disk_tier_mb": 65536},
 *                                   // durable symbol state for play (state/store.h); null: none;
 *                                   // disk_tier_mb, per shard: disk for states the host tier has
 *                                   // no room for, under dir/pages (only with a dir); 0: none
 *     "cpu": {"threads": 0},        // the CPU backend's threads, 1..4; 0: one per tower up to the cores
 *     "log": {"level": "info"},     // "debug" | "info" | "warn" | "error" (common/log.h)
 *     "cuda": {"cublas_min_batch": 8, ...}
 *                                   // the CUDA engine's tuning (sym_cuda_tuning, kernels/cuda_backend.h)
 *   }
 */
#ifndef SYM_CONFIG_H
#define SYM_CONFIG_H

#include <stdint.h>

#include "common/err.h"
#include "kernels/backend.h"
#include "kernels/cuda_backend.h"
#include "kernels/state_precision.h"

#define SYM_MAX_SHARDS 256
#define SYM_ENDPOINT_MAX 128 /* a nanomsg address, with its terminating NUL (NN_SOCKADDR_MAX) */
/* net.*: what one peer may make the game client hold */
#define SYM_NET_MAX_LINE_DEFAULT ((size_t)64 << 20)   /* 64 MiB: ~40,000 requests of 79 features */
#define SYM_NET_MAX_OUTPUT_DEFAULT ((size_t)64 << 20) /* ~600,000 answers the server has not read */
#define SYM_NET_ID_WINDOW_DEFAULT ((size_t)1000000)

typedef enum { SYM_BACKEND_AUTO = 0, SYM_BACKEND_CPU = 1, SYM_BACKEND_CUDA = 2 } sym_backend_kind;
/* state.fsync: when the log of steps reaches the disk (state/store.h), as Redis's appendfsync */
typedef enum { SYM_FSYNC_NO = 0, SYM_FSYNC_EVERY_S = 1, SYM_FSYNC_ALWAYS = 2 } sym_fsync_policy;

typedef struct {
    char model_dir[1024];   /* empty: synthetic */
    uint64_t synthetic_seed;
    int synthetic_full;     /* 0: small shape, 1: full shape */
    sym_backend_kind backend;
    sym_precision tower_precision[SYM_TOWERS]; /* for cuda: fp32/bf16 per tower; for cpu: all fp64 or all fp32 */
    int precision_set;      /* 0: none given, the backend's default (cpu fp64, cuda mixed) */
    sym_state_format state_precision[SYM_TOWERS]; /* each tower's state storage; all native unless set */
    int state_precision_set; /* 1: a state_precision array was given (cuda refuses it) */
    int shard_count;
    int shard_devices[SYM_MAX_SHARDS];
    int n_shard_devices;
    int tower_split;        /* 1, 2 or 4 parts per shard (kernels/split_backend.h) */
    /* shard i runs in another process (symserve shard) at endpoints[i]
     * when i < n_shard_endpoints and it is not "" (net/shard_link.h) */
    char shard_endpoints[SYM_MAX_SHARDS][SYM_ENDPOINT_MAX];
    int n_shard_endpoints;
    int shard_heartbeat_ms;   /* a link to a shard process sends a heartbeat this often, each way */
    int shard_timeout_ms;     /* ... and declares the other side lost after this long without a message */
    int shard_join_timeout_ms; /* the router waits this long for a shard process to take and answer its handshake */
    int shard_shm;            /* an ipc:// link's frames through a shared-memory ring (net/shard_transport.h) */
    double shard_shm_spin_us; /* that ring's reader (or a writer without room) polls this long before it sleeps */
    int max_batch;
    int rows_per_symbol; /* waiting requests of one symbol a shard's step takes, in order */
    int max_symbols;        /* distinct symbols the engine accepts */
    int slots_per_shard;    /* each shard's backend slot pool; 0: max_symbols (sym_config_slots_per_shard) */
    int host_tier_mb;       /* per shard: host memory for paged-out states, MiB; 0: none */
    int queue_capacity;
    uint64_t hash_seed;
    double status_interval_s; /* 0: no status line */
    double idle_spin_us;      /* an idle actor polls this long before it sleeps */
    size_t net_max_line_bytes, net_max_output_bytes, net_id_window;
    char state_dir[1024];         /* empty: no durable state */
    sym_fsync_policy state_fsync; /* every_s */
    double state_snapshot_every_s; /* 60; 0: none */
    int disk_tier_mb;             /* per shard: disk for paged-out states past the host tier, MiB, under
                                     state_dir/pages (none without a state_dir); 0: none */
    sym_cuda_tuning cuda;         /* every CUDA backend is created with it */
    int cpu_threads;              /* every CPU backend is given it (sym_cpu_backend_set_threads) */
    int log_level;                /* SYM_LOG_*: the command applies it (sym_log_set_level) */
} sym_config;

/* Documented defaults. */
void sym_config_defaults(sym_config *c);

/* The slots of each shard's backend: slots_per_shard, or max_symbols when
 * that is unset or smaller (a shard never holds more symbols than that). */
int sym_config_slots_per_shard(const sym_config *c);

/* Shard i's endpoint (config shards.endpoints), or NULL when shard i runs
 * in this process. */
const char *sym_config_shard_endpoint(const sym_config *c, int shard);
/* A shards.endpoints item: "" (in this process), "tcp://..." or
 * "ipc://...", shorter than SYM_ENDPOINT_MAX. */
int sym_endpoint_check(const char *url, sym_err *e);

/* Parses a JSON config text over the defaults already in c; on error c is
 * left as it was. */
int sym_config_parse(sym_config *c, const char *json, sym_err *e);
int sym_config_load(sym_config *c, const char *path, sym_err *e);

/* "no" | "every_s" | "always". -1 when it is none of them. */
int sym_fsync_policy_parse(const char *name, sym_fsync_policy *p);

/* "fp32" | "bf16" | "mixed" | "fp64" into per-tower precisions. */
int sym_config_set_precision(sym_config *c, const char *name, sym_err *e);

#endif

/* config.h over the strict JSON reader (common/json.h). Every error names
 * the key it is about, with its full path ("shards.count"), so a user can
 * find it in the file; a JSON error names the byte (or the duplicate key). */
#include "config/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"

void sym_config_defaults(sym_config *c) {
    memset(c, 0, sizeof *c);
    c->synthetic_seed = 1;
    c->synthetic_full = 0;
    c->backend = SYM_BACKEND_AUTO;
    /* precision_set 0: the engine picks the backend's default (cpu fp64,
     * cuda "mixed" = RetNet fp32, the others bf16, which is what this holds) */
    for (int t = 0; t < SYM_TOWERS; t++) c->tower_precision[t] = t == SYM_TOWER_RETNET ? SYM_PREC_FP32 : SYM_PREC_BF16;
    c->shard_count = 1;
    c->shard_devices[0] = 0;
    c->n_shard_devices = 1;
    c->tower_split = 1;
    c->shard_heartbeat_ms = 500;
    c->shard_timeout_ms = 5000;
    c->shard_join_timeout_ms = 120000;
    c->shard_shm = 1;
    c->shard_shm_spin_us = 50;
    c->max_batch = 128;
    c->rows_per_symbol = 4;
    c->max_symbols = 1024;
    c->slots_per_shard = 0;
    c->host_tier_mb = 4096;
    c->queue_capacity = 4096;
    c->hash_seed = 0;
    c->status_interval_s = 5;
    c->idle_spin_us = 200;
    c->net_max_line_bytes = SYM_NET_MAX_LINE_DEFAULT;
    c->net_max_output_bytes = SYM_NET_MAX_OUTPUT_DEFAULT;
    c->net_id_window = SYM_NET_ID_WINDOW_DEFAULT;
    c->state_fsync = SYM_FSYNC_EVERY_S;
    c->state_snapshot_every_s = 60;
    c->disk_tier_mb = 65536;
    sym_cuda_tuning_defaults(&c->cuda);
    c->cpu_threads = 0;
    c->log_level = SYM_LOG_INFO;
}

int sym_config_slots_per_shard(const sym_config *c) {
    return c->slots_per_shard > 0 && c->slots_per_shard < c->max_symbols ? c->slots_per_shard : c->max_symbols;
}

int sym_fsync_policy_parse(const char *name, sym_fsync_policy *p) {
    if (!strcmp(name, "no")) *p = SYM_FSYNC_NO;
    else if (!strcmp(name, "every_s")) *p = SYM_FSYNC_EVERY_S;
    else if (!strcmp(name, "always")) *p = SYM_FSYNC_ALWAYS;
    else return -1;
    return 0;
}

int sym_config_set_precision(sym_config *c, const char *name, sym_err *e) {
    sym_precision p[SYM_TOWERS];
    for (int t = 0; t < SYM_TOWERS; t++) {
        if (!strcmp(name, "fp32")) p[t] = SYM_PREC_FP32;
        else if (!strcmp(name, "bf16")) p[t] = SYM_PREC_BF16;
        else if (!strcmp(name, "fp64")) p[t] = SYM_PREC_FP64;
        else if (!strcmp(name, "mixed")) p[t] = t == SYM_TOWER_RETNET ? SYM_PREC_FP32 : SYM_PREC_BF16;
        else return sym_fail(e, "unknown precision '%s' (fp64, fp32, bf16, mixed)", name);
    }
    memcpy(c->tower_precision, p, sizeof p);
    c->precision_set = 1;
    return 0;
}

/* An integer key takes an integer literal, read exactly: 2.0 or 1e2 is
 * refused rather than rounded. */
static int int_literal(const cJSON *v, const char *key, const char *range, sym_err *e) {
    if (!cJSON_IsNumber(v)) return sym_fail(e, "config key '%s': expected an integer in %s", key, range);
    if (sym_json_is_int(v)) return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d)) return sym_fail(e, "config key '%s': %g is not an integer in %s", key, d, range);
    return sym_fail(e, "config key '%s': %g is written with a fraction or exponent; write it as an integer (%s)", key, d,
                    range);
}

/* An integer in [lo, hi]. */
static int get_int(const cJSON *v, const char *key, long long lo, long long hi, long long *out, sym_err *e) {
    char range[64];
    snprintf(range, sizeof range, "%lld..%lld", lo, hi);
    if (int_literal(v, key, range, e)) return -1;
    int64_t x;
    if (sym_json_i64(v, &x) || x < lo || x > hi)
        return sym_fail(e, "config key '%s': %.40s is not an integer in %s", key, v->valuestring, range);
    *out = (long long)x;
    return 0;
}

/* A seed: any integer in 0..2^64-1. */
static int get_seed(const cJSON *v, const char *key, uint64_t *out, sym_err *e) {
    static const char range[] = "0..18446744073709551615";
    if (int_literal(v, key, range, e)) return -1;
    if (sym_json_u64(v, out))
        return sym_fail(e, "config key '%s': %.40s is not an integer in %s", key, v->valuestring, range);
    return 0;
}

static int check_keys(const cJSON *obj, const char *path, const char *const *allowed, sym_err *e) {
    if (!cJSON_IsObject(obj)) return sym_fail(e, "config key '%s': expected an object", path);
    for (const cJSON *k = obj->child; k; k = k->next) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++) ok |= !strcmp(k->string, *a);
        if (!ok) {
            if (*path) return sym_fail(e, "unknown config key '%s.%s'", path, k->string);
            return sym_fail(e, "unknown config key '%s'", k->string);
        }
    }
    return 0;
}

static int parse_model(sym_config *c, const cJSON *m, sym_err *e) {
    static const char *const keys[] = {"dir", "synthetic_seed", "size", NULL};
    if (check_keys(m, "model", keys, e)) return -1;
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(m, "dir")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || !*v->valuestring) return sym_fail(e, "config key 'model.dir': expected a folder name or null");
        if (strlen(v->valuestring) >= sizeof c->model_dir) return sym_fail(e, "config key 'model.dir': path too long");
        strcpy(c->model_dir, v->valuestring);
    } else if (v) {
        c->model_dir[0] = 0;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(m, "synthetic_seed")) &&
        get_seed(v, "model.synthetic_seed", &c->synthetic_seed, e))
        return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(m, "size"))) {
        if (!cJSON_IsString(v) || (strcmp(v->valuestring, "small") && strcmp(v->valuestring, "full")))
            return sym_fail(e, "config key 'model.size': expected \"small\" or \"full\"");
        c->synthetic_full = !strcmp(v->valuestring, "full");
    }
    return 0;
}

static int parse_shards(sym_config *c, const cJSON *s, sym_err *e) {
    static const char *const keys[] = {"count",      "devices",         "tower_split", "endpoints",   "heartbeat_ms",
                                       "timeout_ms", "join_timeout_ms", "shm",         "shm_spin_us", NULL};
    if (check_keys(s, "shards", keys, e)) return -1;
    const cJSON *v;
    long long n = 0;
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "count"))) {
        if (get_int(v, "shards.count", 1, SYM_MAX_SHARDS, &n, e)) return -1;
        c->shard_count = (int)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "devices"))) {
        int len = cJSON_GetArraySize(v);
        if (!cJSON_IsArray(v) || len < 1 || len > SYM_MAX_SHARDS)
            return sym_fail(e, "config key 'shards.devices': expected an array of 1..%d device numbers", SYM_MAX_SHARDS);
        int i = 0;
        for (const cJSON *d = v->child; d; d = d->next, i++) {
            if (get_int(d, "shards.devices", 0, 1023, &n, e)) return -1;
            c->shard_devices[i] = (int)n;
        }
        c->n_shard_devices = len;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "tower_split"))) {
        if (get_int(v, "shards.tower_split", 1, 4, &n, e)) return -1;
        if (n == 3) return sym_fail(e, "config key 'shards.tower_split': 1, 2 or 4 (got 3)");
        c->tower_split = (int)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "endpoints"))) {
        int len = cJSON_GetArraySize(v);
        if (!cJSON_IsArray(v) || len > SYM_MAX_SHARDS)
            return sym_fail(e, "config key 'shards.endpoints': expected an array of at most %d strings", SYM_MAX_SHARDS);
        int i = 0;
        for (const cJSON *d = v->child; d; d = d->next, i++) {
            if (!cJSON_IsString(d)) return sym_fail(e, "config key 'shards.endpoints': item %d is not a string", i);
            if (sym_endpoint_check(d->valuestring, e)) return sym_failctx(e, "config key 'shards.endpoints': item %d", i);
            snprintf(c->shard_endpoints[i], sizeof c->shard_endpoints[i], "%s", d->valuestring);
        }
        c->n_shard_endpoints = len;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "heartbeat_ms"))) {
        if (get_int(v, "shards.heartbeat_ms", 10, 60000, &n, e)) return -1;
        c->shard_heartbeat_ms = (int)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "timeout_ms"))) {
        if (get_int(v, "shards.timeout_ms", 50, 600000, &n, e)) return -1;
        c->shard_timeout_ms = (int)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "join_timeout_ms"))) {
        if (get_int(v, "shards.join_timeout_ms", 100, 3600000, &n, e)) return -1;
        c->shard_join_timeout_ms = (int)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "shm"))) {
        if (!cJSON_IsBool(v)) return sym_fail(e, "config key 'shards.shm': expected true or false");
        c->shard_shm = cJSON_IsTrue(v);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "shm_spin_us"))) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1000000))
            return sym_fail(e, "config key 'shards.shm_spin_us': expected microseconds in 0..1000000");
        c->shard_shm_spin_us = v->valuedouble;
    }
    if (c->shard_timeout_ms < 2 * c->shard_heartbeat_ms)
        return sym_fail(e, "config key 'shards.timeout_ms': %d is less than two heartbeats (shards.heartbeat_ms %d)",
                        c->shard_timeout_ms, c->shard_heartbeat_ms);
    return 0;
}

int sym_endpoint_check(const char *url, sym_err *e) {
    size_t len = strlen(url);
    if (!len) return 0;
    if (len >= SYM_ENDPOINT_MAX) return sym_fail(e, "\"%.40s...\": longer than %d bytes", url, SYM_ENDPOINT_MAX - 1);
    if (strncmp(url, "tcp://", 6) && strncmp(url, "ipc://", 6))
        return sym_fail(e, "\"%s\": expected \"tcp://HOST:PORT\", \"ipc://PATH\" or \"\" (in this process)", url);
    if (len == 6) return sym_fail(e, "\"%s\": no address after the scheme", url);
    return 0;
}

const char *sym_config_shard_endpoint(const sym_config *c, int shard) {
    return shard >= 0 && shard < c->n_shard_endpoints && c->shard_endpoints[shard][0] ? c->shard_endpoints[shard] : NULL;
}

static int parse_net(sym_config *c, const cJSON *s, sym_err *e) {
    static const char *const keys[] = {"max_line_bytes", "max_output_bytes", "id_window", NULL};
    if (check_keys(s, "net", keys, e)) return -1;
    const cJSON *v;
    long long n = 0;
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "max_line_bytes"))) {
        if (get_int(v, "net.max_line_bytes", 1024, 1ll << 30, &n, e)) return -1;
        c->net_max_line_bytes = (size_t)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "max_output_bytes"))) {
        if (get_int(v, "net.max_output_bytes", 1024, 1ll << 40, &n, e)) return -1;
        c->net_max_output_bytes = (size_t)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "id_window"))) {
        if (get_int(v, "net.id_window", 1, 1ll << 26, &n, e)) return -1;
        c->net_id_window = (size_t)n;
    }
    return 0;
}

static int parse_state(sym_config *c, const cJSON *s, sym_err *e) {
    static const char *const keys[] = {"dir", "fsync", "snapshot_every_s", "disk_tier_mb", NULL};
    if (!cJSON_IsObject(s)) return sym_fail(e, "config key 'state': expected an object");
    if (check_keys(s, "state", keys, e)) return -1;
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "dir"))) {
        if (cJSON_IsNull(v)) {
            c->state_dir[0] = '\0';
        } else if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= sizeof c->state_dir) {
            return sym_fail(e, "config key 'state.dir': expected null or a directory path (under %zu bytes)",
                            sizeof c->state_dir);
        } else {
            snprintf(c->state_dir, sizeof c->state_dir, "%s", v->valuestring);
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "fsync")) &&
        (!cJSON_IsString(v) || sym_fsync_policy_parse(v->valuestring, &c->state_fsync)))
        return sym_fail(e, "config key 'state.fsync': expected \"no\", \"every_s\" or \"always\"");
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "snapshot_every_s"))) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 86400)
            return sym_fail(e, "config key 'state.snapshot_every_s': expected seconds in 0..86400 (0: none)");
        c->state_snapshot_every_s = v->valuedouble;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(s, "disk_tier_mb"))) {
        long long n;
        if (get_int(v, "state.disk_tier_mb", 0, 1 << 30, &n, e)) return -1;
        c->disk_tier_mb = (int)n;
    }
    return 0;
}

/* n integers in [lo, hi] (one, or an array of n) into out; with nullable,
 * null sets them all to -1 */
static int get_ints(const cJSON *v, const char *key, int n, long long lo, long long hi, int nullable, int *out,
                    sym_err *e) {
    long long x = 0;
    if (nullable && cJSON_IsNull(v)) {
        for (int i = 0; i < n; i++) out[i] = -1;
        return 0;
    }
    if (n == 1) {
        if (get_int(v, key, lo, hi, &x, e)) return -1;
        out[0] = (int)x;
        return 0;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n)
        return sym_fail(e, "config key '%s': expected %san array of %d integers in %lld..%lld", key,
                        nullable ? "null or " : "", n, lo, hi);
    int i = 0;
    for (const cJSON *d = v->child; d; d = d->next, i++) {
        if (get_int(d, key, lo, hi, &x, e)) return -1;
        out[i] = (int)x;
    }
    return 0;
}

/* "cuda": the CUDA engine's tuning (kernels/cuda_backend.h) */
static int parse_cuda(sym_config *c, const cJSON *s, sym_err *e) {
    sym_cuda_tuning *t = &c->cuda;
    const long long B = SYM_CUDA_TUNE_BATCH_MAX, KB = SYM_CUDA_TUNE_SMEM_KB_MAX, PRIO = SYM_CUDA_TUNE_PRIORITY_MAX;
    const struct {
        const char *key;
        int *v, n;
        long long lo, hi;
        int nullable;
    } k[] = {
        {"cublas_min_batch", &t->cublas_min_batch, 1, 0, B, 0},
        {"blockdiag_own_max_batch", &t->blockdiag_own_max_batch, 1, 0, B, 0},
        {"bf16_mma_batch", t->bf16_mma_batch, 2, 0, B, 0},
        {"bf16_mma_ctas_per_sm", &t->bf16_mma_ctas_per_sm, 1, 1, SYM_CUDA_TUNE_CTAS_MAX, 0},
        {"bf16_wgmma_batch", t->bf16_wgmma_batch, 2, 0, B, 0},
        {"bf16_wgmma_sm_pct", t->bf16_wgmma_sm_pct, SYM_TOWERS, 1, 100, 0},
        {"bf16_wgmma_smem_kb", &t->bf16_wgmma_smem_kb, 1, 1, KB, 0},
        {"fp32_mma_batch", t->fp32_mma_batch, 2, 0, B, 0},
        {"fp32_wgmma_batch", t->fp32_wgmma_batch, 2, 0, B, 0},
        {"fp32_wgmma_sm_pct", &t->fp32_wgmma_sm_pct, 1, 1, 100, 0},
        {"fp32_wgmma_smem_kb", &t->fp32_wgmma_smem_kb, 1, 1, KB, 0},
        {"tower_stream_priority", t->tower_stream_priority, SYM_TOWERS, -1, PRIO, 1},
        {"state_cell_priority", &t->state_cell_priority, 1, 0, PRIO, 1},
    };
    enum { N = sizeof k / sizeof *k };
    const char *keys[N + 1];
    for (int i = 0; i < N; i++) keys[i] = k[i].key;
    keys[N] = NULL;
    if (check_keys(s, "cuda", keys, e)) return -1;
    for (int i = 0; i < N; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, k[i].key);
        char path[64];
        snprintf(path, sizeof path, "cuda.%s", k[i].key);
        if (v && get_ints(v, path, k[i].n, k[i].lo, k[i].hi, k[i].nullable, k[i].v, e)) return -1;
    }
    return 0;
}

static int parse_cpu(sym_config *c, const cJSON *s, sym_err *e) {
    static const char *const keys[] = {"threads", NULL};
    if (check_keys(s, "cpu", keys, e)) return -1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, "threads");
    long long n = 0;
    if (v && get_int(v, "cpu.threads", 0, SYM_TOWERS, &n, e)) return -1;
    if (v) c->cpu_threads = (int)n;
    return 0;
}

static int parse_log(sym_config *c, const cJSON *s, sym_err *e) {
    static const char *const keys[] = {"level", NULL};
    if (check_keys(s, "log", keys, e)) return -1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, "level");
    int l = v && cJSON_IsString(v) ? sym_log_level_parse(v->valuestring) : -1;
    if (v && l < 0) return sym_fail(e, "config key 'log.level': expected \"debug\", \"info\", \"warn\" or \"error\"");
    if (v) c->log_level = l;
    return 0;
}

/* null (every tower native) or 4 format names, one per tower. */
static int parse_state_precision(sym_config *c, const cJSON *v, sym_err *e) {
    static const char expected[] = "\"fp32\", \"bf16\", \"bf16-sr\", \"fp16\" or \"fp16-sr\"";
    if (cJSON_IsNull(v)) {
        for (int t = 0; t < SYM_TOWERS; t++) c->state_precision[t] = SYM_STATE_NATIVE;
        c->state_precision_set = 0;
        return 0;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != SYM_TOWERS)
        return sym_fail(e, "config key 'state_precision': expected null or an array of 4 of %s ([xLSTM, Mamba2, RetNet, Hawk])",
                        expected);
    int t = 0;
    for (const cJSON *p = v->child; p; p = p->next, t++)
        if (!cJSON_IsString(p) || sym_state_format_parse(p->valuestring, &c->state_precision[t]))
            return sym_fail(e, "config key 'state_precision': element %d is not %s", t, expected);
    c->state_precision_set = 1;
    return 0;
}

static int parse_root(sym_config *c, const cJSON *root, sym_err *e) {
    static const char *const keys[] = {"model",     "backend",     "precision",    "tower_precision", "state_precision",
                                       "shards",    "max_batch",   "rows_per_symbol", "max_symbols", "slots_per_shard", "host_tier_mb",
                                       "queue_capacity", "hash_seed", "status_interval_s", "idle_spin_us", "net", "state", "cuda", "cpu", "log", NULL};
    if (!cJSON_IsObject(root)) return sym_fail(e, "config: the top level must be a JSON object");
    if (check_keys(root, "", keys, e)) return -1;
    const cJSON *v;
    long long n = 0;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "model")) && parse_model(c, v, e)) return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "backend"))) {
        if (!cJSON_IsString(v)) return sym_fail(e, "config key 'backend': expected \"cpu\", \"cuda\" or \"auto\"");
        if (!strcmp(v->valuestring, "cpu")) c->backend = SYM_BACKEND_CPU;
        else if (!strcmp(v->valuestring, "cuda")) c->backend = SYM_BACKEND_CUDA;
        else if (!strcmp(v->valuestring, "auto")) c->backend = SYM_BACKEND_AUTO;
        else return sym_fail(e, "config key 'backend': '%s' is not cpu, cuda or auto", v->valuestring);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "precision")) && cJSON_IsNull(v)) {
        c->precision_set = 0; /* the backend's default */
    } else if (v) {
        if (!cJSON_IsString(v)) return sym_fail(e, "config key 'precision': expected a string");
        if (sym_config_set_precision(c, v->valuestring, e)) return sym_failctx(e, "config key 'precision'");
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "tower_precision")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != SYM_TOWERS)
            return sym_fail(e, "config key 'tower_precision': expected null or an array of 4 of \"fp32\"/\"bf16\"");
        int t = 0;
        for (const cJSON *p = v->child; p; p = p->next, t++) {
            if (!cJSON_IsString(p) || (strcmp(p->valuestring, "fp32") && strcmp(p->valuestring, "bf16")))
                return sym_fail(e, "config key 'tower_precision': element %d is not \"fp32\" or \"bf16\"", t);
            c->tower_precision[t] = strcmp(p->valuestring, "fp32") ? SYM_PREC_BF16 : SYM_PREC_FP32;
        }
        c->precision_set = 1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "state_precision")) && parse_state_precision(c, v, e)) return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "shards")) && parse_shards(c, v, e)) return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "net")) && parse_net(c, v, e)) return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "state")) && parse_state(c, v, e)) return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "cuda")) && parse_cuda(c, v, e)) return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "cpu")) && parse_cpu(c, v, e)) return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "log")) && parse_log(c, v, e)) return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "max_batch"))) {
        if (get_int(v, "max_batch", 1, 65536, &n, e)) return -1;
        c->max_batch = (int)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "rows_per_symbol"))) {
        if (get_int(v, "rows_per_symbol", 1, 64, &n, e)) return -1;
        c->rows_per_symbol = (int)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "max_symbols"))) {
        if (get_int(v, "max_symbols", 1, 1 << 20, &n, e)) return -1;
        c->max_symbols = (int)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "slots_per_shard")) && cJSON_IsNull(v)) {
        c->slots_per_shard = 0; /* max_symbols */
    } else if (v) {
        if (get_int(v, "slots_per_shard", 1, 1 << 20, &n, e)) return -1;
        c->slots_per_shard = (int)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "host_tier_mb"))) {
        if (get_int(v, "host_tier_mb", 0, 1 << 24, &n, e)) return -1;
        c->host_tier_mb = (int)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "queue_capacity"))) {
        if (get_int(v, "queue_capacity", 2, 1 << 20, &n, e)) return -1;
        c->queue_capacity = (int)n;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "hash_seed")) && get_seed(v, "hash_seed", &c->hash_seed, e)) return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "status_interval_s"))) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 86400)
            return sym_fail(e, "config key 'status_interval_s': expected seconds in 0..86400 (0: off)");
        c->status_interval_s = v->valuedouble;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "idle_spin_us"))) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e6)
            return sym_fail(e, "config key 'idle_spin_us': expected microseconds in 0..1000000");
        c->idle_spin_us = v->valuedouble;
    }
    return 0;
}

static int parse_text(sym_config *c, const char *json, size_t len, sym_err *e) {
    cJSON *root = sym_json_parse(json, len, e);
    if (!root) return sym_failctx(e, "config: not valid JSON");
    sym_config tmp = *c; /* all or nothing: c keeps its values on error */
    int rc = parse_root(&tmp, root, e);
    cJSON_Delete(root);
    if (!rc) *c = tmp;
    return rc;
}

int sym_config_parse(sym_config *c, const char *json, sym_err *e) { return parse_text(c, json, strlen(json), e); }

int sym_config_load(sym_config *c, const char *path, sym_err *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return sym_fail(e, "cannot open config %s", path);
    char *buf = NULL;
    long len = -1;
    if (!fseek(f, 0, SEEK_END)) len = ftell(f);
    if (len < 0 || len > (1 << 24) || fseek(f, 0, SEEK_SET) || !(buf = malloc((size_t)len ? (size_t)len : 1)) ||
        fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(buf);
        return sym_fail(e, "cannot read config %s", path);
    }
    fclose(f);
    int rc = parse_text(c, buf, (size_t)len, e); /* the file's length: a NUL byte in it is an error */
    free(buf);
    return rc ? sym_failctx(e, "%s", path) : 0;
}

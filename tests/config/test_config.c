/* config/config.h: the documented defaults, a full valid file, and every
 * bad key or value rejected with an error naming the key (and the config
 * left untouched); strict JSON (duplicate keys, trailing data, a NUL byte,
 * integers not written as integers) and seeds read exactly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "tests/check.h"


static void bad(const char *json, const char *key) {
    sym_config c, before;
    sym_config_defaults(&c);
    before = c;
    sym_err e = {{0}};
    int rc = sym_config_parse(&c, json, &e);
    CHECK(rc == -1, "accepted %s", json);
    CHECK(strstr(e.msg, key) != NULL, "error for %s does not name '%s': %s", json, key, e.msg);
    CHECK(!memcmp(&c, &before, sizeof c), "config changed by a failed parse of %s", json);
}

int main(void) {
    sym_config c;
    sym_config_defaults(&c);
    CHECK(c.model_dir[0] == 0 && c.synthetic_seed == 1 && !c.synthetic_full, "model defaults");
    CHECK(c.backend == SYM_BACKEND_AUTO && !c.precision_set, "backend defaults");
    CHECK(c.tower_precision[0] == SYM_PREC_BF16 && c.tower_precision[2] == SYM_PREC_FP32, "mixed by default");
    CHECK(c.shard_count == 1 && c.n_shard_devices == 1 && c.shard_devices[0] == 0 && c.tower_split == 1,
          "shard defaults");
    CHECK(c.max_batch == 128 && c.rows_per_symbol == 4 && c.max_symbols == 1024 && c.queue_capacity == 4096,
          "size defaults");
    CHECK(c.hash_seed == 0 && c.status_interval_s == 5 && c.idle_spin_us == 200, "seed/status/spin defaults");

    sym_err e = {{0}};
    CHECK(!sym_config_parse(&c, "{}", &e), "empty object: %s", e.msg);
    const char *full =
        "{\"model\": {\"dir\": \"/m\", \"synthetic_seed\": 9, \"size\": \"full\"}, \"backend\": \"cuda\","
        " \"precision\": \"fp32\", \"tower_precision\": [\"bf16\",\"fp32\",\"fp32\",\"bf16\"],"
        " \"shards\": {\"count\": 4, \"devices\": [0, 1], \"tower_split\": 2}, \"max_batch\": 64, \"rows_per_symbol\": 3,"
        " \"max_symbols\": 100,"
        " \"queue_capacity\": 512, \"hash_seed\": 42, \"status_interval_s\": 0.5, \"idle_spin_us\": 7}";
    CHECK(!sym_config_parse(&c, full, &e), "full config: %s", e.msg);
    CHECK(!strcmp(c.model_dir, "/m") && c.synthetic_seed == 9 && c.synthetic_full, "model section");
    CHECK(c.backend == SYM_BACKEND_CUDA && c.precision_set, "backend");
    CHECK(c.tower_precision[0] == SYM_PREC_BF16 && c.tower_precision[1] == SYM_PREC_FP32 &&
              c.tower_precision[3] == SYM_PREC_BF16,
          "tower_precision wins over precision");
    CHECK(c.shard_count == 4 && c.n_shard_devices == 2 && c.shard_devices[1] == 1 && c.tower_split == 2, "shards");
    CHECK(c.max_batch == 64 && c.rows_per_symbol == 3 && c.max_symbols == 100 && c.queue_capacity == 512 &&
              c.hash_seed == 42 &&
              c.status_interval_s == 0.5 && c.idle_spin_us == 7,
          "numbers");
    /* the slot pool and the host tier: the pool defaults to max_symbols and never exceeds it */
    sym_config_defaults(&c);
    CHECK(c.slots_per_shard == 0 && sym_config_slots_per_shard(&c) == 1024 && c.host_tier_mb == 4096, "paging defaults");
    CHECK(!sym_config_parse(&c, "{\"slots_per_shard\": 8, \"host_tier_mb\": 0, \"max_symbols\": 30}", &e) &&
              sym_config_slots_per_shard(&c) == 8 && c.host_tier_mb == 0,
          "slots_per_shard 8: %s", e.msg);
    CHECK(!sym_config_parse(&c, "{\"slots_per_shard\": 50}", &e) && sym_config_slots_per_shard(&c) == 30,
          "slots_per_shard 50 of max_symbols 30 gives %d", sym_config_slots_per_shard(&c));
    CHECK(!sym_config_parse(&c, "{\"slots_per_shard\": null}", &e) && sym_config_slots_per_shard(&c) == 30,
          "slots_per_shard null: %s", e.msg);
    sym_config_defaults(&c);
    CHECK(!sym_config_parse(&c, "{\"precision\": \"fp64\", \"model\": {\"dir\": null}}", &e), "fp64: %s", e.msg);
    CHECK(c.tower_precision[2] == SYM_PREC_FP64, "fp64");
    CHECK(!sym_config_parse(&c, "{\"precision\": null}", &e) && !c.precision_set, "precision null: %s", e.msg);
    CHECK(sym_config_set_precision(&c, "fp8", &e) && strstr(e.msg, "unknown precision"), "fp8 accepted");
    sym_config_defaults(&c);
    CHECK(c.net_max_line_bytes == (size_t)64 << 20 && c.net_max_output_bytes == (size_t)64 << 20 &&
              c.net_id_window == 1000000,
          "net defaults");
    CHECK(!sym_config_parse(&c, "{\"net\": {\"max_line_bytes\": 2048, \"max_output_bytes\": 4096, \"id_window\": 5}}", &e) &&
              c.net_max_line_bytes == 2048 && c.net_max_output_bytes == 4096 && c.net_id_window == 5,
          "net section: %s", e.msg);
    bad("{\"net\": {\"max_line_bytes\": 10}}", "net.max_line_bytes");
    bad("{\"net\": {\"max_output_bytes\": 1e9}}", "net.max_output_bytes");
    bad("{\"net\": {\"id_window\": 0}}", "net.id_window");
    bad("{\"net\": {\"max_lines\": 1}}", "net.max_lines");

    bad("{\"frobnicate\": 1}", "frobnicate");
    bad("{\"model\": {\"path\": \"x\"}}", "model.path");
    bad("{\"shards\": {\"count\": 2, \"gpus\": [0]}}", "shards.gpus");
    bad("{\"model\": 3}", "model");
    bad("{\"model\": {\"dir\": 3}}", "model.dir");
    bad("{\"model\": {\"synthetic_seed\": -1}}", "model.synthetic_seed");
    bad("{\"model\": {\"size\": \"huge\"}}", "model.size");
    bad("{\"backend\": \"tpu\"}", "backend");
    bad("{\"precision\": \"fp8\"}", "precision");
    bad("{\"tower_precision\": [\"fp32\"]}", "tower_precision");
    bad("{\"tower_precision\": [\"fp32\",\"fp32\",\"fp64\",\"fp32\"]}", "tower_precision");
    bad("{\"shards\": {\"count\": 0}}", "shards.count");
    bad("{\"shards\": {\"endpoints\": [\"http://h:1\"]}}", "shards.endpoints");
    bad("{\"shards\": {\"endpoints\": [\"tcp://\"]}}", "shards.endpoints");
    bad("{\"shards\": {\"endpoints\": [7]}}", "shards.endpoints");
    bad("{\"shards\": {\"endpoints\": \"tcp://h:1\"}}", "shards.endpoints");
    bad("{\"shards\": {\"heartbeat_ms\": 5}}", "shards.heartbeat_ms");
    bad("{\"shards\": {\"heartbeat_ms\": 1000, \"timeout_ms\": 1500}}", "shards.timeout_ms");
    bad("{\"shards\": {\"join_timeout_ms\": 50}}", "shards.join_timeout_ms");
    bad("{\"shards\": {\"join_timeout_ms\": -1}}", "shards.join_timeout_ms");
    bad("{\"shards\": {\"shm\": 1}}", "shards.shm");
    bad("{\"shards\": {\"shm\": \"false\"}}", "shards.shm");
    bad("{\"shards\": {\"shm_spin_us\": -1}}", "shards.shm_spin_us");
    bad("{\"shards\": {\"shm_spin_us\": 2000000}}", "shards.shm_spin_us");
    {
        sym_config c;
        sym_err e = {{0}};
        sym_config_defaults(&c);
        CHECK(c.shard_shm == 1 && c.shard_shm_spin_us == 50, "shards.shm on by default, 50 us of spin");
        CHECK(!sym_config_parse(&c, "{\"shards\": {\"shm\": false, \"shm_spin_us\": 0.5}}", &e) && !c.shard_shm &&
                  c.shard_shm_spin_us == 0.5,
              "shards.shm false, shm_spin_us 0.5: %s", e.msg);
    }
    {
        sym_config c;
        sym_err e = {{0}};
        sym_config_defaults(&c);
        CHECK(!sym_config_parse(&c, "{\"shards\": {\"endpoints\": [\"tcp://10.0.0.2:7600\", \"\", \"ipc:///run/s2\"], "
                                    "\"heartbeat_ms\": 100, \"timeout_ms\": 300, \"join_timeout_ms\": 9000}}", &e),
              "endpoints: %s", e.msg);
        CHECK(c.n_shard_endpoints == 3 && !strcmp(sym_config_shard_endpoint(&c, 0), "tcp://10.0.0.2:7600") &&
                  !sym_config_shard_endpoint(&c, 1) && !strcmp(sym_config_shard_endpoint(&c, 2), "ipc:///run/s2") &&
                  !sym_config_shard_endpoint(&c, 3) && c.shard_heartbeat_ms == 100 && c.shard_timeout_ms == 300 &&
                  c.shard_join_timeout_ms == 9000,
              "endpoints: shard 1 and 3 in this process");
    }
    bad("{\"shards\": {\"count\": 1.5}}", "shards.count");
    bad("{\"shards\": {\"count\": \"2\"}}", "shards.count");
    bad("{\"shards\": {\"devices\": []}}", "shards.devices");
    bad("{\"shards\": {\"tower_split\": 3}}", "shards.tower_split");
    bad("{\"shards\": {\"tower_split\": 8}}", "shards.tower_split");
    bad("{\"shards\": {\"devices\": [-1]}}", "shards.devices");
    bad("{\"max_batch\": 0}", "max_batch");
    bad("{\"max_symbols\": 0}", "max_symbols");
    bad("{\"slots_per_shard\": 0}", "slots_per_shard");
    bad("{\"slots_per_shard\": \"8\"}", "slots_per_shard");
    bad("{\"host_tier_mb\": -1}", "host_tier_mb");
    bad("{\"host_tier_mb\": 1.5}", "host_tier_mb");
    bad("{\"rows_per_symbol\": 0}", "rows_per_symbol");
    bad("{\"rows_per_symbol\": 65}", "rows_per_symbol");
    bad("{\"queue_capacity\": 1}", "queue_capacity");
    bad("{\"hash_seed\": 0.5}", "hash_seed");
    bad("{\"status_interval_s\": -1}", "status_interval_s");
    bad("{\"idle_spin_us\": -3}", "idle_spin_us");
    bad("{\"max_batch\": 4", "JSON");
    bad("[1, 2]", "object");

    /* strict JSON: a key given twice, anything after the object, integers
     * written as integers (read exactly) */
    bad("{\"max_batch\": 64, \"max_batch\": 32}", "'max_batch' appears twice");
    bad("{\"shards\": {\"count\": 2, \"count\": 2}}", "'count' appears twice");
    bad("{\"max_batch\": 64} x", "byte 18 of 19: more after the JSON value");
    bad("{\"max_batch\": 64}{}", "byte 17 of 19: more after the JSON value");
    bad("{\"max_batch\": 64}\n}", "byte 18 of 19: more after the JSON value");
    bad("{\"max_batch\": 64.0}", "'max_batch': 64 is written with a fraction or exponent");
    bad("{\"max_batch\": 6.4e1}", "'max_batch': 64 is written with a fraction or exponent");
    bad("{\"shards\": {\"devices\": [0, 1.0]}}", "shards.devices");
    bad("{\"max_batch\": 18446744073709551617}", "'max_batch': 18446744073709551617 is not an integer in 1..65536");
    bad("{\"hash_seed\": 18446744073709551616}", "'hash_seed': 18446744073709551616 is not an integer");
    bad("{\"hash_seed\": -1}", "hash_seed");
    bad("{\"hash_seed\": 1e3}", "hash_seed");
    bad("{\"backend\": \"cpu\", \"backend\": \"cuda\"}", "'backend' appears twice");
    sym_config_defaults(&c);
    CHECK(!sym_config_parse(&c, "{\"hash_seed\": 9007199254740993, \"model\": {\"synthetic_seed\": 18446744073709551615}}",
                            &e) &&
              c.hash_seed == 9007199254740993ull && c.synthetic_seed == UINT64_MAX,
          "seeds read exactly: %s", e.msg);
    {
        /* a file is read to its length: a NUL byte in it is an error, not its end */
        char path[] = "/tmp/symserve-config-XXXXXX";
        int fd = mkstemp(path);
        static const char text[] = "{\"max_batch\": 64}\0{\"max_batch\": 1}";
        CHECK(fd >= 0 && write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1), "cannot write %s", path);
        if (fd >= 0) close(fd);
        sym_config_defaults(&c);
        int rc = sym_config_load(&c, path, &e);
        CHECK(rc && strstr(e.msg, "NUL") && strstr(e.msg, path) && c.max_batch == 128, "a NUL byte in the file: %s",
              rc ? e.msg : "(accepted)");
        unlink(path);
    }
    CHECK(sym_config_load(&c, "/nonexistent/config.json", &e) && strstr(e.msg, "/nonexistent/config.json"), "missing file");
    printf("%d failures\n", failures);
    return failures != 0;
}

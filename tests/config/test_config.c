/* config/config.h: the documented defaults, a full valid file, and every
 * bad key or value rejected with an error naming the key (and the config
 * left untouched). */
#include <stdio.h>
#include <string.h>

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
    sym_config_defaults(&c);
    CHECK(!sym_config_parse(&c, "{\"precision\": \"fp64\", \"model\": {\"dir\": null}}", &e), "fp64: %s", e.msg);
    CHECK(c.tower_precision[2] == SYM_PREC_FP64, "fp64");
    CHECK(!sym_config_parse(&c, "{\"precision\": null}", &e) && !c.precision_set, "precision null: %s", e.msg);
    CHECK(sym_config_set_precision(&c, "fp8", &e) && strstr(e.msg, "unknown precision"), "fp8 accepted");

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
    bad("{\"shards\": {\"count\": 1.5}}", "shards.count");
    bad("{\"shards\": {\"count\": \"2\"}}", "shards.count");
    bad("{\"shards\": {\"devices\": []}}", "shards.devices");
    bad("{\"shards\": {\"tower_split\": 3}}", "shards.tower_split");
    bad("{\"shards\": {\"tower_split\": 8}}", "shards.tower_split");
    bad("{\"shards\": {\"devices\": [-1]}}", "shards.devices");
    bad("{\"max_batch\": 0}", "max_batch");
    bad("{\"max_symbols\": 0}", "max_symbols");
    bad("{\"rows_per_symbol\": 0}", "rows_per_symbol");
    bad("{\"rows_per_symbol\": 65}", "rows_per_symbol");
    bad("{\"queue_capacity\": 1}", "queue_capacity");
    bad("{\"hash_seed\": 0.5}", "hash_seed");
    bad("{\"status_interval_s\": -1}", "status_interval_s");
    bad("{\"idle_spin_us\": -3}", "idle_spin_us");
    bad("{\"max_batch\": 4", "JSON");
    bad("[1, 2]", "object");
    CHECK(sym_config_load(&c, "/nonexistent/config.json", &e) && strstr(e.msg, "/nonexistent/config.json"), "missing file");
    printf("%d failures\n", failures);
    return failures != 0;
}

/* Bad input gets a clear error, never a crash: weights files that are
 * truncated, corrupt, or whose header lies; missing tensors, wrong shapes
 * and dtypes; configs that break MODEL.md's constraints; request files with
 * wrong columns or non-finite features. Each case checks the error names
 * the culprit. Also: a BF16 weights file loads as the bf16 rounding. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/requests_csv.h"
#include "kernels/weights.h"

static int fails, passes;
static char tmpdir[256];

static void expect_error(const char *what, int rc, const sym_err *e, const char *needle) {
    int ok = rc != 0 && strstr(e->msg, needle) != NULL;
    printf("%s %s: %s\n", ok ? "PASS" : "FAIL", what, rc ? e->msg : "(no error)");
    ok ? passes++ : fails++;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*len + 1);
    if (fread(b, 1, *len, f) != *len) *len = 0;
    fclose(f);
    b[*len] = 0;
    return b;
}

static void write_all(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

/* Rewrites a safetensors file with its header passed through edit(). */
static void write_with_header(const char *path, const char *src, size_t len, cJSON *hdr) {
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | (uint8_t)src[i];
    char *text = cJSON_PrintUnformatted(hdr);
    size_t tl = strlen(text), padded = (tl + 7) & ~(size_t)7;
    FILE *f = fopen(path, "wb");
    uint8_t n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (uint8_t)(padded >> (8 * i));
    fwrite(n8, 1, 8, f);
    fwrite(text, 1, tl, f);
    for (size_t i = tl; i < padded; i++) fputc(' ', f);
    fwrite(src + 8 + hlen, 1, len - 8 - hlen, f);
    fclose(f);
    free(text);
}

static cJSON *header_of(const char *src) {
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | (uint8_t)src[i];
    return cJSON_ParseWithLength(src + 8, hlen);
}

static void weights_cases(const char *golden) {
    char src_path[4096], path[4096];
    snprintf(src_path, sizeof src_path, "%s/weights.safetensors", golden);
    snprintf(path, sizeof path, "%s/w.safetensors", tmpdir);
    size_t len = 0;
    char *src = read_all(src_path, &len);
    if (!src || len < 16) {
        printf("FAIL cannot read %s\n", src_path);
        fails++;
        return;
    }
    sym_model_config cfg = sym_model_config_small();
    sym_weights w;
    sym_err e = {{0}};

    write_all(path, src, len / 2);
    expect_error("truncated weights file", sym_weights_load_file(&w, &cfg, path, &e), &e, "run past the end");
    write_all(path, src, 5);
    expect_error("5-byte weights file", sym_weights_load_file(&w, &cfg, path, &e), &e, "truncated");
    char *junk = malloc(4096);
    for (int i = 0; i < 4096; i++) junk[i] = (char)(i * 7 + 3);
    write_all(path, junk, 4096);
    expect_error("random bytes", sym_weights_load_file(&w, &cfg, path, &e), &e, "header");
    memcpy(junk, src, 8);
    write_all(path, junk, 4096);
    expect_error("header length past the end", sym_weights_load_file(&w, &cfg, path, &e), &e, "header length");
    free(junk);
    char *bad = malloc(len);
    memcpy(bad, src, len);
    bad[9] = '#';
    write_all(path, bad, len);
    expect_error("header not JSON", sym_weights_load_file(&w, &cfg, path, &e), &e, "not a JSON object");
    free(bad);
    snprintf(path, sizeof path, "%s/nonexistent.safetensors", tmpdir);
    expect_error("missing file", sym_weights_load_file(&w, &cfg, path, &e), &e, "cannot open");
    snprintf(path, sizeof path, "%s/w.safetensors", tmpdir);

    const char *victim = "towers.2.blocks.1.layer.k_proj.weight";
    cJSON *h = header_of(src);
    cJSON *offs = cJSON_GetObjectItem(cJSON_GetObjectItem(h, victim), "data_offsets");
    cJSON_SetNumberValue(cJSON_GetArrayItem(offs, 1), 1e12);
    write_with_header(path, src, len, h);
    cJSON_Delete(h);
    expect_error("offsets past the end", sym_weights_load_file(&w, &cfg, path, &e), &e, victim);

    h = header_of(src);
    offs = cJSON_GetObjectItem(cJSON_GetObjectItem(h, victim), "data_offsets");
    cJSON_SetNumberValue(cJSON_GetArrayItem(offs, 1), cJSON_GetArrayItem(offs, 1)->valuedouble - 4);
    write_with_header(path, src, len, h);
    cJSON_Delete(h);
    expect_error("offsets span the wrong size", sym_weights_load_file(&w, &cfg, path, &e), &e, "need");

    h = header_of(src);
    cJSON_DeleteItemFromObject(h, victim);
    write_with_header(path, src, len, h);
    cJSON_Delete(h);
    /* its bytes stay: a hole in the byte buffer (test_model_files drops both) */
    expect_error("entry dropped from the header", sym_weights_load_file(&w, &cfg, path, &e), &e,
                 "between tensors 'towers.2.blocks.1.layer.g_proj.weight' and 'towers.2.blocks.1.layer.out_proj.weight'");

    h = header_of(src);
    cJSON *shape = cJSON_GetObjectItem(cJSON_GetObjectItem(h, victim), "shape");
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 0), 64);
    cJSON_SetNumberValue(cJSON_GetArrayItem(shape, 1), 256);
    write_with_header(path, src, len, h);
    cJSON_Delete(h);
    expect_error("wrong shape", sym_weights_load_file(&w, &cfg, path, &e), &e, "has shape [64, 256], the config needs [128, 128]");

    h = header_of(src);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, victim), "dtype", cJSON_CreateString("I32"));
    write_with_header(path, src, len, h);
    cJSON_Delete(h);
    expect_error("wrong dtype", sym_weights_load_file(&w, &cfg, path, &e), &e, "dtype I32");

    /* a config that does not match the file's shapes */
    sym_model_config deeper = cfg;
    deeper.depth = 3;
    expect_error("config deeper than the file", sym_weights_load_file(&w, &deeper, src_path, &e), &e,
                 "missing tensor towers.0.blocks.2");

    /* NaN in a weight */
    h = header_of(src);
    cJSON *item = cJSON_GetObjectItem(h, victim);
    size_t at = (size_t)cJSON_GetArrayItem(cJSON_GetObjectItem(item, "data_offsets"), 0)->valuedouble;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | (uint8_t)src[i];
    char *nan_copy = malloc(len);
    memcpy(nan_copy, src, len);
    float nanv = NAN;
    memcpy(nan_copy + 8 + hlen + at + 12, &nanv, 4);
    write_all(path, nan_copy, len);
    free(nan_copy);
    cJSON_Delete(h);
    expect_error("NaN weight", sym_weights_load_file(&w, &cfg, path, &e), &e, "non-finite value at index 3");

    /* BF16 file: every tensor converted; loads as the bf16 rounding */
    sym_weights ref;
    if (sym_weights_load_file(&ref, &cfg, src_path, &e)) {
        printf("FAIL reference load: %s\n", e.msg);
        fails++;
    } else {
        cJSON *hb = cJSON_CreateObject();
        size_t off = 0;
        uint16_t *data = malloc(ref.arena_floats * 2);
        for (int i = 0; i < ref.n_specs; i++) {
            const sym_tensor_spec *s = &ref.specs[i];
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "dtype", "BF16");
            cJSON *sh = cJSON_AddArrayToObject(t, "shape");
            for (int d = 0; d < s->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)s->shape[d]));
            cJSON *of = cJSON_AddArrayToObject(t, "data_offsets");
            cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
            cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + 2 * (size_t)s->numel)));
            for (int64_t k = 0; k < s->numel; k++) data[off / 2 + (size_t)k] = sym_f32_to_bf16(ref.arena[s->offset + (size_t)k]);
            off += 2 * (size_t)s->numel;
            cJSON_AddItemToObject(hb, s->name, t);
        }
        char *text = cJSON_PrintUnformatted(hb);
        size_t tl = strlen(text);
        FILE *f = fopen(path, "wb");
        uint8_t n8[8];
        for (int i = 0; i < 8; i++) n8[i] = (uint8_t)(tl >> (8 * i));
        fwrite(n8, 1, 8, f);
        fwrite(text, 1, tl, f);
        fwrite(data, 1, off, f);
        fclose(f);
        free(text);
        free(data);
        cJSON_Delete(hb);
        for (size_t k = 0; k < ref.arena_floats; k++) ref.arena[k] = sym_bf16_to_f32(sym_f32_to_bf16(ref.arena[k]));
        int rc = sym_weights_load_file(&w, &cfg, path, &e);
        int same = !rc && !memcmp(w.arena, ref.arena, ref.arena_floats * 4);
        printf("%s BF16 weights file loads as the bf16 rounding%s%s\n", same ? "PASS" : "FAIL", rc ? ": " : "",
               rc ? e.msg : "");
        same ? passes++ : fails++;
        if (!rc) sym_weights_free(&w);
        sym_weights_free(&ref);
    }
    free(src);
}

static void config_case(const char *what, const char *json, const char *needle) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    write_all(path, json, strlen(json));
    sym_model_config c;
    sym_err e = {{0}};
    expect_error(what, sym_model_config_load(path, &c, &e), &e, needle);
}

static void csv_case(const char *what, const char *text, const char *needle) {
    char path[4096];
    snprintf(path, sizeof path, "%s/req.csv", tmpdir);
    write_all(path, text, strlen(text));
    sym_request_file rf;
    sym_err e = {{0}};
    expect_error(what, sym_requests_load(path, 3, &rf, &e), &e, needle);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/symserve-bad-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    weights_cases(argv[1]);

    config_case("config: 2H not divisible by 64",
                "{\"hidden_size\":100,\"proj_size\":256,\"tower_depth\":2,\"num_heads\":4,\"num_features\":79}", "divisible by 64");
    config_case("config: odd head size", "{\"hidden_size\":96,\"proj_size\":256,\"tower_depth\":2,\"num_heads\":32,\"num_features\":79}",
                "must be even");
    config_case("config: missing key", "{\"hidden_size\":128,\"proj_size\":256,\"num_heads\":8,\"num_features\":79}", "tower_depth");
    config_case("config: non-integer", "{\"hidden_size\":128.5,\"proj_size\":256,\"tower_depth\":2,\"num_heads\":8,\"num_features\":79}",
                "hidden_size\" must be an integer");
    config_case("config: negative", "{\"hidden_size\":128,\"proj_size\":-1,\"tower_depth\":2,\"num_heads\":8,\"num_features\":79}",
                "positive");
    config_case("config: not JSON", "hidden_size=128", "not a JSON object");

    csv_case("csv: row with a missing column", "unique_id,symbol,feature_00,feature_01,feature_02\n1,SYM_000,0.1,0.2\n",
             "req.csv:2: 4 columns, the header has 5");
    csv_case("csv: non-numeric feature", "unique_id,symbol,feature_00,feature_01,feature_02\n1,SYM_000,0.1,abc,0.3\n",
             "feature_01 'abc' is not a finite number");
    csv_case("csv: NaN feature", "unique_id,symbol,feature_00,feature_01,feature_02\n1,SYM_000,nan,0.2,0.3\n",
             "feature_00 'nan'");
    csv_case("csv: infinite feature", "unique_id,symbol,feature_00,feature_01,feature_02\n1,SYM_000,0.1,0.2,1e39\n",
             "feature_02 '1e39'");
    csv_case("csv: too few feature columns", "unique_id,symbol,feature_00,feature_01\n1,SYM_000,0.1,0.2\n",
             "2 feature columns, the model takes 3");
    csv_case("csv: gap in feature columns", "unique_id,symbol,feature_00,feature_02,feature_03\n1,SYM_000,0.1,0.2,0.3\n",
             "feature_01 missing");
    csv_case("csv: no symbol column", "unique_id,feature_00,feature_01,feature_02\n1,0.1,0.2,0.3\n", "symbol");
    csv_case("csv: bad unique_id", "unique_id,symbol,feature_00,feature_01,feature_02\n-4,SYM_000,0.1,0.2,0.3\n",
             "unique_id '-4'");
    csv_case("csv: symbol with a space", "unique_id,symbol,feature_00,feature_01,feature_02\n1,SYM 0,0.1,0.2,0.3\n",
             "space");
    csv_case("csv: empty symbol", "unique_id,symbol,feature_00,feature_01,feature_02\n1,,0.1,0.2,0.3\n", "empty symbol");

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    printf("%d passed, %d failed\n", passes, fails);
    return fails ? 1 : 0;
}

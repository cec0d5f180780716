/* A model folder is read as strictly as the safetensors format and JSON
 * define it: a table of mutations of tests/data/golden_small (each written
 * into a temporary copy, loaded, and expected to be refused with an error
 * naming the culprit, or, for the few that keep the meaning, loaded to the
 * same weights), then a seeded pass of random byte edits to the header of a
 * tiny model that symserve writes itself: every edit is refused unless it
 * only moved insignificant whitespace, and then the weights are unchanged.
 * (That the golden folder's weights give expected_f64.csv is
 * test_cpu_golden's job.) */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/weights.h"
#include "tests/check.h"

static char dir[256]; /* the temporary model folder */
static char wpath[300], cpath[300];

/* the golden folder, in memory */
static char *g_file;   /* weights.safetensors */
static size_t g_len;
static size_t g_hlen;  /* the header's length as stored */
static char *g_json;   /* the header without its padding, NUL-terminated */
static const char *g_data;
static size_t g_dlen;
static char *g_cfg;    /* config.json */
static sym_weights g_ref; /* the golden weights, loaded once */

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) free(b), b = NULL;
    fclose(f);
    if (!b) return NULL;
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

static void write_all(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* weights.safetensors = length prefix + hdr[0, hlen) exactly as given +
 * data (the prefix always matches the header: the header is what is
 * tested). */
static void write_weights_n(const char *hdr, size_t hlen, const void *data, size_t dlen) {
    char *b = malloc(8 + hlen + dlen);
    for (int i = 0; i < 8; i++) b[i] = (char)(uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, hdr, hlen);
    if (dlen) memcpy(b + 8 + hlen, data, dlen);
    write_all(wpath, b, 8 + hlen + dlen);
    free(b);
}
static void write_weights(const char *hdr, const void *data, size_t dlen) { write_weights_n(hdr, strlen(hdr), data, dlen); }
static void write_config(const char *text) { write_all(cpath, text, strlen(text)); }
static void restore(void) {
    write_all(wpath, g_file, g_len);
    write_config(g_cfg);
}

static char *replaced(const char *s, const char *old, const char *with) {
    const char *at = strstr(s, old);
    if (!at) {
        fprintf(stderr, "test bug: '%.80s' not in the text\n", old);
        exit(1);
    }
    size_t a = (size_t)(at - s), o = strlen(old), w = strlen(with), n = strlen(s);
    char *r = malloc(n - o + w + 1);
    memcpy(r, s, a);
    memcpy(r + a, with, w);
    memcpy(r + a + w, at + o, n - a - o + 1);
    return r;
}

/* Loads the folder: the error (rc -1), or 0 with the weights compared to
 * the golden ones in *same. */
static int load(sym_err *e, int *same) {
    sym_weights w;
    memset(e, 0, sizeof *e);
    if (sym_weights_load_dir(&w, dir, e)) return -1;
    *same = w.arena_floats == g_ref.arena_floats && !memcmp(w.arena, g_ref.arena, w.arena_floats * 4);
    sym_weights_free(&w);
    return 0;
}

static void refused(const char *what, const char *needle, const char *needle2) {
    sym_err e;
    int same = 0;
    int rc = load(&e, &same);
    CHECKV(rc && strstr(e.msg, needle) && (!needle2 || strstr(e.msg, needle2)), "%-44s refused: %s", what,
           rc ? e.msg : "(loaded)");
    restore();
}

static void accepted(const char *what) {
    sym_err e;
    int same = 0;
    int rc = load(&e, &same);
    CHECKV(!rc && same, "%-44s loads the same weights%s%s", what, rc ? ": " : "", rc ? e.msg : "");
    restore();
}

/* ---- the golden header's facts the cases edit ---- */

typedef struct {
    char name[160];
    char shape[64]; /* as the header writes it, e.g. [128,128] */
    unsigned long long b, e;
    char entry[320]; /* "name":{...} as the header writes it */
} tinfo;

static int find_tensor(const cJSON *h, const char *name, tinfo *t) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(h, name);
    if (!it) return -1;
    snprintf(t->name, sizeof t->name, "%s", name);
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape"), *d;
    size_t k = (size_t)snprintf(t->shape, sizeof t->shape, "[");
    int i = 0;
    cJSON_ArrayForEach(d, sh) {
        k += (size_t)snprintf(t->shape + k, sizeof t->shape - k, "%s%.0f", i++ ? "," : "", d->valuedouble);
    }
    snprintf(t->shape + k, sizeof t->shape - k, "]");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    t->b = (unsigned long long)cJSON_GetArrayItem(o, 0)->valuedouble;
    t->e = (unsigned long long)cJSON_GetArrayItem(o, 1)->valuedouble;
    snprintf(t->entry, sizeof t->entry, "\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%llu,%llu]}", name,
             t->shape, t->b, t->e);
    if (!strstr(g_json, t->entry)) {
        fprintf(stderr, "test bug: the golden header does not write %s as %s\n", name, t->entry);
        exit(1);
    }
    return 0;
}

/* The tensor whose data_offsets end (want_end) or begin at `at`. */
static const char *neighbour(const cJSON *h, unsigned long long at, int want_end) {
    const cJSON *it;
    cJSON_ArrayForEach(it, h) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (o && (unsigned long long)cJSON_GetArrayItem(o, want_end ? 1 : 0)->valuedouble == at) return it->string;
    }
    return NULL;
}

/* The header with V's data_offsets written as `offsets`. */
static char *with_offsets(const tinfo *v, const char *offsets) {
    char old[96], neu[160];
    snprintf(old, sizeof old, "\"data_offsets\":[%llu,%llu]}", v->b, v->e);
    snprintf(neu, sizeof neu, "\"data_offsets\":%s}", offsets);
    char *entry = replaced(v->entry, old, neu), *r = replaced(g_json, v->entry, entry);
    free(entry);
    return r;
}

static void offsets_case(const char *what, const tinfo *v, const char *offsets, const char *needle, const char *needle2) {
    char *h = with_offsets(v, offsets);
    write_weights(h, g_data, g_dlen);
    free(h);
    refused(what, needle, needle2);
}

static void header_case(const char *what, const char *old, const char *with, const char *needle, const char *needle2) {
    char *h = replaced(g_json, old, with);
    write_weights(h, g_data, g_dlen);
    free(h);
    if (needle) refused(what, needle, needle2);
    else accepted(what);
}

static void config_case(const char *what, const char *text, const char *needle, const char *needle2) {
    write_config(text);
    if (needle) refused(what, needle, needle2);
    else accepted(what);
}

static void golden_cases(void) {
    cJSON *h = cJSON_Parse(g_json);
    tinfo v, first, last, pred, succ;
    char buf[512], buf2[512];
    if (find_tensor(h, "towers.2.blocks.1.layer.k_proj.weight", &v) || find_tensor(h, neighbour(h, 0, 0), &first) ||
        find_tensor(h, neighbour(h, g_dlen, 1), &last) || find_tensor(h, neighbour(h, v.b, 1), &pred) ||
        find_tensor(h, neighbour(h, v.e, 0), &succ)) {
        fprintf(stderr, "test bug: the golden header lacks a tensor this test edits\n");
        exit(1);
    }
    cJSON_Delete(h);

    /* the byte buffer is indexed exactly: no overlap, no hole, nothing after */
    snprintf(buf, sizeof buf, "[%llu,%llu]", v.b + 1, v.e + 1);
    offsets_case("offsets shifted one byte up", &v, buf, "belong to no tensor", pred.name);
    snprintf(buf, sizeof buf, "[%llu,%llu]", v.b - 1, v.e - 1);
    offsets_case("offsets shifted one byte down", &v, buf, "overlap", pred.name);
    snprintf(buf, sizeof buf, "[%llu,%llu]", v.b + 1, v.e);
    offsets_case("begin shifted one byte", &v, buf, "need", v.name);
    snprintf(buf, sizeof buf, "[%llu,%llu]", v.b, v.e + 1);
    offsets_case("end shifted one byte", &v, buf, "need", v.name);
    snprintf(buf, sizeof buf, "[%llu,%llu]", pred.b, pred.b + (v.e - v.b));
    offsets_case("a range overlapping the one before", &v, buf, "overlap", v.name);
    /* a tensor dropped from the header: its bytes are a hole */
    snprintf(buf, sizeof buf, "%s,", v.entry);
    header_case("a hole between two tensors", buf, "", "belong to no tensor", succ.name);
    snprintf(buf, sizeof buf, "%s,", first.entry);
    header_case("a hole before the first tensor", buf, "", "before the first tensor", "[0, 4)");
    {
        char *d = malloc(g_dlen + 4);
        memcpy(d, g_data, g_dlen);
        memset(d + g_dlen, 0, 4);
        write_weights(g_json, d, g_dlen + 4);
        refused("4 bytes after the last tensor", "after the last tensor", last.name);
        write_weights("{}", d, g_dlen + 4);
        refused("an empty header before data", "belong to no tensor", NULL);
        free(d);
    }
    write_weights(g_json, g_data, g_dlen - 4);
    refused("the last tensor cut short", "run past the end", last.name);

    /* the header: one JSON object, padded with spaces only */
    snprintf(buf, sizeof buf, "{%s,", v.entry);
    header_case("a tensor named twice", "{", buf, "appears twice", v.name);
    {
        size_t n = strlen(g_json);
        char *t = malloc(n + 16);
        static const struct {
            const char *what, *pre, *post, *needle;
        } pads[] = {
            {"header padded with 7 spaces", "", "       ", NULL},
            {"header padded with no space", "", "", NULL},
            {"garbage after the header's object", "", "x", "more after the JSON value"},
            {"a second object after the header's", "", "{}", "more after the JSON value"},
            {"a newline after the header's object", "", "\n", "padded with spaces"},
            {"a space before the header's object", " ", "", "begin with '{'"},
        };
        for (size_t i = 0; i < sizeof pads / sizeof *pads; i++) {
            snprintf(t, n + 16, "%s%s%s", pads[i].pre, g_json, pads[i].post);
            write_weights(t, g_data, g_dlen);
            if (pads[i].needle) refused(pads[i].what, pads[i].needle, NULL);
            else accepted(pads[i].what);
        }
        memcpy(t, g_json, n);
        memcpy(t + n, "  \0\0", 4);
        write_weights_n(t, n + 4, g_data, g_dlen);
        refused("header padded with NUL bytes", "NUL", NULL);
        free(t);
    }
    header_case("a header that is a list", g_json, "[]", "not a JSON object", NULL);

    /* each entry: exactly dtype, shape and data_offsets, integers written as such */
    snprintf(buf, sizeof buf, "[%llu,%llu],\"extra\":1", v.b, v.e);
    offsets_case("an entry with an extra key", &v, buf, "'extra'", v.name);
    snprintf(buf, sizeof buf, "[%llu.0,%llu]", v.b, v.e);
    offsets_case("offset written 1.0-style", &v, buf, "data_offsets", v.name);
    snprintf(buf, sizeof buf, "[%llu,%llue0]", v.b, v.e);
    offsets_case("offset written 1e3-style", &v, buf, "data_offsets", v.name);
    offsets_case("offset -1", &first, "[-1,3]", "data_offsets", first.name);
    snprintf(buf, sizeof buf, "[18446744073709551616,%llu]", v.e);
    offsets_case("offset 2^64", &v, buf, "data_offsets", v.name);
    snprintf(buf, sizeof buf, "[%llu,%llu]", v.e, v.b);
    offsets_case("begin after end", &v, buf, "data_offsets", v.name);
    snprintf(buf, sizeof buf, "[%llu]", v.b);
    offsets_case("one offset", &v, buf, "data_offsets", v.name);
    snprintf(buf, sizeof buf, "[9007199254740993,%llu]", 9007199254740993ull + (v.e - v.b));
    offsets_case("offset 2^53 + 1, read exactly", &v, buf, "[9007199254740993, ", v.name);
    snprintf(buf, sizeof buf, "[18446744073709551615,%llu]", v.e);
    offsets_case("offset 2^64 - 1 (begin after end)", &v, buf, "data_offsets", v.name);
    snprintf(buf, sizeof buf, "\"shape\":%s", v.shape);
    snprintf(buf2, sizeof buf2, "\"shape\":%.4s.0%s", v.shape, v.shape + 4); /* [128.0,128] */
    header_case("a shape entry written 128.0", buf, buf2, "shape", NULL);
    header_case("a shape entry -1", "\"shape\":[1],", "\"shape\":[-1],", "shape", NULL);
    header_case("an unknown dtype", "\"dtype\":\"F32\"", "\"dtype\":\"F31\"", "dtype", NULL);
    header_case("a dtype that is not a string", "\"dtype\":\"F32\"", "\"dtype\":32", "dtype", NULL);
    header_case("an entry without dtype", "\"dtype\":\"F32\",", "", "dtype", NULL);
    header_case("an entry that is a list", "{", "{\"x\":[1],", "'x'", NULL);

    /* __metadata__: a map of strings to strings */
    header_case("__metadata__ of strings", "{", "{\"__metadata__\":{\"format\":\"pt\",\"a\":\"\"},", NULL, NULL);
    header_case("__metadata__ with a number", "{", "{\"__metadata__\":{\"format\":1},", "__metadata__", "format");
    header_case("__metadata__ a string", "{", "{\"__metadata__\":\"pt\",", "__metadata__", NULL);
    header_case("__metadata__ nested", "{", "{\"__metadata__\":{\"a\":{\"b\":\"c\"}},", "__metadata__", "'a'");

    /* tensors and config: every tensor the config needs, and no other */
    {
        snprintf(buf, sizeof buf, "{\"extra.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%zu,%zu]},", g_dlen,
                 g_dlen + 4);
        char *hd = replaced(g_json, "{", buf);
        char *d = malloc(g_dlen + 4);
        memcpy(d, g_data, g_dlen);
        memset(d + g_dlen, 0, 4);
        write_weights(hd, d, g_dlen + 4);
        refused("a tensor the config does not use", "1 tensor the config does not use: 'extra.weight'", NULL);
        free(hd);
        free(d);
    }
    snprintf(buf, sizeof buf, ",%s", last.entry);
    if (strstr(g_json, buf)) {
        char *hd = replaced(g_json, buf, "");
        write_weights(hd, g_data, last.b);
        free(hd);
    } else {
        snprintf(buf, sizeof buf, "%s,", last.entry);
        char *hd = replaced(g_json, buf, "");
        write_weights(hd, g_data, last.b);
        free(hd);
    }
    snprintf(buf, sizeof buf, "missing tensor %s", last.name);
    refused("a tensor missing (entry and bytes)", buf, NULL);
    header_case("a tensor of the wrong shape", "\"shape\":[128,128]", "\"shape\":[64,256]",
                "has shape [64, 256], the config needs [128, 128]", NULL);

    /* config.json */
    config_case("the golden config", g_cfg, NULL, NULL);
    snprintf(buf, sizeof buf, "%sx", g_cfg);
    config_case("config.json with trailing garbage", buf, "more after the JSON value", "config.json");
    snprintf(buf, sizeof buf, "%s{}", g_cfg);
    config_case("config.json with a second object", buf, "more after the JSON value", "config.json");
    char *c = replaced(g_cfg, "\"tower_depth\": 2", "\"tower_depth\": 2, \"tower_depth\": 2");
    config_case("config.json with a duplicate key", c, "'tower_depth' appears twice", "config.json");
    free(c);
    c = replaced(g_cfg, "\"tower_depth\": 2", "\"tower_depth\": 2.0");
    config_case("config.json with tower_depth 2.0", c, "\"tower_depth\" must be an integer", "config.json");
    free(c);
    c = replaced(g_cfg, "\"hidden_size\": 128", "\"hidden_size\": 1.28e2");
    config_case("config.json with hidden_size 1.28e2", c, "\"hidden_size\" must be an integer", NULL);
    free(c);
    c = replaced(g_cfg, "\"hidden_size\": 128", "\"hidden_size\": 4294967424");
    config_case("config.json with hidden_size 2^32 + 128", c, "\"hidden_size\"", "out of range");
    free(c);
    c = replaced(g_cfg, "\"hidden_size\": 128", "\"hidden_size\": \"128\"");
    config_case("config.json with hidden_size \"128\"", c, "\"hidden_size\" must be an integer", NULL);
    free(c);
    c = replaced(g_cfg, "{", "{\"model_type\": \"ensemble\", ");
    config_case("config.json with a key symserve does not read", c, NULL, NULL);
    free(c);
    c = replaced(g_cfg, "\"tower_depth\": 2", "\"tower_depth\": 1");
    config_case("tower_depth 1 against two blocks", c, "tensors the config does not use, first 'towers.0.blocks.1.",
                "is tower_depth 1 right? the file has blocks 0..1");
    free(c);
}

/* ---- random edits to the header of a tiny model symserve writes ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* The text without JSON whitespace outside strings: two headers with the
 * same squeeze say the same thing. */
static size_t squeeze(const char *s, size_t n, char *out) {
    size_t k = 0;
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\' && i + 1 < n) out[k++] = c, c = s[++i];
            else if (c == '"') in_str = 0;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        } else if (c == '"') {
            in_str = 1;
        }
        out[k++] = c;
    }
    return k;
}

static void random_edits(void) {
    sym_model_config tiny = {32, 8, 1, 2, 3};
    sym_weights w;
    sym_err e = {{0}};
    if (sym_weights_synthetic(&w, &tiny, 7, &e) || sym_weights_save(&w, wpath, &e)) {
        CHECKV(0, "tiny model: %s", e.msg);
        return;
    }
    char cfg[256];
    snprintf(cfg, sizeof cfg,
             "{\"hidden_size\": %d, \"proj_size\": %d, \"tower_depth\": %d, \"num_heads\": %d, \"num_features\": %d}\n",
             tiny.hidden, tiny.proj, tiny.depth, tiny.heads, tiny.features);
    write_config(cfg);
    size_t len = 0;
    char *file = read_all(wpath, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (uint8_t)file[i];
    sym_weights back;
    int rc = sym_weights_load_dir(&back, dir, &e);
    CHECKV(!rc && !memcmp(back.arena, w.arena, w.arena_floats * 4), "symserve's own tiny model (%d tensors) loads back%s%s",
           w.n_specs, rc ? ": " : "", rc ? e.msg : "");
    if (rc) {
        free(file);
        sym_weights_free(&w);
        return;
    }
    sym_weights_free(&back);
    const char *hdr = file + 8, *data = file + 8 + hlen;
    size_t dlen = len - 8 - (size_t)hlen;
    char *sq0 = malloc(hlen + 2), *sq = malloc(hlen + 2), *m = malloc(hlen + 2);
    size_t n0 = squeeze(hdr, hlen, sq0);
    static const char interesting[] = "{}[]\":,0123456789-.eE \\\n";
    enum { CASES = 3000 };
    int refusals = 0, same_meaning = 0, bad = 0;
    for (int c = 0; c < CASES; c++) {
        memcpy(m, hdr, hlen);
        size_t n = hlen, at = (size_t)(next() % hlen);
        uint64_t r = next();
        char byte = r & 1 ? interesting[(r >> 8) % (sizeof interesting - 1)] : (char)(r >> 8);
        switch ((r >> 4) % 3) {
        case 0: m[at] = byte; break;
        case 1: memmove(m + at + 1, m + at, n - at), m[at] = byte, n++; break;
        case 2: memmove(m + at, m + at + 1, n - at - 1), n--; break;
        }
        write_weights_n(m, n, data, dlen);
        if (sym_weights_load_dir(&back, dir, &e)) {
            refusals++;
            continue;
        }
        int same_text = squeeze(m, n, sq) == n0 && !memcmp(sq, sq0, n0);
        int same_w = !memcmp(back.arena, w.arena, w.arena_floats * 4);
        sym_weights_free(&back);
        if (same_text && same_w) {
            same_meaning++;
            continue;
        }
        if (bad++ < 5)
            printf("FAIL accepted edit %d at byte %zu (0x%02x): header %s, weights %s\n", c, at, (unsigned char)byte,
                   same_text ? "same" : "changed", same_w ? "same" : "changed");
    }
    CHECKV(!bad, "%d random header edits: %d refused, %d only moved whitespace and loaded the same, %d accepted wrongly", CASES,
           refusals, same_meaning, bad);
    free(sq0);
    free(sq);
    free(m);
    free(file);
    sym_weights_free(&w);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s GOLDEN_SMALL_DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/weights.safetensors", argv[1]);
    g_file = read_all(path, &g_len);
    snprintf(path, sizeof path, "%s/config.json", argv[1]);
    size_t clen = 0;
    g_cfg = read_all(path, &clen);
    if (!g_file || !g_cfg || g_len < 8) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | (uint8_t)g_file[i];
    g_hlen = (size_t)h;
    g_json = malloc(g_hlen + 1);
    memcpy(g_json, g_file + 8, g_hlen);
    g_json[g_hlen] = 0;
    for (size_t n = g_hlen; n && g_json[n - 1] == ' ';) g_json[--n] = 0;
    g_data = g_file + 8 + g_hlen;
    g_dlen = g_len - 8 - g_hlen;

    snprintf(dir, sizeof dir, "/tmp/symserve-model-files-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", dir);
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    restore();
    sym_err e = {{0}};
    int rc = sym_weights_load_dir(&g_ref, dir, &e);
    CHECKV(!rc, "the golden folder, copied, loads%s%s", rc ? ": " : "", rc ? e.msg : "");
    if (!rc) {
        golden_cases();
        sym_weights_free(&g_ref);
    }
    random_edits();

    remove(wpath);
    remove(cpath);
    rmdir(dir);
    free(g_file);
    free(g_cfg);
    free(g_json);
    printf("%d failures\n", failures);
    return failures != 0;
}

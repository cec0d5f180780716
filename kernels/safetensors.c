/* safetensors.h over the strict JSON reader: the header is checked entry by
 * entry (each error names its tensor), then the entries, sorted by their
 * offsets, are checked to tile the byte buffer. */
#include "kernels/safetensors.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json.h"

#define MAX_HEADER 100000000u /* the format's own limit */

static sym_dtype parse_dtype(const char *s, size_t *elsize) {
    static const struct {
        const char *name;
        size_t size;
        sym_dtype dt;
    } known[] = {
        {"F32", 4, SYM_DT_F32},     {"BF16", 2, SYM_DT_BF16},   {"F16", 2, SYM_DT_F16},     {"F64", 8, SYM_DT_F64},
        {"I64", 8, SYM_DT_OTHER},   {"U64", 8, SYM_DT_OTHER},   {"I32", 4, SYM_DT_OTHER},   {"U32", 4, SYM_DT_OTHER},
        {"I16", 2, SYM_DT_OTHER},   {"U16", 2, SYM_DT_OTHER},   {"I8", 1, SYM_DT_OTHER},    {"U8", 1, SYM_DT_OTHER},
        {"BOOL", 1, SYM_DT_OTHER},  {"F8_E4M3", 1, SYM_DT_OTHER}, {"F8_E5M2", 1, SYM_DT_OTHER},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(s, known[i].name)) return *elsize = known[i].size, known[i].dt;
    *elsize = 0;
    return SYM_DT_OTHER;
}

/* A size or offset: an integer literal without a sign ("-0" is not one). */
static int read_size(const cJSON *v, uint64_t *out) {
    return sym_json_is_int(v) && v->valuestring[0] != '-' && !sym_json_u64(v, out) ? 0 : -1;
}

static int parse_tensor(const cJSON *item, sym_st_tensor *t, uint64_t *end, size_t data_len, sym_err *e) {
    const char *name = item->string;
    if (!cJSON_IsObject(item)) return sym_fail(e, "tensor '%.100s': header entry is not an object", name);
    if (strlen(name) >= sizeof t->name)
        return sym_fail(e, "tensor '%.60s...': name longer than %zu bytes", name, sizeof t->name - 1);
    strcpy(t->name, name);
    const cJSON *dt = NULL, *shape = NULL, *offs = NULL, *k;
    cJSON_ArrayForEach(k, item) {
        if (!strcmp(k->string, "dtype")) dt = k;
        else if (!strcmp(k->string, "shape")) shape = k;
        else if (!strcmp(k->string, "data_offsets")) offs = k;
        else
            return sym_fail(e,
                            "tensor '%s': header entry has the key '%.60s' (an entry holds exactly dtype, shape and "
                            "data_offsets)",
                            name, k->string);
    }
    if (!dt || !shape || !offs)
        return sym_fail(e, "tensor '%s': header entry lacks %s", name, !dt ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!cJSON_IsString(dt)) return sym_fail(e, "tensor '%s': dtype is not a string", name);
    size_t elsize;
    t->dtype = parse_dtype(dt->valuestring, &elsize);
    if (!elsize) return sym_fail(e, "tensor '%s': unknown dtype '%.16s'", name, dt->valuestring);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->valuestring);

    int nd = cJSON_GetArraySize(shape);
    if (!cJSON_IsArray(shape) || nd > 8)
        return sym_fail(e, "tensor '%s': shape must be a list of at most 8 sizes", name);
    t->ndim = nd;
    uint64_t numel = 1, d;
    int i = 0;
    cJSON_ArrayForEach(k, shape) {
        if (read_size(k, &d))
            return sym_fail(e,
                            "tensor '%s': shape entry %d is not a size (an integer >= 0 written without sign, fraction "
                            "or exponent)",
                            name, i);
        if (d > (1ull << 40) || (d && numel > (1ull << 40) / d)) return sym_fail(e, "tensor '%s': shape too large", name);
        t->shape[i++] = (int64_t)d;
        numel *= d;
    }

    uint64_t b0, b1;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || read_size(offs->child, &b0) ||
        read_size(offs->child->next, &b1))
        return sym_fail(e,
                        "tensor '%s': data_offsets must be [begin, end], two integers >= 0 written without sign, "
                        "fraction or exponent",
                        name);
    if (b0 > b1)
        return sym_fail(e, "tensor '%s': data_offsets [%llu, %llu): begin after end", name, (unsigned long long)b0,
                        (unsigned long long)b1);
    if (b1 - b0 != numel * elsize)
        return sym_fail(e, "tensor '%s': data_offsets span %llu bytes but shape and dtype need %llu", name,
                        (unsigned long long)(b1 - b0), (unsigned long long)(numel * elsize));
    if (b1 > data_len)
        return sym_fail(e, "tensor '%s': data_offsets [%llu, %llu) run past the end of the file's %zu data bytes", name,
                        (unsigned long long)b0, (unsigned long long)b1, data_len);
    t->offset = (size_t)b0;
    t->nbytes = (size_t)(b1 - b0);
    *end = b1;
    return 0;
}

static int parse_metadata(const cJSON *m, sym_err *e) {
    if (!cJSON_IsObject(m)) return sym_fail(e, "__metadata__ must be an object mapping strings to strings");
    const cJSON *k;
    cJSON_ArrayForEach(k, m) {
        if (!cJSON_IsString(k))
            return sym_fail(e, "__metadata__ must map strings to strings ('%.60s' is not a string)", k->string);
    }
    return 0;
}

typedef struct {
    uint64_t begin, end;
    int index;
} range;

static int range_cmp(const void *pa, const void *pb) {
    const range *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return a->index - b->index;
}

/* Taken in order of offsets, the tensors tile [0, data_len) exactly. */
static int check_tiling(const sym_st_tensor *t, range *r, int n, size_t data_len, sym_err *e) {
    qsort(r, (size_t)n, sizeof *r, range_cmp);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const range *p = i ? &r[i - 1] : NULL, *c = &r[i];
        if (c->begin < at)
            return sym_fail(e, "tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", t[p->index].name,
                            (unsigned long long)p->begin, (unsigned long long)p->end, t[c->index].name,
                            (unsigned long long)c->begin, (unsigned long long)c->end);
        if (c->begin > at) {
            if (!p)
                return sym_fail(e, "bytes [0, %llu) of the data, before the first tensor '%s', belong to no tensor",
                                (unsigned long long)c->begin, t[c->index].name);
            return sym_fail(e, "bytes [%llu, %llu) of the data, between tensors '%s' and '%s', belong to no tensor",
                            (unsigned long long)at, (unsigned long long)c->begin, t[p->index].name, t[c->index].name);
        }
        at = c->end;
    }
    if (at != data_len) {
        if (!n) return sym_fail(e, "bytes [0, %zu) of the data belong to no tensor (the header names none)", data_len);
        return sym_fail(e, "bytes [%llu, %zu) of the data, after the last tensor '%s', belong to no tensor",
                        (unsigned long long)at, data_len, t[r[n - 1].index].name);
    }
    return 0;
}

static int parse_header(sym_safetensors *st, const char *text, size_t hlen, size_t data_len, sym_err *e) {
    size_t n = hlen;
    while (n && text[n - 1] == ' ') n--; /* the padding */
    cJSON *root = sym_json_parse(text, n, e);
    if (!root) return sym_failctx(e, "header is not a JSON object");
    int rc = -1;
    range *r = NULL;
    if (!cJSON_IsObject(root)) {
        sym_fail(e, "header is not a JSON object");
        goto out;
    }
    if (text[0] != '{') {
        sym_fail(e, "header must begin with '{' (byte 0 is 0x%02x)", (unsigned char)text[0]);
        goto out;
    }
    if (text[n - 1] != '}') {
        sym_fail(e, "header is not a JSON object padded with spaces: byte %zu after the object is 0x%02x", n - 1,
                 (unsigned char)text[n - 1]);
        goto out;
    }
    int count = cJSON_GetArraySize(root);
    st->tensors = calloc((size_t)(count ? count : 1), sizeof *st->tensors);
    r = malloc((size_t)(count ? count : 1) * sizeof *r);
    if (!st->tensors || !r) {
        sym_fail(e, "out of memory");
        goto out;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (!strcmp(item->string, "__metadata__")) {
            if (parse_metadata(item, e)) goto out;
            continue;
        }
        if (parse_tensor(item, &st->tensors[st->n], &r[st->n].end, data_len, e)) goto out;
        r[st->n].begin = st->tensors[st->n].offset;
        r[st->n].index = st->n;
        st->n++;
    }
    rc = check_tiling(st->tensors, r, st->n, data_len, e);
out:
    free(r);
    cJSON_Delete(root);
    return rc;
}

int sym_st_open(sym_safetensors *st, const char *path, sym_err *e) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sym_fail(e, "cannot open weights file %s", path);
    struct stat sb;
    if (fstat(fd, &sb) || sb.st_size < 8) {
        close(fd);
        return sym_fail(e, "%s: truncated safetensors file (%lld bytes)", path, (long long)sb.st_size);
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return sym_fail(e, "%s: mmap failed", path);
    st->map = map;
    st->map_len = len;
    const uint8_t *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen == 0 || hlen > len - 8) {
        sym_st_close(st);
        return sym_fail(e, "%s: header length %llu does not fit in the file's %zu bytes (truncated or not safetensors)",
                        path, (unsigned long long)hlen, len);
    }
    if (hlen > MAX_HEADER) {
        sym_st_close(st);
        return sym_fail(e, "%s: header length %llu is over the format's limit of %u bytes", path, (unsigned long long)hlen,
                        MAX_HEADER);
    }
    size_t data_len = len - 8 - (size_t)hlen;
    if (parse_header(st, (const char *)p + 8, (size_t)hlen, data_len, e)) {
        sym_st_close(st);
        return sym_failctx(e, "%s", path);
    }
    for (int i = 0; i < st->n; i++) st->tensors[i].data = p + 8 + hlen + st->tensors[i].offset;
    return 0;
}

void sym_st_close(sym_safetensors *st) {
    if (st->map) munmap(st->map, st->map_len);
    free(st->tensors);
    memset(st, 0, sizeof *st);
}

const sym_st_tensor *sym_st_find(const sym_safetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

#include "kernels/safetensors.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static sym_dtype parse_dtype(const char *s, size_t *elsize) {
    if (!strcmp(s, "F32")) { *elsize = 4; return SYM_DT_F32; }
    if (!strcmp(s, "BF16")) { *elsize = 2; return SYM_DT_BF16; }
    if (!strcmp(s, "F16")) { *elsize = 2; return SYM_DT_F16; }
    if (!strcmp(s, "F64")) { *elsize = 8; return SYM_DT_F64; }
    if (!strcmp(s, "I64") || !strcmp(s, "U64")) { *elsize = 8; return SYM_DT_OTHER; }
    if (!strcmp(s, "I32") || !strcmp(s, "U32")) { *elsize = 4; return SYM_DT_OTHER; }
    if (!strcmp(s, "I16") || !strcmp(s, "U16")) { *elsize = 2; return SYM_DT_OTHER; }
    if (!strcmp(s, "I8") || !strcmp(s, "U8") || !strcmp(s, "BOOL") || !strcmp(s, "F8_E4M3") ||
        !strcmp(s, "F8_E5M2")) { *elsize = 1; return SYM_DT_OTHER; }
    *elsize = 0;
    return SYM_DT_OTHER;
}

static int parse_tensor(const cJSON *item, sym_st_tensor *t, const uint8_t *data, size_t data_len, sym_err *e) {
    if (strlen(item->string) >= sizeof t->name) return sym_fail(e, "tensor name too long: %.60s...", item->string);
    strcpy(t->name, item->string);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return sym_fail(e, "tensor %s: header entry lacks dtype, shape or data_offsets", t->name);
    size_t elsize;
    t->dtype = parse_dtype(dt->valuestring, &elsize);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->valuestring);
    if (!elsize) return sym_fail(e, "tensor %s: unknown dtype %.16s", t->name, dt->valuestring);
    int nd = cJSON_GetArraySize(shape);
    if (nd > 8) return sym_fail(e, "tensor %s: %d dimensions", t->name, nd);
    t->ndim = nd;
    uint64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e12 ||
            d->valuedouble != (double)(int64_t)d->valuedouble)
            return sym_fail(e, "tensor %s: bad shape entry", t->name);
        t->shape[i] = (int64_t)d->valuedouble;
        numel *= (uint64_t)t->shape[i];
        if (numel > (1ull << 40)) return sym_fail(e, "tensor %s: shape too large", t->name);
    }
    const cJSON *o0 = cJSON_GetArrayItem(offs, 0), *o1 = cJSON_GetArrayItem(offs, 1);
    if (!cJSON_IsNumber(o0) || !cJSON_IsNumber(o1) || o0->valuedouble < 0 || o1->valuedouble < o0->valuedouble)
        return sym_fail(e, "tensor %s: bad data_offsets", t->name);
    uint64_t b0 = (uint64_t)o0->valuedouble, b1 = (uint64_t)o1->valuedouble;
    if (b1 > data_len)
        return sym_fail(e, "tensor %s: data_offsets [%llu, %llu) run past the end of the file's %zu data bytes",
                        t->name, (unsigned long long)b0, (unsigned long long)b1, data_len);
    if (b1 - b0 != numel * elsize)
        return sym_fail(e, "tensor %s: data_offsets span %llu bytes but shape and dtype need %llu", t->name,
                        (unsigned long long)(b1 - b0), (unsigned long long)(numel * elsize));
    t->data = data + b0;
    t->nbytes = (size_t)(b1 - b0);
    return 0;
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
    if (hlen == 0 || hlen > 100u * 1024 * 1024 || hlen > len - 8) {
        sym_st_close(st);
        return sym_fail(e, "%s: header length %llu does not fit in the file's %zu bytes (truncated or not safetensors)",
                        path, (unsigned long long)hlen, len);
    }
    cJSON *root = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        sym_st_close(st);
        return sym_fail(e, "%s: header is not a JSON object", path);
    }
    int n = cJSON_GetArraySize(root);
    st->tensors = calloc((size_t)(n ? n : 1), sizeof *st->tensors);
    if (!st->tensors) {
        cJSON_Delete(root);
        sym_st_close(st);
        return sym_fail(e, "out of memory");
    }
    const uint8_t *data = p + 8 + hlen;
    size_t data_len = len - 8 - (size_t)hlen;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (!strcmp(item->string, "__metadata__")) continue;
        if (!cJSON_IsObject(item) || parse_tensor(item, &st->tensors[st->n], data, data_len, e)) {
            if (!cJSON_IsObject(item)) sym_fail(e, "tensor %.100s: header entry is not an object", item->string);
            cJSON_Delete(root);
            sym_st_close(st);
            return sym_failctx(e, "%s", path);
        }
        st->n++;
    }
    cJSON_Delete(root);
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

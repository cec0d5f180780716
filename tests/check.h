/* The unit tests' assertions: CHECK(cond, fmt, ...) counts a failure and
 * prints it with file and line, and the test carries on; CHECKV also prints
 * "ok <what>" for each check that holds (tests that list what they cover).
 * main returns `failures != 0`. */
#ifndef SYM_TEST_CHECK_H
#define SYM_TEST_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            failures++;                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fputc('\n', stderr);                                 \
        }                                                        \
    } while (0)
#define CHECKV(cond, ...)                                                                       \
    do {                                                                                        \
        if (cond) printf("ok   " __VA_ARGS__), printf("\n");                                   \
        else failures++, printf("FAIL %s:%d ", __FILE__, __LINE__), printf(__VA_ARGS__), printf("\n"); \
    } while (0)

#endif

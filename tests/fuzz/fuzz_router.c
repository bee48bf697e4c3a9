/*
 * fuzz_router.c — libFuzzer target for the gateway's route matcher and path decoder, the
 * code that reads a request line before anything else does.
 *
 * Input: "METHOD\nPATH" (no newline: all of it is the path, method GET). The path is cut at
 * its first NUL, as libmicrohttpd hands it over, percent-decoded with gp_path_unescape, and
 * routed with gp_route_find. Besides "no crash, no UB", it aborts when a contract breaks:
 *   - the decoded path is NUL-terminated at the returned length, no longer than the input,
 *     and holds no NUL (%00 stays literal);
 *   - a found route has this method (or GET for HEAD) and its pattern matches the path again;
 *     its params are NUL-terminated, shorter than GP_PATH_PARAM_LEN, non-empty, without '/';
 *   - no route: params untouched, Allow NUL-terminated inside its buffer.
 *
 * router.c is compiled into this translation unit so that it is coverage-instrumented (the
 * core archive is built without -fsanitize=fuzzer); it defines every external symbol of
 * router.o, so the linker never pulls that member.
 *
 * Build and run: make fuzz FUZZ_SECONDS=20
 */
#include "api/router.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_METHOD 16

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_router: broken contract: %s\n", what);
        abort();
    }
}

static int count_params(const char *pattern)
{
    int n = 0;
    for (const char *p = pattern; (p = strstr(p, "{}")); p += 2)
        n++;
    return n;
}

static void check_found(const gp_route_t *rt, const char *method, const char *path,
                        gp_path_params_t params)
{
    check(!strcmp(rt->method, method) || (!strcmp(method, "HEAD") && !strcmp(rt->method, "GET")),
          "route method");
    check(rt->start != NULL, "route has a start hook");
    gp_path_params_t again;
    check(gp_route_match(rt->pattern, path, again), "found route matches again");
    int n = count_params(rt->pattern);
    check(n <= GP_PATH_PARAMS_MAX, "pattern params bounded");
    for (int i = 0; i < n; i++) {
        size_t len = strnlen(params[i], GP_PATH_PARAM_LEN);
        check(len < GP_PATH_PARAM_LEN, "param NUL-terminated and bounded");
        check(len > 0, "param non-empty");
        check(!memchr(params[i], '/', len), "param is one segment");
        check(!strcmp(params[i], again[i]), "params stable");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char method[MAX_METHOD + 1] = "GET";
    const uint8_t *nl = memchr(data, '\n', size);
    const uint8_t *path_in = data;
    size_t path_n = size;
    if (nl) {
        size_t mn = (size_t)(nl - data);
        if (mn > MAX_METHOD)
            mn = MAX_METHOD;
        memcpy(method, data, mn);
        method[mn] = '\0';
        path_in = nl + 1;
        path_n = size - (size_t)(nl + 1 - data);
    }
    char *path = malloc(path_n + 1);
    memcpy(path, path_in, path_n);
    path[path_n] = '\0';
    size_t before = strlen(path);

    size_t after = gp_path_unescape(path);
    check(after <= before, "decoded length <= input");
    check(path[after] == '\0', "decoded NUL-terminated at its length");
    check(strlen(path) == after, "no NUL decoded");

    gp_path_params_t params, sentinel;
    memset(params, 0xA5, sizeof params);
    memcpy(sentinel, params, sizeof params);
    char allow[64];
    const gp_route_t *rt = gp_route_find(method, path, params, allow, sizeof allow);
    if (rt) {
        check_found(rt, method, path, params);
    } else {
        check(!memcmp(params, sentinel, sizeof params), "params untouched on no route");
        check(strnlen(allow, sizeof allow) < sizeof allow, "Allow NUL-terminated");
    }
    free(path);
    return 0;
}

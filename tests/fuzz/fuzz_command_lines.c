/*
 * fuzz_command_lines.c — libFuzzer target for the command provider's stdout line parser
 * (gp_cmd_line_parse in src/engines/command_lines.c). The input is split at '\n' the way
 * command.c splits the program's output, and each line is parsed. Besides "no crash, no leak,
 * no UB", it aborts when the contract breaks:
 *   - progress is within 0..100 and its step, if any, is a non-empty suffix of the line that
 *     does not start with a space;
 *   - an output path is non-empty, holds no space, and lies inside the line; so does its
 *     content type;
 *   - a result is a JSON object (freed here, as gp_ctx_set_result would take it); only
 *     RESULT lines carry one;
 *   - OTHER carries the whole line, EMPTY comes only from empty lines or an empty output
 *     path; no line keeps a trailing CR or LF.
 *
 * command_lines.c is compiled into this translation unit so that it is coverage-instrumented
 * (the core archive is not; see fuzz_submit.c).
 *
 * Build and run: make fuzz FUZZ_SECONDS=20
 */
#include "engines/command_lines.c"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_command_lines: contract violated: %s\n", what);
        abort();
    }
}

static bool within(const char *p, const char *line, size_t n)
{
    return p >= line && p <= line + n;
}

static void check_line(char *line)
{
    size_t n = strlen(line);
    gp_cmd_line_t l;
    gp_cmd_line_parse(line, &l);
    size_t kept = strlen(line); /* the parser may have cut CR/LF and the output's space */
    check(kept <= n, "the line only shrinks");
    check(l.kind == GP_CMD_LINE_RESULT || l.result == NULL, "only results carry JSON");
    switch (l.kind) {
    case GP_CMD_LINE_EMPTY:
        check(kept == 0 || !strncmp(line, "output ", 7), "EMPTY only for empty lines");
        break;
    case GP_CMD_LINE_PROGRESS:
        check(l.progress >= 0 && l.progress <= 100, "progress range");
        check(!l.text || (within(l.text, line, n) && *l.text && *l.text != ' '), "step text");
        break;
    case GP_CMD_LINE_OUTPUT:
        check(within(l.text, line, n) && *l.text && !strchr(l.text, ' '), "output path");
        check(!l.content_type || within(l.content_type, line, n), "content type in line");
        break;
    case GP_CMD_LINE_RESULT:
        check(json_is_object(l.result), "result is an object");
        json_decref(l.result);
        break;
    case GP_CMD_LINE_BAD_RESULT: check(!strncmp(line, "result ", 7), "bad result line"); break;
    case GP_CMD_LINE_OTHER:
        check(l.text == line && *line, "OTHER is the whole line");
        check(line[kept - 1] != '\r' && line[kept - 1] != '\n', "no trailing CR/LF");
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    /* Lines end at '\n' (command.c); an embedded NUL ends the C string early, as it would. */
    for (char *line = buf, *nl; line <= buf + size; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(buf + size - line));
        if (!nl)
            nl = buf + size;
        *nl = '\0';
        check_line(line);
    }
    free(buf);
    return 0;
}

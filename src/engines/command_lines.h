/*
 * command_lines.h — one line of a command provider program's stdout, parsed (the protocol is
 * in src/engines/command.c and docs/providers/command.md):
 *
 *   "progress PCT [step text]"   PCT clamped to 0..100 (no number: 0, the rest is the step)
 *   "output PATH [CONTENT_TYPE]" a file to store (an empty PATH is ignored)
 *   "result {json object}"       fields merged into the task's result
 *   anything else                logged at debug level (an empty line: nothing)
 *
 * Pure: no I/O, no shared state; thread-safe. Fuzzed by tests/fuzz/fuzz_command_lines.c.
 */
#ifndef GP_COMMAND_LINES_H
#define GP_COMMAND_LINES_H

#include <jansson.h>

typedef enum gp_cmd_line_kind {
    GP_CMD_LINE_EMPTY,      /* nothing to do */
    GP_CMD_LINE_PROGRESS,   /* progress, text (step, or NULL) */
    GP_CMD_LINE_OUTPUT,     /* text (path, non-empty), content_type (NULL or maybe "") */
    GP_CMD_LINE_RESULT,     /* result: a JSON object owned by the caller */
    GP_CMD_LINE_BAD_RESULT, /* error: jansson's complaint (or "" for valid non-objects) */
    GP_CMD_LINE_OTHER,      /* text: the whole line */
} gp_cmd_line_kind_t;

typedef struct gp_cmd_line {
    gp_cmd_line_kind_t kind;
    int progress;             /* 0..100 */
    const char *text;         /* into the line */
    const char *content_type; /* into the line */
    json_t *result;
    char error[160];
} gp_cmd_line_t;

/* Parses line (NUL-terminated, without its '\n'; trailing CR/LF are dropped) in place: the
 * text fields point into it, so it must outlive *out. */
void gp_cmd_line_parse(char *line, gp_cmd_line_t *out);

#endif

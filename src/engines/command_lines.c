/* command_lines.c — parses one stdout line of a command provider program (see
 * command_lines.h); command.c acts on the result. */
#include "engines/command_lines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void parse_progress(char *arg, gp_cmd_line_t *out)
{
    char *end = NULL;
    long pct = strtol(arg, &end, 10);
    while (end && *end == ' ')
        end++;
    out->kind = GP_CMD_LINE_PROGRESS;
    out->progress = (int)(pct < 0 ? 0 : pct > 100 ? 100 : pct);
    out->text = end && *end ? end : NULL;
}

static void parse_output(char *arg, gp_cmd_line_t *out)
{
    char *ct = strchr(arg, ' ');
    if (ct)
        *ct++ = '\0';
    if (!*arg)
        return; /* stays EMPTY */
    out->kind = GP_CMD_LINE_OUTPUT;
    out->text = arg;
    out->content_type = ct;
}

static void parse_result(const char *arg, gp_cmd_line_t *out)
{
    json_error_t jerr;
    jerr.text[0] = '\0';
    json_t *fields = json_loads(arg, 0, &jerr);
    if (json_is_object(fields)) {
        out->kind = GP_CMD_LINE_RESULT;
        out->result = fields;
        return;
    }
    json_decref(fields);
    out->kind = GP_CMD_LINE_BAD_RESULT;
    snprintf(out->error, sizeof out->error, "%s", jerr.text);
}

void gp_cmd_line_parse(char *line, gp_cmd_line_t *out)
{
    memset(out, 0, sizeof *out);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        line[--n] = '\0';
    if (!strncmp(line, "progress ", 9)) {
        parse_progress(line + 9, out);
    } else if (!strncmp(line, "output ", 7)) {
        parse_output(line + 7, out);
    } else if (!strncmp(line, "result ", 7)) {
        parse_result(line + 7, out);
    } else if (n) {
        out->kind = GP_CMD_LINE_OTHER;
        out->text = line;
    }
}

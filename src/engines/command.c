/*
 * command.c — the "command" provider: runs a local program the operator configured (a
 * diffusers script, stable-diffusion.cpp's CLI, ...) for any task type.
 *
 * The program is a setting, never a request field: clients choose params, not binaries.
 *
 * Protocol (docs/providers/command.md):
 *   stdin   one JSON object: {task_id, task_type, attempt, params, inputs, output_dir}
 *           where inputs maps each media param (image, ...) to a local file already fetched;
 *   stdout  line commands:  "progress PCT [step text]"   → task progress
 *                           "output PATH [CONTENT_TYPE]"  → store this file as an output
 *                           "result {json object}"        → merged into the task's result
 *           other lines are logged at debug level;
 *   exit    0 succeeded (files left in output_dir are stored when no "output" line named
 *           any), 75 (EX_TEMPFAIL) failed and worth retrying, anything else failed for good;
 *           the tail of stderr becomes error.message.
 * On cancel or hard timeout the process group gets SIGTERM, then SIGKILL after 5 s.
 * The environment is cleared except PATH, HOME, LANG, TZ and the `env` setting's pairs.
 */
#include "engines/command_lines.h"
#include "genpulse/handler.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 64
#define MAX_ENV 64
#define LINE_MAX_BYTES 65536
#define STDERR_TAIL 2048
#define KILL_GRACE_MS 5000

static const char *const command_task_types[] = {
    "text-to-image", "image-to-image", "image-to-video", "text-to-video", "text-to-audio", NULL,
};

static const gp_param_spec_t command_params[] = {
    GP_P_OBJECT("options", false, "Extra options handed to the program unchanged (in params)."),
    GP_P_END,
};

static const gp_provider_setting_t command_settings[] = {
    GP_S_STRING("program", "",
                "Executable to run (absolute path). Empty: the provider refuses "
                "tasks."),
    GP_S_STRING("args", "", "Arguments before the program's stdin JSON, separated by spaces."),
    GP_S_STRING("workdir", "", "Working directory. Empty: the task's private scratch directory."),
    GP_S_STRING("env", "",
                "Extra environment, NAME=VALUE pairs separated by spaces (the rest of "
                "the environment is cleared except PATH, HOME, LANG, TZ)."),
    GP_S_INT("concurrency", "0", 0, 1000000,
             "Programs running at once across all workers (0: no limit "
             "beyond the worker slots)."),
    GP_S_END,
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Splits a space-separated setting into argv entries (in place, into buf). */
static int split_words(char *buf, char **out, int max)
{
    int n = 0;
    for (char *save = NULL, *w = strtok_r(buf, " \t", &save); w && n < max;
         w = strtok_r(NULL, " \t", &save))
        out[n++] = w;
    return n;
}

static void build_env(const char *extra, char *extra_buf, size_t extra_cap, char **env)
{
    int n = 0;
    static const char *const keep[] = {"PATH", "HOME", "LANG", "TZ", NULL};
    for (const char *const *k = keep; *k; k++) {
        const char *v = getenv(*k);
        if (v) {
            /* environ entries stay valid for the process lifetime */
            extern char **environ;
            for (char **e = environ; *e; e++)
                if (!strncmp(*e, *k, strlen(*k)) && (*e)[strlen(*k)] == '=')
                    env[n++] = *e;
        }
    }
    snprintf(extra_buf, extra_cap, "%s", extra);
    char *words[MAX_ENV];
    int m = split_words(extra_buf, words, MAX_ENV - n - 1);
    for (int i = 0; i < m; i++)
        if (strchr(words[i], '=') && words[i][0] != '=')
            env[n++] = words[i];
    env[n] = NULL;
}

typedef struct run_state {
    gp_ctx_t *ctx;
    const char *output_dir;
    int outputs;
    int store_rc;
    char err_tail[STDERR_TAIL + 1];
    size_t err_len;
} run_state_t;

static bool inside(const char *dir, const char *path)
{
    char real_dir[4096], real_path[4096];
    if (!realpath(dir, real_dir) || !realpath(path, real_path))
        return false;
    size_t n = strlen(real_dir);
    return !strncmp(real_dir, real_path, n) && real_path[n] == '/';
}

static void store_output(run_state_t *st, const char *path_arg, const char *content_type)
{
    char path[4096];
    if (path_arg[0] == '/')
        snprintf(path, sizeof path, "%s", path_arg);
    else
        snprintf(path, sizeof path, "%s/%s", st->output_dir, path_arg);
    /* Outputs come from the task's own directory only: a program cannot publish /etc/passwd. */
    if (!inside(st->output_dir, path)) {
        gp_ctx_log(st->ctx, GP_LOG_WARN, "command: output %s is outside the output dir; ignored",
                   path_arg);
        return;
    }
    const char *name = strrchr(path, '/') + 1;
    if (st->store_rc == 0)
        st->store_rc = gp_ctx_store_file(st->ctx, name, path,
                                         content_type && *content_type ? content_type : NULL, NULL);
    st->outputs++;
}

static void handle_line(run_state_t *st, char *line)
{
    gp_cmd_line_t l;
    gp_cmd_line_parse(line, &l);
    switch (l.kind) {
    case GP_CMD_LINE_EMPTY: break;
    case GP_CMD_LINE_PROGRESS: (void)gp_ctx_progress(st->ctx, l.progress, l.text); break;
    case GP_CMD_LINE_OUTPUT: store_output(st, l.text, l.content_type); break;
    case GP_CMD_LINE_RESULT: gp_ctx_set_result(st->ctx, l.result); break;
    case GP_CMD_LINE_BAD_RESULT:
        gp_ctx_log(st->ctx, GP_LOG_WARN, "command: bad result line: %s", l.error);
        break;
    case GP_CMD_LINE_OTHER: gp_ctx_log(st->ctx, GP_LOG_DEBUG, "command: %.200s", l.text); break;
    }
}

static void keep_tail(run_state_t *st, const char *data, size_t n)
{
    if (n >= STDERR_TAIL) {
        memcpy(st->err_tail, data + n - STDERR_TAIL, STDERR_TAIL);
        st->err_len = STDERR_TAIL;
    } else {
        if (st->err_len + n > STDERR_TAIL) {
            size_t drop = st->err_len + n - STDERR_TAIL;
            memmove(st->err_tail, st->err_tail + drop, st->err_len - drop);
            st->err_len -= drop;
        }
        memcpy(st->err_tail + st->err_len, data, n);
        st->err_len += n;
    }
    st->err_tail[st->err_len] = '\0';
}

/* Stores every regular file left in output_dir (for programs that print no "output"). */
static void store_leftovers(run_state_t *st)
{
    DIR *d = opendir(st->output_dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && st->store_rc == 0) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", st->output_dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
            store_output(st, e->d_name, NULL);
    }
    closedir(d);
}

/* Fetches every media param into a local file; returns the inputs object or NULL (failed). */
static json_t *fetch_inputs(gp_ctx_t *ctx, int *rc)
{
    json_t *inputs = json_object();
    const char *media[] = {"image", "image_tail", "mask", "video", "audio", NULL};
    for (const char **m = media; *m; m++) {
        if (!gp_ctx_param_str(ctx, *m, NULL))
            continue;
        char path[4096], ct[128];
        *rc = gp_ctx_input_file(ctx, *m, path, sizeof path, ct, sizeof ct);
        if (*rc != 0) {
            json_decref(inputs);
            return NULL;
        }
        json_object_set_new(inputs, *m, json_pack("{s:s, s:s}", "path", path, "content_type", ct));
    }
    return inputs;
}

/* The running program: our ends of its pipes, and how far a cancel got. */
typedef struct child {
    pid_t pid;
    int in_fd, out_fd, err_fd; /* its stdin (-1 once closed), stdout, stderr */
    bool out_open, err_open;
    bool killed;
    int64_t kill_at; /* SIGKILL when this passes after SIGTERM */
} child_t;

/* Starts program in dir with its stdio on pipes, in its own process group. */
static int spawn_program(gp_ctx_t *ctx, const char *program, char *const argv[], char *const envp[],
                         const char *dir, child_t *c)
{
    int in_pipe[2], out_pipe[2], err_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC))
        return gp_ctx_fail(ctx, true, GP_TE_ENGINE_ERROR, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0); /* its own group: a cancel kills its children too */
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = -1;
    int sp = posix_spawn(&pid, program, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (sp != 0) {
        close(in_pipe[1]);
        close(out_pipe[0]);
        close(err_pipe[0]);
        return gp_ctx_fail(ctx, false, GP_TE_ENGINE_ERROR, "cannot start %s: %s", program,
                           strerror(sp));
    }
    gp_ctx_log(ctx, GP_LOG_INFO, "command: started %s (pid %d)", program, (int)pid);
    *c = (child_t){.pid = pid,
                   .in_fd = in_pipe[1],
                   .out_fd = out_pipe[0],
                   .err_fd = err_pipe[0],
                   .out_open = true,
                   .err_open = true};
    fcntl(c->in_fd, F_SETFL, O_NONBLOCK);
    return 0;
}

/* On cancel: SIGTERM to the group, SIGKILL once the grace has passed. */
static void stop_if_canceled(gp_ctx_t *ctx, child_t *c)
{
    if (gp_ctx_is_canceled(ctx) && !c->killed) {
        kill(-c->pid, SIGTERM);
        c->killed = true;
        c->kill_at = now_ms() + KILL_GRACE_MS;
    }
    if (c->killed && now_ms() >= c->kill_at) {
        kill(-c->pid, SIGKILL);
        c->kill_at = INT64_MAX;
    }
}

/* Feeds the job to the program's stdin as far as the pipe takes it. */
static void write_job(child_t *c, const char *job, size_t job_len, size_t *job_off)
{
    ssize_t w = write(c->in_fd, job + *job_off, job_len - *job_off);
    if (w > 0)
        *job_off += (size_t)w;
    if (w < 0 && errno != EAGAIN) /* the program does not read its stdin: fine */
        *job_off = job_len;
    if (*job_off >= job_len) {
        close(c->in_fd);
        c->in_fd = -1;
    }
}

/* Splits what stdout sent into lines (at most LINE_MAX_BYTES each) and handles them. */
static void read_stdout(run_state_t *st, child_t *c, char *line, size_t *line_len)
{
    char buf[8192];
    ssize_t r = read(c->out_fd, buf, sizeof buf);
    if (r <= 0) {
        c->out_open = r < 0 && errno == EINTR;
        return;
    }
    for (ssize_t i = 0; i < r; i++) {
        if (buf[i] == '\n' || *line_len >= LINE_MAX_BYTES) {
            line[*line_len] = '\0';
            if (!c->killed)
                handle_line(st, line);
            *line_len = 0;
            if (buf[i] == '\n')
                continue;
        }
        line[(*line_len)++] = buf[i];
    }
}

static void read_stderr(run_state_t *st, child_t *c)
{
    char buf[4096];
    ssize_t r = read(c->err_fd, buf, sizeof buf);
    if (r <= 0)
        c->err_open = r < 0 && errno == EINTR;
    else
        keep_tail(st, buf, (size_t)r);
}

/* Writes the job and reads stdout and stderr until the program closes both; closes our
 * ends of the pipes. */
static void pump(gp_ctx_t *ctx, child_t *c, run_state_t *st, const char *job)
{
    size_t job_len = strlen(job), job_off = 0;
    char *line = malloc(LINE_MAX_BYTES + 1);
    size_t line_len = 0;
    while (c->out_open || c->err_open) {
        stop_if_canceled(ctx, c);
        struct pollfd fds[3];
        int nf = 0, in_i = -1, out_i = -1, err_i = -1;
        if (c->in_fd >= 0) {
            fds[nf] = (struct pollfd){.fd = c->in_fd, .events = POLLOUT};
            in_i = nf++;
        }
        if (c->out_open) {
            fds[nf] = (struct pollfd){.fd = c->out_fd, .events = POLLIN};
            out_i = nf++;
        }
        if (c->err_open) {
            fds[nf] = (struct pollfd){.fd = c->err_fd, .events = POLLIN};
            err_i = nf++;
        }
        if (poll(fds, (nfds_t)nf, 100) < 0 && errno != EINTR)
            break;
        if (in_i >= 0 && fds[in_i].revents)
            write_job(c, job, job_len, &job_off);
        if (out_i >= 0 && fds[out_i].revents)
            read_stdout(st, c, line, &line_len);
        if (err_i >= 0 && fds[err_i].revents)
            read_stderr(st, c);
    }
    if (line_len && !c->killed) {
        line[line_len] = '\0';
        handle_line(st, line);
    }
    free(line);
    if (c->in_fd >= 0)
        close(c->in_fd);
    close(c->out_fd);
    close(c->err_fd);
}

/* stdout closed: the program is exiting (or closed it early); reaps it, cancel-aware.
 * Returns the wait status. */
static int reap(gp_ctx_t *ctx, child_t *c)
{
    int status = 0;
    while (waitpid(c->pid, &status, WNOHANG) == 0) {
        stop_if_canceled(ctx, c);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return status;
}

/* What the exit status, the stored outputs and stderr's tail make of the attempt. */
static int outcome(gp_ctx_t *ctx, const char *program, run_state_t *st, bool killed, int status)
{
    if (killed || gp_ctx_is_canceled(ctx))
        return gp_ctx_canceled_error(ctx);
    if (st->store_rc != 0)
        return st->store_rc;
    /* the last stderr line is the most telling */
    char *msg = st->err_tail;
    while (st->err_len && (msg[st->err_len - 1] == '\n' || msg[st->err_len - 1] == '\r'))
        msg[--st->err_len] = '\0';
    char *last = strrchr(msg, '\n');
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (st->outputs == 0)
            store_leftovers(st);
        return st->store_rc;
    }
    if (WIFEXITED(status))
        return gp_ctx_fail(ctx, WEXITSTATUS(status) == 75, GP_TE_ENGINE_ERROR,
                           "%s exited with status %d%s%.500s", program, WEXITSTATUS(status),
                           st->err_len ? ": " : "", last ? last + 1 : msg);
    return gp_ctx_fail(ctx, true, GP_TE_ENGINE_ERROR, "%s was killed by signal %d", program,
                       WTERMSIG(status));
}

/* The job the program reads on stdin (takes inputs). */
static char *job_json(gp_ctx_t *ctx, json_t *inputs, const char *output_dir)
{
    json_t *job = json_pack("{s:s, s:i, s:O, s:o, s:s}", "task_id", gp_ctx_task_id(ctx), "attempt",
                            gp_ctx_attempt(ctx), "params", gp_ctx_params(ctx), "inputs", inputs,
                            "output_dir", output_dir);
    char *job_text = json_dumps(job, JSON_COMPACT);
    json_decref(job);
    return job_text;
}

static int command_run(gp_ctx_t *ctx)
{
    const char *program = gp_ctx_setting(ctx, "program");
    if (!program[0])
        return gp_ctx_fail(ctx, false, GP_TE_NOT_CONFIGURED,
                           "the command provider has no program: set --command-program");
    const char *scratch = gp_ctx_scratch_dir(ctx);
    if (!scratch)
        return gp_ctx_fail(ctx, true, GP_TE_ENGINE_ERROR, "no scratch directory");
    char output_dir[4096];
    snprintf(output_dir, sizeof output_dir, "%s/out", scratch);
    if (mkdir(output_dir, 0700) != 0 && errno != EEXIST)
        return gp_ctx_fail(ctx, true, GP_TE_ENGINE_ERROR, "cannot create %s", output_dir);
    int rc = 0;
    json_t *inputs = fetch_inputs(ctx, &rc);
    if (!inputs)
        return rc;
    char *job_text = job_json(ctx, inputs, output_dir);

    char args_buf[4096], env_buf[4096];
    snprintf(args_buf, sizeof args_buf, "%s", gp_ctx_setting(ctx, "args"));
    char *argv[MAX_ARGS + 2];
    argv[0] = (char *)program;
    int argc = 1 + split_words(args_buf, argv + 1, MAX_ARGS);
    argv[argc] = NULL;
    char *envp[MAX_ENV + 8];
    build_env(gp_ctx_setting(ctx, "env"), env_buf, sizeof env_buf, envp);
    const char *workdir = gp_ctx_setting(ctx, "workdir");

    child_t child;
    rc = spawn_program(ctx, program, argv, envp, workdir[0] ? workdir : scratch, &child);
    if (rc != 0) {
        free(job_text);
        return rc;
    }
    run_state_t st = {.ctx = ctx, .output_dir = output_dir};
    pump(ctx, &child, &st, job_text);
    free(job_text);
    int status = reap(ctx, &child);
    return outcome(ctx, program, &st, child.killed, status);
}

const gp_provider_t gp_provider_command = {
    .name = "command",
    .description = "Runs the local program set by --command-program with the task as JSON on "
                   "stdin; progress and outputs come back as lines on stdout.",
    .task_types = command_task_types,
    .params = command_params,
    .run = command_run,
    .settings = command_settings,
    /* credits; see gp_price_t */
    .price = {GP_PRICE_PER_TASK, 1, NULL, NULL},
};

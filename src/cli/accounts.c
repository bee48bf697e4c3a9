/*
 * accounts.c — `genpulse users …` and `genpulse keys …`: manage users and API keys in the
 * store the server uses (SQLite by default, --database-url for PostgreSQL). Output is JSON
 * on stdout, one object (create) or an array (list); errors go to stderr.
 *
 * The command's own flags are read here; every other flag goes to the settings table, so
 * --database-url, --data-dir and GENPULSE_* work as for `serve`.
 */
#include "cli/cli.h"
#include "core/errors.h"
#include "core/log.h"
#include "core/settings.h"
#include "core/util.h"
#include "identity/accounts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2
#define LIST_PAGE 100

static const char users_usage[] =
    "Usage: genpulse users create --email ADDRESS [--name \"Display Name\"] [--plan PLAN]\n"
    "       genpulse users list\n"
    "       genpulse users show ID_OR_EMAIL\n"
    "       genpulse users update ID_OR_EMAIL [--plan PLAN] [--disable | --enable]\n\n"
    "Manage users in the state store (the same --database-url / --data-dir as the server).\n"
    "create prints the new user as JSON; list prints every user as a JSON array.\n";

static const char credits_usage[] =
    "Usage: genpulse credits grant --user ID_OR_EMAIL --amount N [--note TEXT]\n"
    "       genpulse credits show --user ID_OR_EMAIL\n\n"
    "Add credits to a user's balance (an entry in the append-only ledger), or show the\n"
    "balance and the latest ledger entries as JSON.\n";

static const char keys_usage[] =
    "Usage: genpulse keys create --user ID_OR_EMAIL [--scopes tasks:read,tasks:write]\n"
    "                            [--name NAME] [--expires 30d]\n"
    "       genpulse keys list [--user ID_OR_EMAIL]\n"
    "       genpulse keys revoke KEY_ID\n\n"
    "Manage API keys. create prints JSON whose \"key\" field is the secret: it is shown\n"
    "once, only its SHA-256 is stored. Scopes: tasks:read, tasks:write, admin (admin sees\n"
    "and manages every user's tasks). --expires: 3600s, 90m, 12h, 30d, 2w, 1y.\n"
    "A running server sees a new or revoked key within a few seconds.\n";

typedef struct cli_args {
    const char *verb, *target;
    const char *email, *name, *plan, *user, *scopes, *expires, *amount, *note;
    bool help;
    int disable; /* -1 keep, 0 enable, 1 disable */
    int rest_argc;
    char **rest; /* settings flags, argv-shaped: rest[0..1] are placeholders */
} cli_args_t;

/* Splits argv into this command's flags and the settings' flags. */
static bool parse(int argc, char **argv, cli_args_t *a, const char *prog)
{
    static const char *const own[] = {"--email",  "--name",    "--plan",   "--user",
                                      "--scopes", "--expires", "--amount", "--note"};
    const char **slots[] = {&a->email,  &a->name,    &a->plan,   &a->user,
                            &a->scopes, &a->expires, &a->amount, &a->note};
    a->rest = gp_xcalloc((size_t)argc + 1, sizeof *a->rest);
    a->rest[0] = argv[0];
    a->rest[1] = argv[1];
    a->rest_argc = 2;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            a->help = true;
            continue;
        }
        if (!strcmp(arg, "--disable") || !strcmp(arg, "--enable")) {
            a->disable = !strcmp(arg, "--disable");
            continue;
        }
        bool mine = false;
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++) {
            size_t n = strlen(own[k]);
            if (strncmp(arg, own[k], n) != 0 || (arg[n] && arg[n] != '='))
                continue;
            if (arg[n] == '=') {
                *slots[k] = arg + n + 1;
            } else if (i + 1 < argc) {
                *slots[k] = argv[++i];
            } else {
                fprintf(stderr, "genpulse %s: %s needs a value\n", prog, own[k]);
                return false;
            }
            mine = true;
        }
        if (mine)
            continue;
        if (arg[0] == '-') { /* a setting: keep it and its value for the settings loader */
            a->rest[a->rest_argc++] = argv[i];
            if (!strchr(arg, '=') && i + 1 < argc && argv[i + 1][0] != '-')
                a->rest[a->rest_argc++] = argv[++i];
        } else if (!a->verb) {
            a->verb = arg;
        } else if (!a->target) {
            a->target = arg;
        } else {
            fprintf(stderr, "genpulse %s: unexpected argument \"%s\"\n", prog, arg);
            return false;
        }
    }
    return true;
}

static void print_json(json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text)
        printf("%s\n", text);
    free(text);
    json_decref(j);
}

static int fail(const char *prog, int rc, const gp_account_error_t *e)
{
    fprintf(stderr, "genpulse %s: %s%s%s\n", prog, e->field ? e->field : "", e->field ? ": " : "",
            e->why[0] ? e->why : gp_err_message(rc));
    return rc == -GP_E_VALIDATION || rc == -GP_E_CONFLICT ? EXIT_USAGE : 1;
}

/* Loads settings from the remaining flags and opens + migrates the store. */
static gp_store_t *open_store(cli_args_t *a, const char *prog, const char *usage, int *exit_code)
{
    gp_settings_t *s = gp_xcalloc(1, sizeof *s);
    int rc = gp_settings_load(s, GP_CMD_MIGRATE, prog, usage, a->rest_argc, a->rest, 2);
    if (rc != 0) {
        *exit_code = rc > 0 ? 0 : EXIT_USAGE;
        gp_settings_free(s);
        free(s);
        return NULL;
    }
    gp_log_setup((gp_log_level_t)gp_log_level_parse("warn"), false);
    gp_mkdirs(s->data_dir, 0755);
    char err[512] = "";
    gp_store_t *st = NULL;
    if (gp_store_open(&st, s, err, sizeof err) != 0 || gp_store_migrate(st, err, sizeof err) != 0) {
        fprintf(stderr, "genpulse %s: store: %s\n", prog, err);
        gp_store_close(st);
        st = NULL;
        *exit_code = 1;
    }
    gp_settings_free(s);
    free(s);
    return st;
}

static int users_verb(gp_store_t *st, const cli_args_t *a)
{
    gp_account_error_t e = {0};
    if (!strcmp(a->verb, "create")) {
        gp_user_t u;
        int rc = gp_accounts_create_user(st, a->email, a->name, a->plan, &u, &e);
        if (rc != 0)
            return fail("users", rc, &e);
        print_json(gp_user_json(&u));
        gp_user_clear(&u);
        return 0;
    }
    if (!strcmp(a->verb, "show") && a->target) {
        gp_user_t u;
        int rc = st->vt->user_get(st, a->target, &u);
        if (rc != 0) {
            fprintf(stderr, "genpulse users: %s: %s\n", a->target, gp_err_message(rc));
            return 1;
        }
        print_json(gp_user_json(&u));
        gp_user_clear(&u);
        return 0;
    }
    if (!strcmp(a->verb, "update") && a->target) {
        gp_user_t u;
        if (st->vt->user_get(st, a->target, &u) != 0) {
            fprintf(stderr, "genpulse users: %s: no such user\n", a->target);
            return 1;
        }
        int rc = st->vt->user_update(st, u.id, a->plan, a->disable);
        gp_user_clear(&u);
        if (rc == 0)
            rc = st->vt->user_get(st, a->target, &u);
        if (rc != 0) {
            fprintf(stderr, "genpulse users: %s\n", gp_err_message(rc));
            return 1;
        }
        print_json(gp_user_json(&u));
        gp_user_clear(&u);
        return 0;
    }
    if (!strcmp(a->verb, "list")) {
        json_t *all = json_array();
        char after[37] = "";
        gp_user_t page[LIST_PAGE];
        size_t n;
        do {
            if (st->vt->user_list(st, after[0] ? after : NULL, page, LIST_PAGE, &n) != 0) {
                json_decref(all);
                fprintf(stderr, "genpulse users: the store is unavailable\n");
                return 1;
            }
            for (size_t i = 0; i < n; i++) {
                json_array_append_new(all, gp_user_json(&page[i]));
                memcpy(after, page[i].id, sizeof after);
                gp_user_clear(&page[i]);
            }
        } while (n == LIST_PAGE);
        print_json(all);
        return 0;
    }
    fputs(users_usage, stderr);
    return EXIT_USAGE;
}

static int keys_verb(gp_store_t *st, const cli_args_t *a)
{
    gp_account_error_t e = {0};
    if (!strcmp(a->verb, "create")) {
        char secret[GP_API_KEY_LEN + 1];
        gp_api_key_t k;
        int rc =
            gp_accounts_create_key(st, a->user, a->scopes, a->name, a->expires, secret, &k, &e);
        if (rc != 0)
            return fail("keys", rc, &e);
        json_t *j = gp_api_key_json(&k);
        json_object_set_new(j, "key", json_string(secret));
        print_json(j);
        gp_api_key_clear(&k);
        return 0;
    }
    if (!strcmp(a->verb, "revoke") && a->target) {
        int rc = st->vt->key_revoke(st, a->target, gp_now_ms());
        if (rc != 0) {
            fprintf(stderr, "genpulse keys: %s: %s\n", a->target,
                    rc == -GP_E_NOT_FOUND ? "no key with this id" : gp_err_message(rc));
            return 1;
        }
        printf("{\"id\": \"%s\", \"revoked\": true}\n", a->target);
        return 0;
    }
    if (!strcmp(a->verb, "list")) {
        char user_id[37] = "";
        if (a->user) {
            gp_user_t u;
            if (st->vt->user_get(st, a->user, &u) != 0) {
                fprintf(stderr, "genpulse keys: --user %s: no such user\n", a->user);
                return 1;
            }
            memcpy(user_id, u.id, sizeof user_id);
            gp_user_clear(&u);
        }
        json_t *all = json_array();
        char after[37] = "";
        gp_api_key_t page[LIST_PAGE];
        size_t n;
        do {
            if (st->vt->key_list(st, user_id[0] ? user_id : NULL, after[0] ? after : NULL, page,
                                 LIST_PAGE, &n) != 0) {
                json_decref(all);
                fprintf(stderr, "genpulse keys: the store is unavailable\n");
                return 1;
            }
            for (size_t i = 0; i < n; i++) {
                json_array_append_new(all, gp_api_key_json(&page[i]));
                memcpy(after, page[i].id, sizeof after);
                gp_api_key_clear(&page[i]);
            }
        } while (n == LIST_PAGE);
        print_json(all);
        return 0;
    }
    fputs(keys_usage, stderr);
    return EXIT_USAGE;
}

static int run(int argc, char **argv, const char *prog, const char *usage,
               int (*verb)(gp_store_t *, const cli_args_t *))
{
    cli_args_t a = {.disable = -1};
    int exit_code = EXIT_USAGE;
    if (!parse(argc, argv, &a, prog))
        goto out;
    if (a.help || !a.verb) {
        fputs(usage, a.help ? stdout : stderr);
        exit_code = a.help ? 0 : EXIT_USAGE;
        goto out;
    }
    gp_store_t *st = open_store(&a, prog, usage, &exit_code);
    if (st) {
        exit_code = verb(st, &a);
        gp_store_close(st);
    }
out:
    free(a.rest);
    return exit_code;
}

static int credits_verb(gp_store_t *st, const cli_args_t *a)
{
    gp_user_t u;
    if (!a->user || st->vt->user_get(st, a->user, &u) != 0) {
        fprintf(stderr, "genpulse credits: --user %s: no such user\n",
                a->user ? a->user : "(missing)");
        return EXIT_USAGE;
    }
    int exit_code = 0;
    if (!strcmp(a->verb, "grant")) {
        char *end = NULL;
        long long amount = a->amount ? strtoll(a->amount, &end, 10) : 0;
        if (!a->amount || *end || amount < 1 || amount > 1000000000000LL) {
            fprintf(stderr, "genpulse credits: --amount must be an integer from 1 to 10^12\n");
            gp_user_clear(&u);
            return EXIT_USAGE;
        }
        char key[80], id[37];
        gp_uuid7(id);
        snprintf(key, sizeof key, "grant:%s", id);
        int64_t balance = 0;
        int rc = st->vt->credits_grant(st, u.id, amount, key, a->note, &balance);
        if (rc != 0) {
            fprintf(stderr, "genpulse credits: %s\n", gp_err_message(rc));
            exit_code = 1;
        } else {
            printf("{\"user_id\": \"%s\", \"granted\": %lld, \"balance\": %lld}\n", u.id, amount,
                   (long long)balance);
        }
    } else if (!strcmp(a->verb, "show")) {
        gp_ledger_entry_t rows[20];
        size_t n = 0;
        json_t *ledger = json_array();
        if (st->vt->ledger_list(st, u.id, 0, rows, 20, &n) == 0)
            for (size_t i = 0; i < n; i++) {
                json_array_append_new(
                    ledger, json_pack("{s:I, s:s, s:s, s:I, s:I}", "seq", (json_int_t)rows[i].seq,
                                      "kind", rows[i].kind, "task_id", rows[i].task_id, "amount",
                                      (json_int_t)rows[i].amount, "balance_after",
                                      (json_int_t)rows[i].balance_after));
                gp_ledger_entry_clear(&rows[i]);
            }
        print_json(json_pack("{s:s, s:I, s:I, s:o}", "user_id", u.id, "available",
                             (json_int_t)u.credits, "reserved", (json_int_t)u.reserved, "ledger",
                             ledger));
    } else {
        fputs(credits_usage, stderr);
        exit_code = EXIT_USAGE;
    }
    gp_user_clear(&u);
    return exit_code;
}

int gp_cmd_credits(int argc, char **argv)
{
    return run(argc, argv, "credits", credits_usage, credits_verb);
}

int gp_cmd_users(int argc, char **argv)
{
    return run(argc, argv, "users", users_usage, users_verb);
}

int gp_cmd_keys(int argc, char **argv)
{
    return run(argc, argv, "keys", keys_usage, keys_verb);
}

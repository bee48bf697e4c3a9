/*
 * cli.h — commands of the genpulse command line that are more than a few lines, one file
 * each (main.c dispatches). Each takes main's argc/argv (argv[1] is the command name),
 * prints its own usage and errors, and returns the process exit status. Main thread only.
 */
#ifndef GP_CLI_H
#define GP_CLI_H

/* `genpulse run TASK_TYPE [key=value ...]` (src/cli/run_task.c). */
int gp_cmd_run_task(int argc, char **argv);

/* `genpulse users …` and `genpulse keys …` (src/cli/accounts.c). */
int gp_cmd_users(int argc, char **argv);
int gp_cmd_keys(int argc, char **argv);
int gp_cmd_credits(int argc, char **argv);

#endif

/*
 * committer.h — group commit. Every state change goes through one committer thread that
 * takes all operations queued since its last transaction and applies them in a single store
 * transaction, so the commit rate, not the request rate, bounds throughput: under load one
 * fsync/round trip serves hundreds of submissions and transitions.
 *
 * Thread-safety: submit() and run_sync() may be called from any thread. An op must stay
 * valid until its done callback ran (submit) or run_sync returned.
 */
#ifndef GP_COMMITTER_H
#define GP_COMMITTER_H

#include "infra/store/store.h"

typedef struct gp_committer gp_committer_t;

gp_committer_t *gp_committer_start(gp_store_t *store, size_t batch_max);
/*
 * Queues op; op->done(op, op->done_arg) runs on the committer thread after the commit.
 * A done callback must only enqueue (hand the op to the thread that owns the follow-up,
 * signal a condvar, resume a connection): no queue, event or store I/O, since every commit of
 * the process waits behind it. See on_commit_done in src/api/server.c and the finisher in
 * src/worker/pool.c.
 */
void gp_committer_submit(gp_committer_t *c, gp_store_op_t *op);
/* Queues op and waits for it; returns op->result. */
int gp_committer_run_sync(gp_committer_t *c, gp_store_op_t *op);
/* Applies what is queued, then stops the thread and frees c. */
void gp_committer_stop(gp_committer_t *c);

#endif

/*
 * offload.h — a small thread pool for blocking work the HTTP event threads must not do
 * (storage I/O, which is network I/O for S3; image decoding).
 *
 * Ownership: the gateway owns one pool (gp_offload_start, gp_offload_stop, gp_offload_free). A job's arg
 * belongs to the caller; the pool only passes it along.
 * Threading: gp_offload_submit is safe from any thread; jobs run on the pool's threads in
 * submission order (several at once). stop and free are called by the owner.
 */
#ifndef GP_API_OFFLOAD_H
#define GP_API_OFFLOAD_H

typedef struct gp_offload gp_offload_t;
typedef void (*gp_offload_fn)(void *arg);

/* Starts threads (1..16) named "gp-offload"; NULL when none could be started. */
gp_offload_t *gp_offload_start(int threads);
/* Queues fn(arg). Returns 0, or -1 when p is NULL or stopping (the job was not queued: the
 * caller runs it itself). */
int gp_offload_submit(gp_offload_t *p, gp_offload_fn fn, void *arg);
/* Runs every queued job and joins the threads; later submits return -1. p stays valid (a
 * submit racing with stop is safe) until gp_offload_free. NULL is a no-op. */
void gp_offload_stop(gp_offload_t *p);
/* Stops p if needed and frees it; nothing may call gp_offload_submit(p) after. */
void gp_offload_free(gp_offload_t *p);

#endif

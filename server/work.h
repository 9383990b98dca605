/* A small pool of helper threads for CPU-heavy work (password hashing) so event loops never
 * stall. A job runs `run` on a helper thread, then `done` back on the submitting loop. */
#ifndef RAISE_WORK_H
#define RAISE_WORK_H

struct event_base;
struct work_job;

typedef void (*work_fn)(void *arg);

/* Start n helper threads (once, at start-up). */
int work_start(int n);
/* Stop them (after every loop has stopped). */
void work_stop(void);
/* Queue a job; done(arg) runs later on base's thread (never inside this call). NULL on error. */
struct work_job *work_submit(struct event_base *base, work_fn run, work_fn done, void *arg);
/* The submitter no longer wants the result: done will not be called (run may still run; it
 * must only touch memory owned by arg, which is then freed by free_arg). */
void work_orphan(struct work_job *job, work_fn free_arg);

#endif

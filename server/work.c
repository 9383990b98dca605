#include "work.h"

#include "xmalloc.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/queue.h>

struct work_job {
    STAILQ_ENTRY(work_job) entry;
    work_fn run, done;
    work_fn free_arg; /* set when orphaned */
    void *arg;        /* borrowed from the submitter */
    int orphaned;
    struct event *ev; /* owned; fires on the submitting loop */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    STAILQ_HEAD(job_queue, work_job) queue;
    pthread_t *threads;
    int n;
    int stopping;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {NULL, NULL}, NULL, 0, 0};

static void finish_cb(evutil_socket_t fd, short what, void *p)
{
    struct work_job *job = p;
    event_free(job->ev);
    if (job->orphaned) {
        if (job->free_arg != NULL)
            job->free_arg(job->arg);
    } else {
        job->done(job->arg);
    }
    free(job);
}

static void *helper_main(void *unused)
{
    for (;;) {
        pthread_mutex_lock(&pool.lock);
        while (STAILQ_EMPTY(&pool.queue) && !pool.stopping)
            pthread_cond_wait(&pool.cond, &pool.lock);
        struct work_job *job = STAILQ_FIRST(&pool.queue);
        if (job == NULL) { /* stopping and nothing left */
            pthread_mutex_unlock(&pool.lock);
            return NULL;
        }
        STAILQ_REMOVE_HEAD(&pool.queue, entry);
        pthread_mutex_unlock(&pool.lock);
        job->run(job->arg);
        event_active(job->ev, EV_READ, 0); /* thread-safe: evthread_use_pthreads */
    }
}

int work_start(int n)
{
    STAILQ_INIT(&pool.queue);
    pool.threads = xcalloc((size_t)n, sizeof(pthread_t));
    for (int i = 0; i < n; i++) {
        if (pthread_create(&pool.threads[i], NULL, helper_main, NULL) != 0)
            return -1;
        pool.n++;
    }
    return 0;
}

void work_stop(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stopping = 1;
    pthread_cond_broadcast(&pool.cond);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < pool.n; i++)
        pthread_join(pool.threads[i], NULL);
    free(pool.threads);
    pool.threads = NULL;
    pool.n = 0;
}

struct work_job *work_submit(struct event_base *base, work_fn run, work_fn done, void *arg)
{
    struct work_job *job = xcalloc(1, sizeof(*job));
    job->run = run;
    job->done = done;
    job->arg = arg;
    job->ev = event_new(base, -1, 0, finish_cb, job);
    pthread_mutex_lock(&pool.lock);
    STAILQ_INSERT_TAIL(&pool.queue, job, entry);
    pthread_cond_signal(&pool.cond);
    pthread_mutex_unlock(&pool.lock);
    return job;
}

void work_orphan(struct work_job *job, work_fn free_arg)
{
    /* Only the submitting loop touches orphaned/free_arg, and finish_cb runs on that loop. */
    job->orphaned = 1;
    job->free_arg = free_arg;
}

/* pyw_thread.c — --threads N: the loop hands whole requests to N Python threads, and applies the responses they post back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "py.h"

/*
 * The loop's thread never takes the GIL here: it copies a request's head,
 * collects its body (pyw_handler.c), and queues the job. A thread takes
 * it, runs the application with the GIL, and hands each step of the
 * response back as an op: it queues the job on the loop's list, wakes the
 * loop through an eventfd, and waits (without the GIL) for the answer. The
 * loop applies the op to the exchange; a write past the high-water mark is
 * answered only once the core has room again, so a thread streaming a big
 * response or calling write() waits for its client, as a thread of a
 * blocking server would, and no buffer grows without bound.
 *
 * One lock guards both lists and every answer. A job's exchange pointer and
 * its waiting flag are the loop's alone: the abort callback clears the
 * pointer (and answers an op waiting for room), and an op applied after
 * that is answered -EPIPE.
 */

struct thread {
    pthread_t id;
    pthread_cond_t wake; /* an answer to this thread's op */
    int slot;
    bool started;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work;            /* a job for the threads, or quit */
    struct pyw_job *jobs, **jobs_tail; /* to the threads */
    struct pyw_job *ops, **ops_tail;   /* posted to the loop */
    bool quit;
    bool closed;                    /* the loop has stopped: ops fail at once */
    int efd;
    pf_loop *loop;
    struct thread *t;
    unsigned n;
} hub = {.lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .efd = -1};

/* ---- jobs ---- */

static void op_reset(struct pyw_op *o)
{
    free(o->reason);
    o->reason = NULL;
    o->fields.len = 0;
    o->fields.who = 0;
    o->head = o->close = o->end = o->fail = false;
    o->iovcnt = 0;
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
}

static void job_abort(struct http_exchange *x, void *ud);

struct pyw_job *pyw_job_new(struct http_exchange *x, bool secure)
{
    struct pyw_job *j = calloc(1, sizeof *j);
    if (!j || !(j->q = http_request_dup(http_ex_request(x)))) {
        free(j);
        return NULL;
    }
    socklen_t len;
    const struct sockaddr *sa = http_ex_peer(x, &len);
    j->peerlen = len <= sizeof j->peer ? len : 0;
    memcpy(&j->peer, sa, j->peerlen);
    j->secure = secure;
    j->client_dn = pyw_client_dn(x);
    j->x = x;
    j->op.fd = -1;
    pyw_body_init(&j->body);
    http_ex_on_abort(x, job_abort, j);
    return j;
}

void pyw_job_free(struct pyw_job *j)
{
    op_reset(&j->op);
    http_fields_free(&j->op.fields);
    free(j->op.iov);
    free(j->op.copy);
    pyw_body_free(&j->body);
    free(j->client_dn);
    free(j->q);
    free(j);
}

void pyw_job_push(struct pyw_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&hub.lock);
    *hub.jobs_tail = j;
    hub.jobs_tail = &j->next;
    pthread_cond_signal(&hub.work);
    pthread_mutex_unlock(&hub.lock);
}

/* ---- the loop's side ---- */

/* The last thing done with j: its thread may free it at once. */
static void answer(struct pyw_job *j, int result)
{
    pthread_mutex_lock(&hub.lock);
    j->result = result;
    j->posted = false;
    pthread_cond_signal(j->wake);
    pthread_mutex_unlock(&hub.lock);
}

static void job_abort(struct http_exchange *x, void *ud)
{
    (void)x;
    struct pyw_job *j = ud;
    j->x = NULL;
    if (j->waiting) { /* a write waiting for room: the client has gone */
        j->waiting = false;
        answer(j, -EPIPE);
    }
}

static void on_room(struct http_exchange *x, void *ud)
{
    struct pyw_job *j = ud;
    http_res_on_writable(x, NULL, NULL);
    j->waiting = false;
    answer(j, 0);
}

static int apply_head(struct pyw_job *j)
{
    const struct pyw_op *o = &j->op;
    int err = http_res_status(j->x, o->status, o->reason);
    if (err < 0) {
        pf_log(PF_LOG_ERROR, "the application's status %d '%s' was refused; answering 500",
               o->status, o->reason ? o->reason : "");
        return err;
    }
    if ((err = http_res_fields(j->x, &o->fields)) < 0)
        return err;
    if (o->close)
        http_res_close(j->x);
    return http_res_start(j->x, o->length);
}

/* The op is applied: its thread is told, or a detached job freed. */
static void done(struct pyw_job *j, int result)
{
    if (j->detached)
        pyw_job_free(j);
    else
        answer(j, result);
}

/* Apply the op j posted; answer now, or once there is room. */
static void apply(struct pyw_job *j)
{
    struct pyw_op *o = &j->op;
    struct http_exchange *x = j->x;
    int err = 0;
    bool later = false;
    if (!x) {
        err = -EPIPE;
    } else if (o->fail) {
        if (http_res_error(x, 500) < 0)
            http_res_abort(x);
        j->x = NULL;
    } else if (o->head && (err = apply_head(j)) < 0) {
        if (http_res_error(x, 500) < 0) /* the head taken back */
            http_res_abort(x);
        j->x = NULL;
    } else {
        for (int i = 0; i < o->iovcnt && err == 0; i++) {
            int s = http_res_write(x, o->iov[i].iov_base, o->iov[i].iov_len);
            err = s < 0 ? s : 0;
            later |= s == HTTP_RES_LATER;
        }
        if (err == 0 && o->fd >= 0) {
            int s = http_res_file(x, o->fd, o->off, o->len);
            o->fd = -1; /* the core's now */
            err = s < 0 ? s : 0;
            later |= s == HTTP_RES_LATER;
        }
        if (err == 0 && o->end) {
            http_res_end(x);
            j->x = NULL;
            later = false;
        }
    }
    if (o->fd >= 0) {
        close(o->fd);
        o->fd = -1;
    }
    if (err == 0 && later) {
        j->waiting = true;
        http_res_on_writable(x, on_room, j);
    } else {
        done(j, err);
    }
}

static void on_ops(pf_loop *loop, int fd, unsigned events, void *ud)
{
    (void)loop, (void)events, (void)ud;
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
        pf_log(PF_LOG_ERROR, "read(eventfd): %s", strerror(errno));
    pthread_mutex_lock(&hub.lock);
    struct pyw_job *j = hub.ops;
    hub.ops = NULL;
    hub.ops_tail = &hub.ops;
    pthread_mutex_unlock(&hub.lock);
    while (j) {
        struct pyw_job *next = j->next;
        apply(j);
        j = next;
    }
}

/* ---- a thread's side ---- */

/* Under the lock: j to the loop's list, which wakes if it was empty.
 * Once the loop has stopped, the op fails at once. */
static void enqueue(struct pyw_job *j)
{
    if (hub.closed) {
        j->result = -EPIPE;
        j->posted = false;
        if (j->detached)
            pyw_job_free(j);
        return;
    }
    j->posted = true;
    j->next = NULL;
    bool first = !hub.ops;
    *hub.ops_tail = j;
    hub.ops_tail = &j->next;
    if (first) {
        uint64_t one = 1;
        (void)!write(hub.efd, &one, sizeof one);
    }
}

#define DETACH_MAX (64 * 1024)

int pyw_job_detach(struct pyw_job *j)
{
    struct pyw_op *o = &j->op;
    size_t total = 0;
    for (int i = 0; i < o->iovcnt; i++)
        total += o->iov[i].iov_len;
    if (o->fd >= 0 || total > DETACH_MAX)
        return -1;
    if (total) {
        if (!(o->copy = malloc(total)))
            return -1;
        size_t at = 0;
        for (int i = 0; i < o->iovcnt; i++) {
            memcpy(o->copy + at, o->iov[i].iov_base, o->iov[i].iov_len);
            at += o->iov[i].iov_len;
        }
        o->iov[0] = (struct iovec){o->copy, total};
        o->iovcnt = 1;
    }
    j->detached = true;
    pthread_mutex_lock(&hub.lock);
    enqueue(j);
    pthread_mutex_unlock(&hub.lock);
    return 0;
}

int pyw_job_post(struct pyw_job *j)
{
    int result;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&hub.lock);
    enqueue(j);
    while (j->posted)
        pthread_cond_wait(j->wake, &hub.lock);
    result = j->result;
    pthread_mutex_unlock(&hub.lock);
    Py_END_ALLOW_THREADS
    op_reset(&j->op);
    return result;
}

static struct pyw_job *take(void)
{
    pthread_mutex_lock(&hub.lock);
    while (!hub.jobs && !hub.quit)
        pthread_cond_wait(&hub.work, &hub.lock);
    struct pyw_job *j = hub.jobs;
    if (j && !(hub.jobs = j->next))
        hub.jobs_tail = &hub.jobs;
    pthread_mutex_unlock(&hub.lock);
    return j;
}

static void serve(struct pyw_job *j, int slot)
{
    struct pyw_req *r = pyw_req_new_job(j);
    if (r) {
        pyw_call_app(r, slot);
        return;
    }
    py_log_exception("cannot start a request:");
    j->op.fail = true;
    (void)pyw_job_post(j);
    pyw_job_free(j);
}

static void *thread_main(void *ud)
{
    struct thread *t = ud;
    PyGILState_STATE g = PyGILState_Ensure();
    py_watch_thread(t->slot);
    PyThreadState *ts = PyEval_SaveThread();
    struct pyw_job *j;
    while ((j = take()) != NULL) {
        PyEval_RestoreThread(ts);
        j->wake = &t->wake;
        serve(j, t->slot);
        ts = PyEval_SaveThread();
    }
    PyEval_RestoreThread(ts);
    PyGILState_Release(g);
    return NULL;
}

/* ---- start and stop ---- */

int pyw_threads_start(struct http_server *s, unsigned n)
{
    hub.jobs_tail = &hub.jobs;
    hub.ops_tail = &hub.ops;
    hub.loop = http_server_loop(s);
    hub.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (hub.efd < 0)
        return -errno;
    int err = pf_loop_add(hub.loop, hub.efd, EPOLLIN, on_ops, NULL);
    if (err < 0)
        return err;
    hub.t = calloc(n, sizeof *hub.t);
    if (!hub.t)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        hub.t[i].slot = (int)i + 1;
        pthread_cond_init(&hub.t[i].wake, NULL);
        if ((err = -pthread_create(&hub.t[i].id, NULL, thread_main, &hub.t[i])) < 0) {
            pf_log(PF_LOG_ERROR, "pthread_create: %s", strerror(-err));
            return err;
        }
        hub.t[i].started = true;
        hub.n = i + 1;
    }
    return 0;
}

/* Each thread ends once the queue is empty; one stuck in the application
 * is left behind after a while (the worker exits all the same). */
void pyw_threads_stop(void)
{
    pthread_mutex_lock(&hub.lock);
    hub.quit = hub.closed = true;
    pthread_cond_broadcast(&hub.work);
    struct pyw_job *j = hub.ops;
    hub.ops = NULL;
    hub.ops_tail = &hub.ops;
    while (j) { /* posted after the loop's last turn: their exchanges are gone */
        struct pyw_job *next = j->next;
        j->result = -EPIPE;
        j->posted = false;
        if (j->detached)
            pyw_job_free(j);
        else
            pthread_cond_signal(j->wake);
        j = next;
    }
    pthread_mutex_unlock(&hub.lock);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    for (unsigned i = 0; i < hub.n; i++)
        if (hub.t[i].started && pthread_timedjoin_np(hub.t[i].id, NULL, &until) != 0)
            pf_log(PF_LOG_WARN, "a request thread is still busy as the worker exits");
}

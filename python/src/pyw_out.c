/* pyw_out.c — where a WSGI response goes: straight to the exchange on the loop's thread, or as an op a thread of --threads posts to the loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "py.h"

/*
 * On the loop's thread each call is the http_res_ call of the same name.
 * In a thread of --threads the head and the bytes gather in the job's op;
 * a write without "more", the end and a failure post it and wait for the
 * loop's answer. The head's fields are checked here, as they are added
 * (http_fields_add checks as http_res_header does); what is left to the
 * loop cannot fail but for the status line and a gone client.
 */

int pyw_out_status(struct pyw_req *r, int code, const char *reason)
{
    if (!r->job)
        return http_res_status(r->x, code, reason);
    struct pyw_op *o = &r->job->op;
    free(o->reason);
    o->reason = reason ? strdup(reason) : NULL;
    if (reason && !o->reason)
        return -ENOMEM;
    o->status = code;
    return 0;
}

int pyw_out_header(struct pyw_req *r, const char *name, size_t nn, const char *value,
                   size_t vn)
{
    if (!r->job)
        return http_res_header(r->x, name, nn, value, vn);
    return http_fields_add(&r->job->op.fields, name, nn, value, vn);
}

void pyw_out_close(struct pyw_req *r)
{
    if (!r->job)
        http_res_close(r->x);
    else
        r->job->op.close = true;
}

int pyw_out_start(struct pyw_req *r, int64_t length)
{
    if (!r->job)
        return http_res_start(r->x, length);
    r->job->op.head = true;
    r->job->op.length = length;
    return 0;
}

static int add_iov(struct pyw_op *o, const char *p, size_t n)
{
    if (o->iovcnt == o->iovcap) {
        int cap = o->iovcap ? 2 * o->iovcap : 8;
        struct iovec *iov = realloc(o->iov, (size_t)cap * sizeof *iov);
        if (!iov)
            return -ENOMEM;
        o->iov = iov;
        o->iovcap = cap;
    }
    o->iov[o->iovcnt++] = (struct iovec){(void *)p, n};
    return 0;
}

int pyw_out_write(struct pyw_req *r, const char *p, size_t n, bool more)
{
    if (!r->job)
        return http_res_write(r->x, p, n);
    int err = n ? add_iov(&r->job->op, p, n) : 0;
    if (err == 0 && !more)
        err = pyw_job_post(r->job);
    return err;
}

int pyw_out_wait(struct pyw_req *r)
{
    if (r->job)
        return 0; /* a thread's write waited for room already */
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = http_res_flush_wait(r->x);
    Py_END_ALLOW_THREADS
    return err;
}

int pyw_out_file(struct pyw_req *r, int fd, uint64_t off, uint64_t len)
{
    if (!r->job)
        return http_res_file(r->x, fd, off, len);
    struct pyw_op *o = &r->job->op;
    o->fd = fd; /* goes with the end */
    o->off = off;
    o->len = len;
    return 0;
}

void pyw_out_end(struct pyw_req *r)
{
    r->open = false;
    if (!r->job) {
        http_res_end(r->x);
        r->x = NULL;
        return;
    }
    r->job->op.end = true;
    if (pyw_job_detach(r->job) == 0)
        r->job = NULL; /* the loop's now */
    else
        (void)pyw_job_post(r->job); /* a client gone at the end: nothing to do */
}

void pyw_out_fail(struct pyw_req *r)
{
    bool open = r->open;
    r->open = false;
    if (!r->job) {
        struct http_exchange *x = r->x;
        if (open && x && (r->head_sent || http_res_error(x, 500) < 0))
            http_res_abort(x);
        r->x = NULL;
        return;
    }
    if (!open)
        return;
    struct pyw_op *o = &r->job->op;
    o->iovcnt = 0;
    o->head = false;
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    o->fail = true;
    (void)pyw_job_post(r->job);
}

/* pyw_body.c — a request body collected before the app is called: in memory up to 256 KiB, then in an unlinked temporary file. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "py.h"

/* Past this a body goes to disk: a worker holds one body at a time, but a
 * few large uploads in memory would still make every worker big. */
#define BODY_MEM_MAX (256 * 1024)

void pyw_body_init(struct pyw_body *b)
{
    b->mem = NULL;
    b->len = b->cap = 0;
    b->fd = -1;
    b->size = 0;
}

void pyw_body_free(struct pyw_body *b)
{
    free(b->mem);
    if (b->fd >= 0)
        close(b->fd);
    pyw_body_init(b);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* An unlinked file in $TMPDIR (or /tmp): O_TMPFILE where the file system
 * has it, else mkstemp and unlink. */
static int tmpfile_open(void)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != ENOENT))
        return fd < 0 ? -errno : fd;
    char path[4096];
    snprintf(path, sizeof path, "%s/prefork-body-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(path);
    return fd;
}

static int spill(struct pyw_body *b)
{
    int fd = tmpfile_open();
    if (fd < 0) {
        pf_log(PF_LOG_ERROR, "open(O_TMPFILE) for a request body: %s", strerror(-fd));
        return fd;
    }
    int err = write_all(fd, b->mem, b->len);
    if (err < 0) {
        pf_log(PF_LOG_ERROR, "write to a request body's temporary file: %s", strerror(-err));
        close(fd);
        return err;
    }
    free(b->mem);
    b->mem = NULL;
    b->len = b->cap = 0;
    b->fd = fd;
    return 0;
}

int pyw_body_add(struct pyw_body *b, const char *p, size_t n)
{
    if (b->fd < 0 && b->len + n > BODY_MEM_MAX) {
        int err = spill(b);
        if (err < 0)
            return err;
    }
    if (b->fd >= 0) {
        int err = write_all(b->fd, p, n);
        if (err < 0) {
            pf_log(PF_LOG_ERROR, "write to a request body's temporary file: %s",
                   strerror(-err));
            return err;
        }
    } else {
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap : 4096;
            while (cap < b->len + n)
                cap *= 2;
            char *m = realloc(b->mem, cap);
            if (!m)
                return -ENOMEM;
            b->mem = m;
            b->cap = cap;
        }
        memcpy(b->mem + b->len, p, n);
        b->len += n;
    }
    b->size += n;
    return 0;
}

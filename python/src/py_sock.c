/* py_sock.c — prefork.serve(handler): each connection as a blocking socket.socket, handed to handler(sock, address) in a worker. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "py.h"

static PyObject *socket_type;

/* The peer as the socket module gives it: (host, port) for IPv4,
 * (host, port, flowinfo, scope_id) for IPv6, the path for Unix sockets. */
static PyObject *address(const struct sockaddr *sa, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (len && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return Py_BuildValue("(si)", host, ntohs(in->sin_port));
    }
    if (len && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return Py_BuildValue("(siII)", host, ntohs(in6->sin6_port), ntohl(in6->sin6_flowinfo),
                             in6->sin6_scope_id);
    }
    return PyUnicode_FromString("");
}

/* socket.socket(fileno=dup) in blocking mode: the handler owns it. The
 * worker keeps fd until the handler returns, then gives it back to the
 * pool, which counts the worker idle again. */
static PyObject *make_socket(int fd)
{
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    int fl = fcntl(dup, F_GETFL);
    if (fl >= 0)
        fcntl(dup, F_SETFL, fl & ~O_NONBLOCK); /* shared with fd, which is done with */
    PyObject *kw = Py_BuildValue("{s:i}", "fileno", dup);
    PyObject *args = PyTuple_New(0);
    PyObject *sock = kw && args ? PyObject_Call(socket_type, args, kw) : NULL;
    Py_XDECREF(kw);
    Py_XDECREF(args);
    if (!sock)
        close(dup);
    return sock;
}

static void on_conn(pf_worker *w, int fd, const struct sockaddr *peer, socklen_t peerlen,
                    void *ud)
{
    (void)ud;
    py_enter();
    PyObject *sock = make_socket(fd);
    PyObject *addr = sock ? address(peer, peerlen) : NULL;
    PyObject *r = NULL;
    if (addr) {
        py_watch_enter(0, NULL);
        PyObject *args[2] = {sock, addr};
        r = PyObject_Vectorcall(py_serve.app, args, 2, NULL);
        py_watch_leave(0);
    }
    if (!r)
        py_log_exception("error in the connection handler:");
    /* A handler that kept the socket (for a thread, say) closes it itself. */
    if (sock && Py_REFCNT(sock) == 1) {
        PyObject *c = PyObject_CallMethod(sock, "close", NULL);
        if (!c)
            PyErr_Clear();
        Py_XDECREF(c);
    }
    Py_XDECREF(r);
    Py_XDECREF(addr);
    Py_XDECREF(sock);
    pf_worker_count(w, 1, 0);
    py_leave();
    pf_worker_close_conn(w, fd);
}

static int on_init(pf_worker *w, void *ud)
{
    (void)ud;
    int err = py_worker_init(w);
    if (err < 0)
        return err;
    PyObject *mod = PyImport_ImportModule("socket");
    socket_type = mod ? PyObject_GetAttrString(mod, "socket") : NULL;
    Py_XDECREF(mod);
    if (!socket_type) {
        py_log_exception("cannot import socket:");
        return -EINVAL;
    }
    py_gil_worker_start();
    return 0;
}

static void on_fini(pf_worker *w, void *ud)
{
    (void)w, (void)ud;
    py_worker_fini();
}

void py_sock_service(struct pf_service *svc)
{
    memset(svc, 0, sizeof *svc);
    svc->init = on_init;
    svc->on_conn = on_conn;
    svc->fini = on_fini;
}

/* pyw_environ.c — the WSGI environ of a request (PEP 3333), built in C from the parsed head with interned keys and remembered values. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "py.h"

/*
 * Every request gets a copy of a template dict holding the constant keys
 * (wsgi.*, SCRIPT_NAME, defaults), then the keys of its own. Keys are
 * interned once per worker. A value seen in the previous request at the
 * same place (the same Host, User-Agent, path, peer on a keep-alive
 * connection) is reused from a one-entry memo instead of decoded again.
 */

struct memo {
    PyObject *s;
    size_t n;
    char buf[120];
};

/* Latin-1 text as a str, the memo's if it holds the same bytes. New ref. */
static PyObject *memo_str(struct memo *m, const char *p, size_t n)
{
    if (m->s && n == m->n && memcmp(p, m->buf, n) == 0) {
        Py_INCREF(m->s);
        return m->s;
    }
    PyObject *s = PyUnicode_DecodeLatin1(p, (Py_ssize_t)n, NULL);
    if (s && n <= sizeof m->buf) {
        Py_INCREF(s);
        Py_XSETREF(m->s, s);
        memcpy(m->buf, p, n);
        m->n = n;
    }
    return s;
}

/* Header fields common enough to have their key made once. */
struct known {
    const char *name; /* lower case */
    const char *key;
    PyObject *k;
    struct memo v;
};

static struct known known[] = {
    {"host", "HTTP_HOST", NULL, {0}},
    {"user-agent", "HTTP_USER_AGENT", NULL, {0}},
    {"accept", "HTTP_ACCEPT", NULL, {0}},
    {"accept-encoding", "HTTP_ACCEPT_ENCODING", NULL, {0}},
    {"accept-language", "HTTP_ACCEPT_LANGUAGE", NULL, {0}},
    {"connection", "HTTP_CONNECTION", NULL, {0}},
    {"content-type", "CONTENT_TYPE", NULL, {0}},
    {"content-length", "CONTENT_LENGTH", NULL, {0}},
    {"cookie", "HTTP_COOKIE", NULL, {0}},
    {"referer", "HTTP_REFERER", NULL, {0}},
    {"origin", "HTTP_ORIGIN", NULL, {0}},
    {"authorization", "HTTP_AUTHORIZATION", NULL, {0}},
    {"cache-control", "HTTP_CACHE_CONTROL", NULL, {0}},
    {"pragma", "HTTP_PRAGMA", NULL, {0}},
    {"if-none-match", "HTTP_IF_NONE_MATCH", NULL, {0}},
    {"if-modified-since", "HTTP_IF_MODIFIED_SINCE", NULL, {0}},
    {"x-forwarded-for", "HTTP_X_FORWARDED_FOR", NULL, {0}},
    {"x-forwarded-proto", "HTTP_X_FORWARDED_PROTO", NULL, {0}},
    {"x-requested-with", "HTTP_X_REQUESTED_WITH", NULL, {0}},
    {"transfer-encoding", "HTTP_TRANSFER_ENCODING", NULL, {0}},
    {"expect", "HTTP_EXPECT", NULL, {0}},
};
#define NKNOWN (sizeof known / sizeof known[0])
#define KNOWN_COOKIE 8
#define KNOWN_CONTENT_LENGTH 7

static PyObject *tmpl;
static PyObject *k_method, *k_path, *k_query, *k_protocol, *k_raddr, *k_rport, *k_sname,
    *k_sport, *k_input, *k_clength;
static PyObject *v_methods[HTTP_METHOD_OTHER], *v_http10, *v_http11, *v_star, *v_empty;
static PyObject *k_scheme, *k_https, *v_https, *v_on; /* over TLS */
static struct memo m_path, m_query, m_method, m_hostname, m_hostport;

static int set_const(const char *key, PyObject *v)
{
    if (!v)
        return -1;
    int err = PyDict_SetItemString(tmpl, key, v);
    Py_DECREF(v);
    return err;
}

static PyObject *intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

static int make_keys(void)
{
    static const char *const methods[HTTP_METHOD_OTHER] = {
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (int i = 0; i < HTTP_METHOD_OTHER; i++)
        if (!(v_methods[i] = intern(methods[i])))
            return -1;
    for (size_t i = 0; i < NKNOWN; i++)
        if (!(known[i].k = intern(known[i].key)))
            return -1;
    k_method = intern("REQUEST_METHOD");
    k_path = intern("PATH_INFO");
    k_query = intern("QUERY_STRING");
    k_protocol = intern("SERVER_PROTOCOL");
    k_raddr = intern("REMOTE_ADDR");
    k_rport = intern("REMOTE_PORT");
    k_sname = intern("SERVER_NAME");
    k_sport = intern("SERVER_PORT");
    k_input = intern("wsgi.input");
    k_clength = known[KNOWN_CONTENT_LENGTH].k;
    v_http10 = intern("HTTP/1.0");
    v_http11 = intern("HTTP/1.1");
    v_star = intern("*");
    v_empty = intern("");
    k_scheme = intern("wsgi.url_scheme");
    k_https = intern("HTTPS");
    v_https = intern("https");
    v_on = intern("on");
    return k_method && k_path && k_query && k_protocol && k_raddr && k_rport && k_sname &&
                   k_sport && k_input && v_http10 && v_http11 && v_star && v_empty && k_scheme &&
                   k_https && v_https && v_on
               ? 0 : -1;
}

int pyw_environ_init(bool multithread)
{
    if (make_keys() < 0 || !(tmpl = PyDict_New()))
        return -1;
    PyObject *errors = pyw_errors_new();
    if (!errors)
        return -1;
    pyw_errors = errors;
    Py_INCREF(errors);
    Py_INCREF(&pyw_wrapper_type);
    Py_INCREF(v_empty);
    Py_INCREF(v_empty);
    int err = set_const("SCRIPT_NAME", v_empty);
    err |= set_const("QUERY_STRING", v_empty);
    err |= set_const("SERVER_NAME", PyUnicode_FromString(py_serve.server_name));
    err |= set_const("SERVER_PORT", PyUnicode_FromString(py_serve.server_port));
    err |= set_const("SERVER_SOFTWARE", PyUnicode_FromString("prefork/" PF_VERSION));
    err |= set_const("wsgi.version", Py_BuildValue("(ii)", 1, 0));
    err |= set_const("wsgi.url_scheme", PyUnicode_FromString("http"));
    err |= set_const("wsgi.errors", errors);
    err |= set_const("wsgi.multithread", Py_NewRef(multithread ? Py_True : Py_False));
    err |= set_const("wsgi.multiprocess", Py_NewRef(Py_True));
    err |= set_const("wsgi.run_once", Py_NewRef(Py_False));
    err |= set_const("wsgi.input_terminated", Py_NewRef(Py_True));
    err |= set_const("wsgi.file_wrapper", (PyObject *)&pyw_wrapper_type);
    return err ? -1 : 0;
}

/* Set env[key] = v, taking the reference to v. */
static int put(PyObject *env, PyObject *key, PyObject *v)
{
    if (!v)
        return -1;
    int err = PyDict_SetItem(env, key, v);
    Py_DECREF(v);
    return err;
}

/* ---- the request line ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* PATH_INFO: percent-decoded bytes as latin-1 (PEP 3333). A '%' not
 * followed by two hex digits stays as it is. */
static PyObject *path_info(const char *p, size_t n)
{
    if (!memchr(p, '%', n))
        return memo_str(&m_path, p, n);
    if (m_path.s && n == m_path.n && memcmp(p, m_path.buf, n) == 0)
        return Py_NewRef(m_path.s);
    char small[512] = "", *d = n <= sizeof small ? small : malloc(n);
    if (!d)
        return PyErr_NoMemory();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (p[i] == '%' && i + 2 < n + 0 && (hi = hexval(p[i + 1])) >= 0 &&
            (lo = hexval(p[i + 2])) >= 0) {
            d[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[k++] = p[i];
        }
    }
    PyObject *s = PyUnicode_DecodeLatin1(d, (Py_ssize_t)k, NULL);
    if (d != small)
        free(d);
    if (s && n <= sizeof m_path.buf) {
        Py_XSETREF(m_path.s, Py_NewRef(s));
        memcpy(m_path.buf, p, n);
        m_path.n = n;
    }
    return s;
}

static int request_line(PyObject *env, const struct http_request *q)
{
    PyObject *m = q->method < HTTP_METHOD_OTHER
                      ? Py_NewRef(v_methods[q->method])
                      : memo_str(&m_method, q->method_name, q->method_len);
    if (put(env, k_method, m) < 0)
        return -1;
    if (put(env, k_protocol, Py_NewRef(q->version_minor ? v_http11 : v_http10)) < 0)
        return -1;
    if (q->target_form == HTTP_TARGET_ASTERISK)
        return put(env, k_path, Py_NewRef(v_star));
    const char *p = q->path;
    size_t n = q->path_len;
    const char *qm = memchr(p, '?', n);
    size_t plen = qm ? (size_t)(qm - p) : n;
    if (plen == 0 && q->target_form == HTTP_TARGET_ABSOLUTE)
        p = "/", plen = 1;
    if (put(env, k_path, path_info(p, plen)) < 0)
        return -1;
    if (qm && put(env, k_query, memo_str(&m_query, qm + 1, n - plen - 1)) < 0)
        return -1;
    return 0;
}

/* ---- the peer and the server ---- */

/* The peer's address and port as text, remembered by the raw address:
 * a keep-alive connection's requests reuse them without formatting. */
static struct {
    union {
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } sa;
    socklen_t len;
    PyObject *addr, *port;
} last_peer;

static int peer_text(const struct sockaddr *sa, socklen_t len)
{
    char addr[INET6_ADDRSTRLEN] = "", port[8] = "";
    if (len && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        snprintf(port, sizeof port, "%u", ntohs(in->sin_port));
    } else if (len && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
        snprintf(port, sizeof port, "%u", ntohs(in6->sin6_port));
    }
    PyObject *a = PyUnicode_FromString(addr), *p = PyUnicode_FromString(port);
    if (!a || !p) {
        Py_XDECREF(a);
        Py_XDECREF(p);
        return -1;
    }
    Py_XSETREF(last_peer.addr, a);
    Py_XSETREF(last_peer.port, p);
    last_peer.len = len <= sizeof last_peer.sa ? len : 0;
    memcpy(&last_peer.sa, sa, last_peer.len);
    return 0;
}

static int peer(PyObject *env, const struct sockaddr *sa, socklen_t len)
{
    if (!last_peer.addr || len != last_peer.len || memcmp(sa, &last_peer.sa, len) != 0 ||
        len > sizeof last_peer.sa)
        if (peer_text(sa, len) < 0)
            return -1;
    if (PyDict_SetItem(env, k_raddr, last_peer.addr) < 0)
        return -1;
    return PyDict_SetItem(env, k_rport, last_peer.port);
}

/* SERVER_NAME and SERVER_PORT from Host, when there is one. */
static int server(PyObject *env, const struct http_request *q)
{
    if (!q->host_len)
        return 0;
    const char *h = q->host;
    size_t n = q->host_len, name = n;
    const char *colon = memrchr(h, ':', n);
    if (colon && !memchr(colon, ']', n - (size_t)(colon - h)))
        name = (size_t)(colon - h);
    if (put(env, k_sname, memo_str(&m_hostname, h, name)) < 0)
        return -1;
    if (name < n && put(env, k_sport, memo_str(&m_hostport, h + name + 1, n - name - 1)) < 0)
        return -1;
    return 0;
}

/* ---- header fields ---- */

static struct known *find_known(const char *name, size_t n)
{
    for (size_t i = 0; i < NKNOWN; i++)
        if (strlen(known[i].name) == n && strncasecmp(known[i].name, name, n) == 0)
            return &known[i];
    return NULL;
}

/* HTTP_ + the name upper-cased with '-' as '_'. NULL key (no error) for a
 * name with '_': it could pose as its dashed twin (X_User vs X-User). */
static PyObject *header_key(const char *name, size_t n)
{
    if (memchr(name, '_', n))
        return NULL;
    char small[128], *k = n + 5 <= sizeof small ? small : malloc(n + 5);
    if (!k)
        return PyErr_NoMemory();
    memcpy(k, "HTTP_", 5);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        k[5 + i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    PyObject *key = PyUnicode_FromStringAndSize(k, (Py_ssize_t)n + 5);
    if (k != small)
        free(k);
    return key;
}

/* A field seen twice: the values joined with ", " ("; " for Cookie, whose
 * pairs a comma does not separate). */
static int join(PyObject *env, PyObject *key, PyObject *old, PyObject *v, bool cookie)
{
    PyObject *joined = PyUnicode_FromFormat(cookie ? "%U; %U" : "%U, %U", old, v);
    Py_DECREF(v);
    return put(env, key, joined);
}

static int field(PyObject *env, const struct http_header *h, uint64_t *seen)
{
    struct known *k = find_known(h->name, h->name_len);
    PyObject *key, *v;
    if (k) {
        unsigned bit = (unsigned)(k - known);
        key = Py_NewRef(k->k);
        v = memo_str(&k->v, h->value, h->value_len);
        if (!(*seen & (1ull << bit))) {
            *seen |= 1ull << bit;
            int err = put(env, key, v);
            Py_DECREF(key);
            return err;
        }
    } else {
        key = header_key(h->name, h->name_len);
        if (!key)
            return PyErr_Occurred() ? -1 : 0;
        v = PyUnicode_DecodeLatin1(h->value, (Py_ssize_t)h->value_len, NULL);
    }
    if (!v) {
        Py_DECREF(key);
        return -1;
    }
    PyObject *old = PyDict_GetItemWithError(env, key);
    int err = old ? join(env, key, old, v, k == &known[KNOWN_COOKIE])
                  : PyErr_Occurred() ? (Py_DECREF(v), -1) : put(env, key, v);
    Py_DECREF(key);
    return err;
}

char *pyw_client_dn(struct http_exchange *x)
{
    char dn[4096]; /* a subject is a few hundred bytes; a longer one is cut here */
    return http_ex_client_dn(x, dn, sizeof dn) ? strdup(dn) : NULL;
}

int pyw_environ_client(PyObject *env, const char *dn)
{
    /* A subject's text is UTF-8 with RFC 2253's escapes; a native string
     * holds bytes as latin-1 (PEP 3333), as a header's value does. */
    PyObject *v = PyUnicode_DecodeLatin1(dn, (Py_ssize_t)strlen(dn), NULL);
    PyObject *ok = v ? PyUnicode_FromString("SUCCESS") : NULL;
    int err = ok ? PyDict_SetItemString(env, "SSL_CLIENT_S_DN", v) |
                       PyDict_SetItemString(env, "SSL_CLIENT_VERIFY", ok)
                 : -1;
    Py_XDECREF(v);
    Py_XDECREF(ok);
    return err < 0 ? -1 : 0;
}

PyObject *pyw_environ(const struct http_request *q, const struct sockaddr *sa, socklen_t salen,
                      bool secure, PyObject *input, uint64_t body_size)
{
    PyObject *env = PyDict_Copy(tmpl);
    if (!env)
        return NULL;
    uint64_t seen = 0;
    if (request_line(env, q) < 0 || peer(env, sa, salen) < 0 || server(env, q) < 0 ||
        PyDict_SetItem(env, k_input, input) < 0)
        goto fail;
    if (secure && (PyDict_SetItem(env, k_scheme, v_https) < 0 ||
                   PyDict_SetItem(env, k_https, v_on) < 0))
        goto fail;
    for (size_t i = 0; i < q->nheaders; i++)
        if (field(env, &q->headers[i], &seen) < 0)
            goto fail;
    /* A chunked body was received whole: its length is known now. */
    if (q->chunked && put(env, k_clength, PyUnicode_FromFormat("%llu",
                                                               (unsigned long long)body_size)) < 0)
        goto fail;
    return env;
fail:
    Py_DECREF(env);
    return NULL;
}

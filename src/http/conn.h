/* conn.h — one HTTP connection on a worker's event loop. */
#ifndef PF_HTTP_CONN_H
#define PF_HTTP_CONN_H

#include <sys/socket.h>

#include "http/server.h"

/* Take a freshly accepted connection (libprefork's on_conn). */
void http_conn_open(struct http_worker *hw, int fd, const struct sockaddr *peer,
                    socklen_t peerlen);

/* The worker drains: close idle connections now, end the others after
 * their current response. */
void http_conn_drain_all(struct http_worker *hw);

#endif

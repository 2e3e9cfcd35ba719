/* handler.h — from a parsed request to the response a static file server gives it. */
#ifndef PF_HTTP_HANDLER_H
#define PF_HTTP_HANDLER_H

#include "http/parse.h"
#include "http/reply.h"
#include "http/server.h"

/* Decide the response to req (already parsed and valid) into r. A file body
 * opened here belongs to r afterwards. Generated bodies live in hw->body. */
void http_handle(struct http_worker *hw, const struct http_request *req,
                 struct http_reply *r);

#endif

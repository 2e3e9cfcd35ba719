/* tls_module.h — the TLS module of the prefork command, loaded on demand (tls_module.c). */
#ifndef PF_CLI_TLS_MODULE_H
#define PF_CLI_TLS_MODULE_H

#include <stddef.h>

#include "tls/tls.h"

/* The module's calls, loaded at the first call (prefork-tls.so beside the
 * command, else in its installed folder); NULL with a one-line reason in
 * why when it cannot be loaded. */
const struct tls_api *cli_tls_module(char *why, size_t size);

#endif

/* tls_module.c — the TLS module (OpenSSL), loaded only when a listener asks for TLS, from beside the prefork command or its installed folder. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tls_module.h"
#include "cli_paths.h" /* generated: CLI_TLS_MODULE_DIR, relative to the command's folder */

#define MODULE "prefork-tls.so"

/* The folder of the running command ("/usr/local/bin"), in dir. */
static int command_dir(char *dir, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    if (n <= 0)
        return -1;
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

/* Beside the command (a build tree), else where make install puts it. */
static void *open_module(char *tried, size_t size)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    const char *const where[] = {"", "/" CLI_TLS_MODULE_DIR};
    void *h = NULL;
    tried[0] = '\0';
    if (command_dir(dir, sizeof dir) < 0)
        return NULL;
    for (size_t i = 0; !h && i < sizeof where / sizeof where[0]; i++) {
        snprintf(path, sizeof path, "%s%s/" MODULE, dir, where[i]);
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h && access(path, F_OK) == 0) { /* there, but it does not load */
            snprintf(tried, size, "%s", dlerror());
            return NULL;
        }
    }
    if (!h)
        snprintf(tried, size, "no %s beside %s nor in %s/%s", MODULE, dir, dir,
                 CLI_TLS_MODULE_DIR);
    return h;
}

const struct tls_api *cli_tls_module(char *why, size_t size)
{
    static const struct tls_api *api;
    char tried[PATH_MAX * 2 + 128];
    if (api)
        return api;
    void *h = open_module(tried, sizeof tried);
    if (h && !(api = dlsym(h, TLS_API_SYMBOL)))
        snprintf(tried, sizeof tried, "%s has no %s", MODULE, TLS_API_SYMBOL);
    if (!api)
        snprintf(why, size, "HTTPS needs the TLS module: %s", tried);
    return api;
}

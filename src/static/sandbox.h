/* sandbox.h — a serve worker gives up the files and processes it does not need (Landlock). */
#ifndef PF_STATIC_SANDBOX_H
#define PF_STATIC_SANDBOX_H

#include "static/site.h"

/*
 * Restrict the calling process, for good, to what a serve worker does with
 * the file system and the network after its start (Landlock, Linux 5.13+):
 *   - read files and list folders beneath cfg->rootfd (anywhere with
 *     cfg->follow_symlinks, whose symlinks may lead out of the root);
 *   - create and write files in the folders of cfg->http.access_log_path and
 *     cfg->error_log_path, for the reopen on USR1 (logrotate);
 *   - nothing else: no other open for writing, no exec, no rename or
 *     unlink, no device ioctl; no TCP bind or connect (Landlock ABI 4+);
 *     no signal to, and no connect to an abstract Unix socket of, a process
 *     outside this sandbox, the master included (ABI 6+, Linux 6.12).
 * What is open already stays usable. This is defence in depth under the
 * openat2(RESOLVE_BENEATH) confinement of path.c: a bug there still could
 * not reach a file outside the root.
 *
 * Returns the Landlock ABI version enforced (1 or more); 0 when the kernel
 * has no Landlock (built without it, or disabled at boot): the worker then
 * runs as before; or -errno when it could not be set up (a log folder
 * that cannot be opened, say), and the worker should not start.
 */
int static_sandbox_apply(const struct static_config *cfg);

#endif

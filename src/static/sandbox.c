/* sandbox.c — a serve worker's Landlock: read the root, write its logs, reach no other process. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "static/sandbox.h"

/* Debian 12's kernel headers (6.1) stop at ABI 2; the kernel may be newer.
 * These are the kernel's ABI values (include/uapi/linux/landlock.h). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0) /* ABI 4 */
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_SIGNAL
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

/* struct landlock_ruleset_attr up to ABI 6; the kernel is told its size. */
struct ruleset_attr {
    __u64 handled_access_fs;
    __u64 handled_access_net; /* ABI 4 */
    __u64 scoped;             /* ABI 6 */
};

/* glibc 2.36 has no wrappers for the three Landlock calls. */
static long ruleset_create(const struct ruleset_attr *attr, size_t size, unsigned flags)
{
    return syscall(SYS_landlock_create_ruleset, attr, size, flags);
}

static long rule_add(int ruleset, const struct landlock_path_beneath_attr *attr)
{
    return syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, attr, 0);
}

static long restrict_self(int ruleset)
{
    return syscall(SYS_landlock_restrict_self, ruleset, 0);
}

#define FS_V1 ((LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1) /* EXECUTE .. MAKE_SYM */

/* Every file-system right the kernel's ABI knows: all of them handled, so
 * all of them denied but for the rules. Rights a newer kernel adds are not
 * handled here; they stay allowed, as they were before that kernel. */
static __u64 fs_rights(int abi)
{
    __u64 r = FS_V1;
    if (abi >= 2)
        r |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        r |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return r;
}

/* Allow `rights` beneath the folder fd. */
static int allow_fd(int ruleset, int fd, __u64 rights)
{
    struct landlock_path_beneath_attr rule = {.allowed_access = rights, .parent_fd = fd};
    return rule_add(ruleset, &rule) < 0 ? -errno : 0;
}

static int allow_path(int ruleset, const char *dir, __u64 rights)
{
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int err = allow_fd(ruleset, fd, rights);
    close(fd);
    return err;
}

/* The folder a log file is created in: "." for a bare name. */
static int allow_log(int ruleset, const char *path)
{
    if (!path)
        return 0;
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return -ENAMETOOLONG;
    return allow_path(ruleset, dir, LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG);
}

static int add_rules(int ruleset, const struct static_config *cfg)
{
    const __u64 read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
    int err = cfg->follow_symlinks ? allow_path(ruleset, "/", read)
                                   : allow_fd(ruleset, cfg->rootfd, read);
    if (err == 0)
        err = allow_log(ruleset, cfg->http.access_log_path);
    if (err == 0)
        err = allow_log(ruleset, cfg->error_log_path);
    return err;
}

int static_sandbox_apply(const struct static_config *cfg)
{
    long abi = ruleset_create(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0)
        return errno == ENOSYS || errno == EOPNOTSUPP ? 0 : -errno;
    /* Only the fields this ABI knows: an older kernel refuses a larger struct. */
    struct ruleset_attr attr = {.handled_access_fs = fs_rights((int)abi)};
    size_t size = offsetof(struct ruleset_attr, handled_access_net);
    if (abi >= 4) {
        attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
        size = offsetof(struct ruleset_attr, scoped);
    }
    /* No signal to, and no abstract Unix socket of, a process outside the
     * sandbox: the master, the other workers, anything of the same user. */
    if (abi >= 6) {
        attr.scoped = LANDLOCK_SCOPE_SIGNAL | LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET;
        size = sizeof attr;
    }
    int ruleset = (int)ruleset_create(&attr, size, 0);
    if (ruleset < 0)
        return -errno;
    int err = add_rules(ruleset, cfg);
    /* Without no_new_privs only a process with CAP_SYS_ADMIN may restrict
     * itself; a worker never executes anything, so it loses nothing. */
    if (err == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        err = -errno;
    if (err == 0 && restrict_self(ruleset) < 0)
        err = -errno;
    close(ruleset);
    return err < 0 ? err : (int)abi;
}

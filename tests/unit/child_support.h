/* child_support.h — forking a child process inside a unit test, and checking it exited cleanly. */
#ifndef TU_CHILD_SUPPORT_H
#define TU_CHILD_SUPPORT_H

#include <sys/types.h>

/* fork(); in the child, it dies with the test (PR_SET_PDEATHSIG) and after
 * 20 s at most (alarm). Asserts that fork worked. */
pid_t tu_fork_child(void);

/* Reap pid; assert it exited with status 0. */
void tu_wait_ok(pid_t pid);

#endif

/* probe: call raw syscalls a box's seccomp filter should refuse, print each result.
 *
 *   probe keyctl add_key bpf ...   ->   "keyctl: EPERM" (or "keyctl: OK", "bpf: EINVAL", ...)
 *
 * Built static by the tests (tests/integration/conftest.py), so it runs in a busybox box.
 * Every call uses arguments that are harmless when the call is allowed: a query, a bad
 * handle, invalid flags, a ring that is closed at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *errname(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case ESTALE: return "ESTALE";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case E2BIG: return "E2BIG";
    default: return NULL;
    }
}

static long call(const char *name) {
    if (!strcmp(name, "keyctl"))
        return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    if (!strcmp(name, "add_key"))
        return syscall(SYS_add_key, "user", "tuibox-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    if (!strcmp(name, "bpf")) {
        union bpf_attr attr;
        memset(&attr, 0, sizeof attr); /* a map of type 0 and size 0: EINVAL if allowed */
        return syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    }
    if (!strcmp(name, "kexec_load")) /* 0x8 is no KEXEC_* flag: EINVAL past the checks */
        return syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0x8UL);
    if (!strcmp(name, "open_by_handle_at")) {
        char buf[sizeof(struct file_handle) + 8];
        struct file_handle *h = (struct file_handle *)buf;
        memset(buf, 0, sizeof buf);
        h->handle_bytes = 8; /* a handle that names nothing */
        return syscall(SYS_open_by_handle_at, AT_FDCWD, h, O_RDONLY);
    }
    if (!strcmp(name, "io_uring_setup")) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        long fd = syscall(SYS_io_uring_setup, 1, &p);
        if (fd >= 0)
            close((int)fd);
        return fd;
    }
    if (!strcmp(name, "unshare_user"))
        return syscall(SYS_unshare, CLONE_NEWUSER);
    if (!strcmp(name, "mount"))
        return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0UL, NULL);
    if (!strcmp(name, "getppid"))
        return syscall(SYS_getppid);
    errno = ENOTSUP;
    return -2;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long r = call(argv[i]);
        if (r == -2 && errno == ENOTSUP) {
            printf("%s: unknown probe\n", argv[i]);
            continue;
        }
        if (r >= 0) {
            printf("%s: OK\n", argv[i]);
        } else {
            const char *n = errname(errno);
            if (n)
                printf("%s: %s\n", argv[i], n);
            else
                printf("%s: errno %d\n", argv[i], errno);
        }
        fflush(stdout);
    }
    return 0;
}

// SPDX-License-Identifier: MIT
/*
 * hd_fallback: the guard-page selftests again, as on a kernel without
 * MADV_GUARD_INSTALL (before Linux 6.13), where the hardened box makes its
 * guards with mprotect. A seccomp filter makes madvise() with
 * MADV_GUARD_INSTALL or MADV_GUARD_REMOVE fail with EINVAL, as such a
 * kernel does (an unknown advice); the filter stays through fork and exec,
 * so hd_guard, hd_l25_lazy, hd_bc_join and hd_bc_calloc run under it, with
 * HAKMEM_TEST_EXPECT_GUARDS=mprotect
 * (hd_guard checks that the probe chose mprotect). Each program is one
 * test point; its own output is shown indented.
 *
 * With arguments, runs that command under the filter instead (for
 * measuring the fallback: hd_fallback ./bench ...).
 *
 * runner: long
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include "tap.h"

#if defined(__x86_64__)
#define HD_AUDIT_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define HD_AUDIT_ARCH	AUDIT_ARCH_AARCH64
#endif

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define ARG_LO	4
#else
#define ARG_LO	0
#endif

static int refuse_guard_madvise(void)
{
#ifdef HD_AUDIT_ARCH
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, HD_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_madvise, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[2]) + ARG_LO),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 102 /* MADV_GUARD_INSTALL */, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 103 /* MADV_GUARD_REMOVE */, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
	};
	struct sock_fprog prog = { (unsigned short)(sizeof(f) / sizeof(f[0])), f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* Run path under the filter; its output indented. Exit status or -1. */
static int run(const char *path)
{
	char line[1024];
	int fds[2], st;
	FILE *f;
	pid_t pid;

	if (pipe(fds))
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		close(fds[1]);
		setenv("HAKMEM_TEST_EXPECT_GUARDS", "mprotect", 1);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	while (f && fgets(line, sizeof(line), f))
		printf("#   %s", line);
	if (f)
		fclose(f);
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	static const char *const progs[] = { "hd_guard", "hd_l25_lazy", "hd_bc_join",
						     "hd_bc_calloc" };
	char dir[4096], path[4200];
	ssize_t n;
	unsigned i;
	void *p;

	if (argc > 1) {
		if (refuse_guard_madvise()) {
			perror("hd_fallback: seccomp");
			return 1;
		}
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		return 127;
	}
	tap_plan(0);
	if (refuse_guard_madvise())
		tap_skip_all("no seccomp filter here (%s)", strerror(errno));
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	tap_ok(p != MAP_FAILED && madvise(p, 4096, 102) == -1 && errno == EINVAL,
	       "madvise(MADV_GUARD_INSTALL) fails with EINVAL under the filter");
	n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (n <= 0)
		tap_skip_all("no /proc/self/exe");
	dir[n] = '\0';
	*strrchr(dir, '/') = '\0';
	for (i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		int rc;

		snprintf(path, sizeof(path), "%s/%s", dir, progs[i]);
		if (access(path, X_OK)) {
			tap_skip("%s: not built in this configuration", progs[i]);
			continue;
		}
		rc = run(path);
		if (rc == 4)
			tap_skip("%s with mprotect guards: skipped itself", progs[i]);
		else
			tap_ok(rc == 0, "%s with mprotect guards (exit %d)", progs[i], rc);
	}
	tap_finish();
}

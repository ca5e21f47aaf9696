// SPDX-License-Identifier: MIT
/*
 * sandbox: a process that enters a seccomp sandbox whose default action
 * kills must survive hakmem's later calls (lib/os.c, "Sandboxes";
 * Documentation/reliability.md, "Twenty-first run: sandboxes"). Each
 * point runs in a child that fills the caches first, then installs a
 * filter that allows little more than glibc's malloc's system calls and
 * traps the rest (the handler prints the call's number and exits 3), then
 * allocates, frees, grows a block, callocs a cached large one, keeps the
 * allocator busy past the purge delay, idles past it and trims:
 *  1. OpenSSH's pre-auth filter (sandbox-seccomp-filter.c: openat, stat
 *     and fstat fail with EACCES, the rest of its list passes), installed
 *     with prctl as sshd does;
 *  2. the same plus what threads and fork need (clone, clone3, wait4,
 *     set_robust_list, rseq, rt_sigaction): a thread and a fork child
 *     allocate too, and four threads at once contend for the allocator's
 *     locks (no gettid: a lock wait reads the thread's id from a mutex);
 *  3. a filter in place since exec (systemd's SystemCallFilter=, bwrap):
 *     it also allows what the dynamic loader and glibc's start-up make
 *     (openat, read, prlimit64, arch_prctl...), installed with the raw
 *     system call, then this program again;
 *  4. point 1 with HAKMEM_BACKGROUND_PURGE=1 (the box built in): the
 *     fork child of a process whose purge thread runs starts its own at
 *     its first slow path;
 *  5-6. a filter in place since exec that allows every call (Docker's
 *     and Kubernetes' default profiles fail what they refuse, they do not
 *     kill): the process is taken as sandboxed, and with HAKMEM_SANDBOX=0
 *     it is not;
 *  7. the same for a process in 2,000 supplementary groups (root only):
 *     its Groups: line puts Seccomp: 16 KB into /proc/self/status, past
 *     the 4 KiB the probe read on 04efadd, which took it for unsandboxed;
 *  8. a program that sets no_new_privs before its first malloc, with
 *     HAKMEM_SANDBOX=0: not taken as sandboxed (on 04efadd the prctl took
 *     the default, the options being unread yet);
 *  9. point 2's filter, eight threads allocating at once for a while: a
 *     lock one waits for learned the thread's id with gettid, which
 *     OpenSSH's list (and glibc's malloc) lacks: killed on 04efadd (rv34).
 * Before sb33 points 1-4 died: at sysinfo (BigCache's memory sample, once the
 * openat of /proc/meminfo failed), getrusage (a busy purge pass opens a
 * refault window), mincore (calloc of a cached block) and clone (the
 * purge thread, started with every signal blocked: killed by SIGSYS).
 * Skipped where the kernel has no seccomp filters.
 */
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include "core_test.h"
#include "init.h"
#include "os.h"

#if defined(__x86_64__)
#define SB_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SB_ARCH	AUDIT_ARCH_AARCH64
#endif

#define EXIT_TRAPPED	3

enum sb_kind { SB_SSH, SB_THREADS, SB_START, SB_CONTEND };

/* OpenSSH 9.2's pre-auth list (the calls this architecture has). */
static const long ssh_allow[] = {
#ifdef __NR_brk
	__NR_brk,
#endif
	__NR_clock_gettime, __NR_close, __NR_exit, __NR_exit_group, __NR_futex,
	__NR_geteuid, __NR_getpgid, __NR_getpid, __NR_getrandom, __NR_gettimeofday,
	__NR_getuid, __NR_madvise, __NR_mmap, __NR_mprotect, __NR_mremap, __NR_munmap,
	__NR_nanosleep, __NR_clock_nanosleep, __NR_pselect6, __NR_read,
	__NR_rt_sigprocmask, __NR_shutdown, __NR_write,
#ifdef __NR_poll
	__NR_poll, __NR_select, __NR_time,
#endif
};
static const long ssh_eacces[] = {
	__NR_openat, __NR_newfstatat, __NR_fstat,
#ifdef __NR_open
	__NR_open, __NR_stat, __NR_lstat,
#endif
};
static const long thread_allow[] = {
	__NR_clone, __NR_clone3, __NR_wait4, __NR_set_robust_list, __NR_rseq,
	__NR_rt_sigaction,	/* glibc's first pthread_create installs its SIGRT_1 handler */
};
/* What ld.so and glibc's start-up make, and execve to get there. */
static const long start_allow[] = {
	__NR_execve, __NR_openat, __NR_newfstatat, __NR_fstat, __NR_pread64,
	__NR_prlimit64, __NR_set_tid_address, __NR_set_robust_list, __NR_rseq,
	__NR_sched_getaffinity, __NR_rt_sigaction, __NR_lseek,
#ifdef __NR_arch_prctl
	__NR_arch_prctl,
#endif
#ifdef __NR_access
	__NR_access,
#endif
};

static int sb_pipe[2] = { -1, -1 };

/* The trapped call's number to the parent's pipe, then out with 3. */
static void on_sys(int sig, siginfo_t *si, void *uc)
{
	int nr = si->si_syscall;

	(void)sig;
	(void)uc;
	if (write(sb_pipe[1], &nr, sizeof(nr)) < 0)
		_exit(EXIT_TRAPPED + 1);
	_exit(EXIT_TRAPPED);
}

#ifdef SB_ARCH
static unsigned add_list(struct sock_filter *f, unsigned n, const long *nr, size_t cnt,
			 unsigned ret)
{
	for (size_t i = 0; i < cnt; i++) {
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						      (unsigned)nr[i], 0, 1);
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, ret);
	}
	return n;
}
#endif

/*
 * Install the filter of kind k: through prctl (seen by the interposed
 * one, as sshd's is) or, for SB_START, through the raw system call (as a
 * filter installed before exec is never seen). 0 or an errno.
 */
static int sb_install(enum sb_kind k)
{
#ifdef SB_ARCH
	static struct sock_filter f[256];
	struct sock_fprog prog;
	unsigned n = 0;

	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SB_ARCH, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	n = add_list(f, n, ssh_allow, ARRAY_SIZE_CT(ssh_allow), SECCOMP_RET_ALLOW);
	if (k == SB_THREADS || k == SB_CONTEND)
		n = add_list(f, n, thread_allow, ARRAY_SIZE_CT(thread_allow), SECCOMP_RET_ALLOW);
	if (k == SB_START)
		n = add_list(f, n, start_allow, ARRAY_SIZE_CT(start_allow), SECCOMP_RET_ALLOW);
	else
		n = add_list(f, n, ssh_eacces, ARRAY_SIZE_CT(ssh_eacces),
			     SECCOMP_RET_ERRNO | EACCES);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP);
	prog.len = (unsigned short)n;
	prog.filter = f;
	if (k == SB_START) {
		if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog))
			return errno;
		return 0;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return errno;
	return 0;
#else
	(void)k;
	return ENOSYS;
#endif
}

/* Sizes from the small classes to BigCache's, some of each. */
static void churn(void)
{
	void *b[512];	/* its own for each thread (thread_contend) */
	static const size_t size[] = { 24, 200, 1500, 9000, 40000, 70000, 300000, 3u << 20 };
	unsigned i;

	for (i = 0; i < ARRAY_SIZE_CT(b); i++) {
		b[i] = malloc(size[i % ARRAY_SIZE_CT(size)] + i);
		if (b[i])
			memset(b[i], 1, 24);
	}
	for (i = 0; i < ARRAY_SIZE_CT(b); i += 2)
		free(b[i]);
	for (i = 1; i < ARRAY_SIZE_CT(b); i += 2)
		free(b[i]);
}

/* churn with its own array: threads run it at once */
static void churn_local(void)
{
	static const size_t size[] = { 24, 200, 1500, 9000, 40000, 70000, 300000, 3u << 20 };
	void *b[128];
	unsigned i;

	for (i = 0; i < ARRAY_SIZE_CT(b); i++) {
		b[i] = malloc(size[i % ARRAY_SIZE_CT(size)] + i);
		if (b[i])
			memset(b[i], 1, 24);
	}
	for (i = 0; i < ARRAY_SIZE_CT(b); i++)
		free(b[i]);
}

/* A large block written on its first page only, freed, then calloc'd. */
static void calloc_cached(void)
{
	char *p = malloc(8u << 20), *q;

	if (p)
		p[0] = 1;
	free(p);
	q = calloc(1, 8u << 20);
	if (q && (q[0] || q[(8u << 20) - 1]))
		_exit(EXIT_TRAPPED + 2);
	free(q);
}

/* A block realloc'd from the L2.5 pool's sizes to past 2 MiB. */
static void grow(void)
{
	char *p = malloc(100000), *q;
	size_t n;

	for (n = 200000; p && n < (6u << 20); n += n / 2) {
		q = realloc(p, n);
		if (!q)
			break;
		p = q;
		p[n - 1] = 1;
	}
	free(p);
}

/*
 * Point 9: threads allocating at once, so allocator locks are contended;
 * each stops after *arg rounds or 2 s, whichever comes first (a debug
 * build's checks make a round many times slower).
 */
static void *contend_work(void *arg)
{
	unsigned rounds = *(const unsigned *)arg;
	double end = ct_now_ms() + 2000;

	for (unsigned r = 0; r < rounds && ct_now_ms() < end; r++) {
		churn_local();
		grow();
	}
	return NULL;
}

static void *thread_work(void *arg)
{
	(void)arg;
	churn();
	calloc_cached();
	return NULL;
}

/* Churn for 200 ms: run by 4 threads at once, the allocator's locks are contended. */
static void *thread_contend(void *arg)
{
	double end = ct_now_ms() + 200;

	(void)arg;
	while (ct_now_ms() < end)
		churn();
	return NULL;
}

/* The allocator busy through ms (a slow path each 10 ms), then idle past the delay. */
static void busy_then_idle(unsigned ms, unsigned delay)
{
	for (unsigned t = 0; t < ms; t += 10) {
		churn();
		tst_sleep_ms(10);
	}
	tst_sleep_ms(delay + 50);
	ct_decay_tick();
	tst_sleep_ms(delay / 2);
	ct_decay_tick();
}

static void workload(enum sb_kind k)
{
	unsigned delay = (unsigned)__hak_opt.purge_delay_ms;

	if (!delay || delay > 1000)
		delay = 250;
	churn();
	grow();
	calloc_cached();
	if (k == SB_THREADS) {
		pthread_t t;
		pid_t pid;
		int st;

		pthread_t c[4];

		if (pthread_create(&t, NULL, thread_work, NULL) == 0)
			pthread_join(t, NULL);
		else
			_exit(EXIT_TRAPPED + 3);
		for (unsigned i = 0; i < ARRAY_SIZE_CT(c); i++)
			if (pthread_create(&c[i], NULL, thread_contend, NULL))
				_exit(EXIT_TRAPPED + 3);
		for (unsigned i = 0; i < ARRAY_SIZE_CT(c); i++)
			pthread_join(c[i], NULL);
		pid = fork();
		if (pid == 0) {
			thread_work(NULL);
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
		    WEXITSTATUS(st))
			_exit(EXIT_TRAPPED + 4);
	}
	if (k == SB_CONTEND) {
		static unsigned rounds;
		pthread_t t[8];
		unsigned i;

		rounds = 300;	/* 04efadd: killed 5 of 5 at 150 (about 1 s), 2 of 5 at 20 */
		for (i = 0; i < ARRAY_SIZE_CT(t); i++)
			if (pthread_create(&t[i], NULL, contend_work, &rounds))
				_exit(EXIT_TRAPPED + 3);
		for (i = 0; i < ARRAY_SIZE_CT(t); i++)
			pthread_join(t[i], NULL);
		_exit(0);
	}
	busy_then_idle(2 * delay, delay);
	grow();
	calloc_cached();
	malloc_trim(0);
	churn();
	_exit(0);
}

/* The SIGSYS handler; and an alarm for a hang, kept across exec (none under the filter). */
static void set_trap(int with_alarm)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
	if (with_alarm)
		alarm(60);
}

/* The parent's warm-up: every cache holds something, the purge has run. */
static void warm(void)
{
	churn();
	grow();
	calloc_cached();
	ct_decay_tick();
}

/*
 * A child that installs the filter of kind k (SB_START: then runs this
 * program again with "start"; with exec_bg: runs it again with "bg" and
 * HAKMEM_BACKGROUND_PURGE=1, which forks the sandboxed child itself) and
 * runs the workload. Its result as a string; *nr the trapped call or -1.
 */
static const char *sb_run(enum sb_kind k, int exec_bg, char *self, int *nr)
{
	static char why[64];
	pid_t pid;
	int st, got;

	*nr = -1;
	if (pipe(sb_pipe))
		tap_bail("pipe");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		tap_bail("fork");
	if (pid == 0) {
		close(sb_pipe[0]);
		set_trap(1);
		if (exec_bg || k == SB_START) {
			char fd[16], *av[] = { self, exec_bg ? (char *)"bg" : (char *)"start", fd, NULL };

			snprintf(fd, sizeof(fd), "%d", sb_pipe[1]);
			if (exec_bg)
				setenv("HAKMEM_BACKGROUND_PURGE", "1", 1);
			else if (sb_install(k))
				_exit(EXIT_TRAPPED + 5);
			execv(self, av);
			_exit(EXIT_TRAPPED + 6);
		}
		if (sb_install(k))
			_exit(EXIT_TRAPPED + 5);
		workload(k);
	}
	close(sb_pipe[1]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (read(sb_pipe[0], &got, sizeof(got)) == (ssize_t)sizeof(got))
		*nr = got;
	close(sb_pipe[0]);
	if (WIFEXITED(st) && !WEXITSTATUS(st))
		return NULL;
	if (WIFEXITED(st))
		snprintf(why, sizeof(why), "exit %d", WEXITSTATUS(st));
	else
		snprintf(why, sizeof(why), "signal %d", WTERMSIG(st));
	return why;
}

/*
 * Exec this program as mode ("probe": under a filter that allows every
 * call, in groups supplementary groups unless 0; "early": no filter, a
 * prctl before the first malloc), HAKMEM_SANDBOX set to opt unless NULL:
 * its exit status (10 + the state its first malloc found), or -1; 5 when
 * the groups cannot be set (not root).
 */
static int probe_run(char *self, const char *mode, const char *opt, unsigned groups)
{
#ifdef SB_ARCH
	static struct sock_filter all[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
	static gid_t gid[2000];
	struct sock_fprog prog = { .len = 1, .filter = all };
	char *av[] = { self, (char *)mode, NULL };
	pid_t pid;
	int st;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		tap_bail("fork");
	if (pid == 0) {
		if (opt)
			setenv("HAKMEM_SANDBOX", opt, 1);
		else
			unsetenv("HAKMEM_SANDBOX");
		for (unsigned i = 0; i < groups && i < ARRAY_SIZE_CT(gid); i++)
			gid[i] = (gid_t)(1000000000u + i);	/* ten digits each */
		if (groups && setgroups(groups, gid))
			_exit(5);
		if (!strcmp(mode, "probe") &&
		    (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
		     syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)))
			_exit(1);
		execv(self, av);
		_exit(2);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
#else
	(void)self;
	(void)mode;
	(void)opt;
	(void)groups;
	return -1;
#endif
}

static void sb_point(const char *what, const char *why, int nr)
{
	if (nr >= 0)
		tap_diag("%s: trapped system call %d", what, nr);
	tap_ok(!why, "%s: the workload survives (%s)", what, why ? why : "exit 0");
}

int main(int argc, char **argv)
{
	static char self[4096];
	const char *why;
	ssize_t n;
	int nr;

	if (argc == 3 && !strcmp(argv[1], "start")) {
		/* exec'd under the filter: the pipe to report on is argv[2] */
		sb_pipe[1] = atoi(argv[2]);
		set_trap(0);
		workload(SB_START);
	}
	if (argc == 2 && !strcmp(argv[1], "early")) {
		/* no_new_privs before the first malloc (if none came before main) */
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		free(malloc(64));
		_exit(10 + __atomic_load_n(&__hak_os_sandbox, __ATOMIC_RELAXED));
	}
	if (argc == 2 && !strcmp(argv[1], "probe")) {
		/* exec'd under an allow-all filter: what the first malloc found */
		free(malloc(64));
		_exit(10 + __atomic_load_n(&__hak_os_sandbox, __ATOMIC_RELAXED));
	}
	if (argc == 3 && !strcmp(argv[1], "bg")) {
		/* HAKMEM_BACKGROUND_PURGE=1: the thread runs, then a sandboxed child */
		pid_t pid;
		int st;

		sb_pipe[1] = atoi(argv[2]);
		warm();
		tst_sleep_ms(20);
		warm();
		pid = fork();
		if (pid == 0) {
			set_trap(1);
			if (sb_install(SB_SSH))
				_exit(EXIT_TRAPPED + 5);
			workload(SB_SSH);
		}
		while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (pid < 0)
			_exit(EXIT_TRAPPED + 7);
		/* a trap with every signal blocked (as around pthread_create) kills: 64 + SIGSYS */
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 64 + WTERMSIG(st));
	}
#ifndef SB_ARCH
	tap_skip_all("no seccomp filter for this architecture in the test");
#endif
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL)
		tap_skip_all("a kernel without seccomp");
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		tap_skip_all("no /proc/self/exe");
	self[n] = '\0';
	tap_plan(9);
	warm();
	why = sb_run(SB_SSH, 0, self, &nr);
	sb_point("OpenSSH's pre-auth filter, installed late", why, nr);
	why = sb_run(SB_THREADS, 0, self, &nr);
	sb_point("the same with threads and fork", why, nr);
	why = sb_run(SB_START, 0, self, &nr);
	sb_point("a filter in place since exec", why, nr);
	if (IS_ENABLED(CONFIG_HAK_BACKGROUND_PURGE)) {
		why = sb_run(SB_SSH, 1, self, &nr);
		sb_point("OpenSSH's filter in a fork child with HAKMEM_BACKGROUND_PURGE=1", why, nr);
	} else {
		tap_skip("no background purge box");
	}
	nr = probe_run(self, "probe", NULL, 0);
	tap_ok(nr == 10 + HAK_SANDBOX_AT_START,
	       "an allow-all filter in place since exec: taken as sandboxed (%d)", nr - 10);
	nr = probe_run(self, "probe", "0", 0);
	tap_ok(nr == 10 + HAK_SANDBOX_NONE,
	       "the same with HAKMEM_SANDBOX=0: not taken as sandboxed (%d)", nr - 10);
	nr = probe_run(self, "probe", NULL, 2000);
	if (nr == 5)
		tap_skip("2,000 supplementary groups: setgroups refused (not root)");
	else
		tap_ok(nr == 10 + HAK_SANDBOX_AT_START,
		       "the same in 2,000 groups (Seccomp: past 16 KB): taken as sandboxed (%d)",
		       nr - 10);
	nr = probe_run(self, "early", "0", 0);
	tap_ok(nr == 10 + HAK_SANDBOX_NONE,
	       "no_new_privs before the first malloc, HAKMEM_SANDBOX=0: not sandboxed (%d)",
	       nr - 10);
	why = sb_run(SB_CONTEND, 0, self, &nr);
	sb_point("the same with eight threads allocating at once", why, nr);
	tap_finish();
}

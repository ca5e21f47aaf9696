// SPDX-License-Identifier: MIT
/*
 * api_misc: the statistics calls, trimming, RSS release and the hak_* API.
 *
 * Proves that
 *  - mallinfo2's in-use figures (uordblks + hblkhd) grow by about 64 MiB
 *    when 64 MiB is allocated (as one large block and as 64 Ki small
 *    blocks) and fall back when it is freed, and arena/free figures are
 *    sane;
 *  - memory freed in bulk goes back to the OS: VmRSS falls after a 64 MiB
 *    peak of small blocks once they are freed (and malloc_trim(0) does not
 *    undo that);
 *  - malloc_trim returns 0 or 1 and the allocator still works after it;
 *  - malloc_stats (and hak_malloc_stats) print something to stderr and
 *    leave errno alone;
 *  - (hakmem builds) the hak_* public API behaves like the libc names
 *    (allocation, alignment, errors, usable size, sized frees, a shared
 *    heap with the libc names) and hak_stats_get/hak_version/hak_config
 *    report sane values.
 */
#include <fcntl.h>

#include "core_test.h"

#if CT_HAKMEM
# include <hakmem/hakmem.h>
# define CT_HAK_API 1
#else
# define CT_HAK_API 0
#endif

#define MIB	((size_t)1 << 20)

static size_t in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static void mallinfo_moves(void)
{
	enum { NSMALL = 65536 };
	static void *v[NSMALL];
	size_t base, peak, after;
	void *big;
	struct mallinfo2 mi;

	base = in_use();
	big = ct_launder(malloc(ct_opaque(64 * MIB)));
	memset(big, 1, 64 * MIB);
	peak = in_use();
	tap_ok(big && peak >= base + 63 * MIB,
	       "mallinfo2 in-use grows by 64 MiB after malloc(64 MiB) (%zu -> %zu)", base, peak);
	free(big);
	after = in_use();
	tap_ok(after + 63 * MIB <= peak,
	       "mallinfo2 in-use falls by 64 MiB after free (%zu -> %zu)", peak, after);

	base = in_use();
	for (int i = 0; i < NSMALL; i++) {
		v[i] = malloc(ct_opaque(1024));
		if (!v[i])
			tap_bail("malloc(1024) failed");
	}
	peak = in_use();
	mi = mallinfo2();
	tap_ok(peak >= base + 63 * MIB,
	       "mallinfo2 in-use grows by 64 MiB after 64 Ki x malloc(1 KiB) (%zu -> %zu)",
	       base, peak);
	tap_ok(mi.arena + mi.hblkhd >= mi.uordblks + mi.hblkhd && mi.arena >= mi.fordblks,
	       "mallinfo2 arena %zu >= in-use %zu and free %zu", mi.arena, mi.uordblks,
	       mi.fordblks);
	for (int i = 0; i < NSMALL; i++)
		free(v[i]);
	after = in_use();
	tap_ok(after + 63 * MIB <= peak,
	       "mallinfo2 in-use falls by 64 MiB after freeing them (%zu -> %zu)", peak, after);
}

static void rss_falls(void)
{
	enum { N = 64 * 1024 };
	static void *v[N];
	long base, peak, after, trimmed;
	int r;

	/*
	 * From the allocator's floor: memory cached by earlier checks would
	 * otherwise decay (purge delay) during the loop and hide the peak.
	 */
	malloc_trim(0);
	base = proc_status_kib("VmRSS");
	for (int i = 0; i < N; i++) {
		/* a mix of small and mid sizes: 64 MiB in all */
		size_t n = (i & 15) == 0 ? 8192 : 512;

		v[i] = malloc(ct_opaque(n));
		if (!v[i])
			tap_bail("malloc failed");
		memset(v[i], 0x33, n);
	}
	peak = proc_status_kib("VmRSS");
	for (int i = 0; i < N; i++)
		free(v[i]);
	after = proc_status_kib("VmRSS");
	tap_diag("VmRSS: start %ld KiB, peak %ld KiB, after free %ld KiB", base, peak, after);
	tap_ok(peak - base >= 40 * 1024 && after < base + (peak - base) / 2,
	       "RSS falls by at least half of a 64 MiB small-block peak after the frees");
	r = malloc_trim(0);
	trimmed = proc_status_kib("VmRSS");
	tap_ok((r == 0 || r == 1) && trimmed < base + (peak - base) / 2,
	       "malloc_trim(0) returns %d, RSS stays low (%ld KiB)", r, trimmed);
	r = malloc_trim(1 << 20);
	{
		void *p = malloc(100), *q = malloc(1 << 20);

		tap_ok((r == 0 || r == 1) && p && q,
		       "malloc_trim(1 MiB pad) returns %d and allocation works afterwards", r);
		free(p);
		free(q);
	}
}

static void stats_print(void (*print)(void), const char *name)
{
	char path[] = "/tmp/hak-api-misc-XXXXXX";
	char buf[4096];
	int fd = mkstemp(path), saved;
	ssize_t n;
	void *keep = malloc(1000);
	int errno_kept;

	if (fd < 0)
		tap_bail("mkstemp failed");
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	errno = 1234;
	print();
	errno_kept = errno == 1234;
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	free(keep);
	if (n > 0) {
		char *nl;

		buf[n] = 0;
		nl = strchr(buf, '\n');
		if (nl)
			*nl = 0;
		tap_diag("%s: %s", name, buf);
	}
	tap_ok(n > 0 && errno_kept, "%s prints to stderr (%zd bytes), errno kept", name, n);
}

#if CT_HAK_API
/* Without the heapprof box hak_prof_dump is still there, and says ENOSYS. */
static void prof_dump_stub(void)
{
	int r;

	if (IS_ENABLED(CONFIG_HAK_HEAPPROF)) {
		tap_skip("hak_prof_dump without the heapprof box: the box is in");
		return;
	}
	errno = 0;
	r = hak_prof_dump("/nonexistent/hak-prof");
	tap_ok(r == -1 && errno == ENOSYS, "hak_prof_dump without the box: -1, ENOSYS "
	       "(%d, errno %d)", r, errno);
}

static void hak_api(void)
{
	void *p, *q;
	int ok = 1;

	p = hak_malloc(100);
	ok = p && ct_is_aligned(p, 16);
	if (p)
		memset(p, 7, 100);
	q = hak_realloc(p, 5000);
	ok = ok && q && ((unsigned char *)q)[99] == 7;
	hak_free(q);
	tap_ok(ok, "hak_malloc/hak_realloc/hak_free behave like malloc/realloc/free");

	p = hak_calloc(100, 100);
	ok = p != NULL;
	for (int i = 0; p && i < 10000; i++)
		if (((unsigned char *)p)[i])
			ok = 0;
	hak_free(p);
	errno = 0;
	p = hak_calloc(SIZE_MAX / 2, ct_opaque(3));
	ok = ok && !p && errno == ENOMEM;
	tap_ok(ok, "hak_calloc zeroes and rejects overflow with ENOMEM");

	errno = 0;
	p = hak_malloc(ct_opaque(SIZE_MAX));
	tap_ok(!p && errno == ENOMEM, "hak_malloc(SIZE_MAX) -> NULL, ENOMEM");

	{
		void *a = NULL;
		int rc = hak_posix_memalign(&a, 4096, 100);
		void *b = hak_aligned_alloc(1 << 16, 10);
		void *c = hak_memalign(256, 1000);
		void *d = hak_valloc(10);
		void *e = hak_pvalloc(10);
		void *f = (void *)0x1;

		ok = rc == 0 && ct_is_aligned(a, 4096) && hak_malloc_usable_size(a) >= 100 &&
		     b && ct_is_aligned(b, 1 << 16) && c && ct_is_aligned(c, 256) &&
		     d && ct_is_aligned(d, 4096) && e && hak_malloc_usable_size(e) >= 4096;
		ok = ok && hak_posix_memalign(&f, 24, 64) == EINVAL && f == (void *)0x1;
		hak_free(a);
		hak_free_aligned_sized(b, 1 << 16, 10);
		hak_free(c);
		hak_free(d);
		hak_free(e);
		tap_ok(ok, "hak_posix_memalign/aligned_alloc/memalign/valloc/pvalloc honour alignment");
	}

	p = hak_reallocarray(NULL, 100, 8);
	ok = p && hak_malloc_usable_size(p) >= 800;
	hak_free_sized(p, 800);
	errno = 0;
	p = hak_reallocarray(NULL, SIZE_MAX / 2, ct_opaque(3));
	ok = ok && !p && errno == ENOMEM;
	tap_ok(ok, "hak_reallocarray allocates and rejects overflow; hak_free_sized frees");

	/* a block from one API family is freed by the other */
	p = hak_malloc(300);
	q = malloc(300);
	ok = hak_malloc_usable_size(q) == malloc_usable_size(q);
	free(p);
	hak_free(q);
	hak_free(NULL);
	tap_ok(ok, "hak_* and libc names share one heap (cross frees, same usable size)");

	{
		struct hak_stats st;
		void *big;
		int r;

		memset(&st, 0xff, sizeof(st));
		big = hak_malloc(8 << 20);
		hak_stats_get(&st);
		tap_ok(st.large_blocks >= 1 && st.large_bytes >= (8u << 20) &&
		       st.mapped_bytes >= st.large_bytes && st.large_maps >= st.large_unmaps,
		       "hak_stats_get: %zu large blocks, %zu bytes, %zu mapped", st.large_blocks,
		       st.large_bytes, st.mapped_bytes);
		hak_free(big);
		r = hak_malloc_trim(0);
		tap_ok(r == 0 || r == 1, "hak_malloc_trim returns %d", r);
		tap_ok(hak_version() && !strcmp(hak_version(), HAKMEM_VERSION) && hak_config() &&
		       hak_config()[0], "hak_version() = %s, hak_config() = %s", hak_version(),
		       hak_config() ? hak_config() : "(null)");
	}
}
#endif

int main(void)
{
	tap_plan(0);
	mallinfo_moves();
	rss_falls();
	stats_print(malloc_stats, "malloc_stats");
#if CT_HAK_API
	stats_print(hak_malloc_stats, "hak_malloc_stats");
	prof_dump_stub();
	hak_api();
#else
	tap_skip("hak_* API: tested when linked with hakmem only");
#endif
	tap_finish();
}

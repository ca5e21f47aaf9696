// SPDX-License-Identifier: MIT
//
// The C++ operators new and delete, as a C++ program sees them: new(0) a
// unique block, every alignment of the aligned forms kept, a failed new
// calling the new-handler until it returns a block (the handler raises
// the RLIMIT_AS that made the request fail) and throwing std::bad_alloc
// once no handler is left, nothrow forms returning nullptr. "hakmem" mode
// also checks that each block is hakmem's (malloc_usable_size of a foreign
// block aborts with hakmem's report). One line per check, "ok" or "FAIL".
#include <malloc.h>
#include <sys/resource.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

static int fails;
static int handler_calls;
static rlimit saved_as;

static void check(bool good, const char *what)
{
	std::printf("%s %s\n", good ? "ok" : "FAIL", what);
	fails += !good;
}

// gives up after three calls: the next failure must throw
static void counting_handler()
{
	if (++handler_calls == 3)
		std::set_new_handler(nullptr);
}

// lifts the limit that failed the request, as a handler freeing a reserve would
static void raising_handler()
{
	handler_calls++;
	setrlimit(RLIMIT_AS, &saved_as);
}

static size_t vm_bytes()
{
	unsigned long pages = 0;
	FILE *f = std::fopen("/proc/self/statm", "r");

	if (f) {
		if (std::fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		std::fclose(f);
	}
	return pages * 4096;
}

int main(int argc, char **argv)
{
	bool hakmem = argc > 1 && !std::strcmp(argv[1], "hakmem");
	const size_t huge = (size_t)1 << 62;

	char *a = static_cast<char *>(::operator new(0));
	char *b = static_cast<char *>(::operator new(0));
	check(a && b && a != b, "operator new(0) twice: two distinct blocks");
	::operator delete(a);
	::operator delete(b, (size_t)0);

	bool aligned = true;
	for (size_t al = 16; al <= 65536; al *= 2) {
		for (size_t n : {(size_t)1, al - 1, al * 3, (size_t)100000}) {
			void *p = ::operator new(n, std::align_val_t(al));
			void *q = ::operator new[](n, std::align_val_t(al), std::nothrow);
			aligned = aligned && p && q && !((uintptr_t)p % al) && !((uintptr_t)q % al);
			std::memset(p, 1, n);
			if (hakmem)
				aligned = aligned && malloc_usable_size(p) >= n;
			::operator delete(p, n, std::align_val_t(al));
			::operator delete[](q, std::align_val_t(al));
		}
	}
	check(aligned, "aligned new and new[] (16 B to 64 KiB alignments) keep the alignment");

	std::string s;
	for (int i = 0; i < 20000; i++)
		s += "grow";
	int *v = new int[100000]();
	v[99999] = 7;
	bool own = s.size() == 80000 && v[99999] == 7 && v[0] == 0;
	if (hakmem)
		own = own && malloc_usable_size(v) >= 400000 && malloc_usable_size(&s[0]) >= 80001;
	delete[] v;
	check(own, "std::string growth and new int[] value-initialised (hakmem's blocks)");

	void *n1 = ::operator new(huge, std::nothrow);
	void *n2 = ::operator new[](huge, std::align_val_t(4096), std::nothrow);
	check(!n1 && !n2, "nothrow new of 2^62 bytes returns nullptr");

	bool threw = false;
	try {
		void *p = ::operator new(huge);
		::operator delete(p);
	} catch (const std::bad_alloc &) {
		threw = true;
	}
	check(threw, "new of 2^62 bytes without a handler throws std::bad_alloc");

	std::set_new_handler(counting_handler);
	threw = false;
	try {
		char *p = new char[huge];
		delete[] p;
	} catch (const std::bad_alloc &) {
		threw = true;
	}
	check(threw && handler_calls == 3, "new[] of 2^62 bytes calls the handler until it is removed, then throws");

	// A request that fails only under RLIMIT_AS: the handler lifts the
	// limit. Set twice: the first limit makes hakmem give its 4 GiB page
	// map up (lib/interpose.c, prlimit), which changes the process's size.
	getrlimit(RLIMIT_AS, &saved_as);
	rlimit low = saved_as;
	low.rlim_cur = vm_bytes() + ((size_t)64 << 20);
	int set = setrlimit(RLIMIT_AS, &low);
	low.rlim_cur = vm_bytes() + ((size_t)64 << 20);
	set |= setrlimit(RLIMIT_AS, &low);
	handler_calls = 0;
	std::set_new_handler(raising_handler);
	bool got = false;
	if (set == 0) {
		try {
			char *p = static_cast<char *>(::operator new((size_t)512 << 20));
			p[0] = 1;
			got = true;
			::operator delete(p);
		} catch (const std::bad_alloc &) {
		}
	}
	setrlimit(RLIMIT_AS, &saved_as);
	std::set_new_handler(nullptr);
	check(got && handler_calls >= 1, "new of 512 MiB over RLIMIT_AS: the handler lifts the limit, the retry succeeds");

	::operator delete(nullptr);
	::operator delete[](nullptr, std::nothrow);
	std::printf("%d failed\n", fails);
	return fails != 0;
}

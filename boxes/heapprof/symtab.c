// SPDX-License-Identifier: MIT
/*
 * Names for the heap profiler's folded stacks and leak report, from each
 * module's dynamic symbol table (.dynsym through PT_DYNAMIC: the only
 * table that is surely mapped). Functions a module does not export (most
 * of a program built without -rdynamic) are written "module+0xoffset",
 * which addr2line or pprof can resolve later. Linear scans: this runs at
 * dump time only.
 */
#include <link.h>
#include <string.h>
#include <unistd.h>
#include "box.h"
#include "boxes/heapprof/prof_internal.h"

/* The loader relocates most d_ptr values in place; the vdso's it does not. */
static uintptr_t dyn_ptr(const struct hp_module *m, uintptr_t v)
{
	return v < m->bias ? v + m->bias : v;
}

const char *__hak_prof_symbol(const struct hp_module *m, uintptr_t pc, uintptr_t *off)
{
	const ElfW(Dyn) *d;
	const ElfW(Sym) *sym = NULL, *best = NULL;
	const uint32_t *hash = NULL, *gnu = NULL;
	const char *str = NULL;
	size_t count, i;
	uintptr_t rel = pc - m->bias;

	if (!m->dyn)
		return NULL;
	for (d = m->dyn; d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB:
			sym = (const ElfW(Sym) *)dyn_ptr(m, d->d_un.d_ptr);
			break;
		case DT_STRTAB:
			str = (const char *)dyn_ptr(m, d->d_un.d_ptr);
			break;
		case DT_HASH:
			hash = (const uint32_t *)dyn_ptr(m, d->d_un.d_ptr);
			break;
		case DT_GNU_HASH:
			gnu = (const uint32_t *)dyn_ptr(m, d->d_un.d_ptr);
			break;
		}
	}
	if (!sym || !str)
		return NULL;
	count = __hak_os_elf_nsyms(hash, gnu);
	for (i = 1; i < count; i++) {
		const ElfW(Sym) *s = &sym[i];

		if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || !s->st_value ||
		    s->st_shndx == SHN_UNDEF || s->st_value > rel)
			continue;
		if (s->st_size && rel >= s->st_value + s->st_size)
			continue;
		if (!best || s->st_value > best->st_value)
			best = s;
	}
	if (!best)
		return NULL;
	*off = rel - best->st_value;
	return str + best->st_name;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The main program's name ("" in the loader's list). */
static const char *exe_name(void)
{
	static char exe[256];
	ssize_t n;

	if (!exe[0]) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			strcpy(exe, "main");
		else
			exe[n] = 0;
	}
	return exe;
}

static size_t put(char *buf, size_t len, size_t at, const char *s)
{
	size_t n = strlen(s);

	if (at + n >= len)
		n = at < len ? len - at - 1 : 0;
	memcpy(buf + at, s, n);
	return at + n;
}

static size_t put_hex(char *buf, size_t len, size_t at, uintptr_t v)
{
	char t[20];
	int n = 0;

	do {
		t[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	at = put(buf, len, at, "0x");
	while (n && at + 1 < len)
		buf[at++] = t[--n];
	return at;
}

size_t __hak_prof_pc_text(uintptr_t pc, char *buf, size_t len)
{
	struct hp_module m;
	const char *name;
	uintptr_t off = 0;
	size_t at = 0;

	if (!len)
		return 0;
	if (!__hak_prof_module_of(pc, &m)) {
		at = put_hex(buf, len, 0, pc);
	} else if ((name = __hak_prof_symbol(&m, pc, &off)) && *name) {
		at = put(buf, len, 0, name);
	} else {
		at = put(buf, len, 0, base_name(*m.name ? m.name : exe_name()));
		at = put(buf, len, at, "+");
		at = put_hex(buf, len, at, pc - m.bias);
	}
	buf[at] = 0;
	return at;
}

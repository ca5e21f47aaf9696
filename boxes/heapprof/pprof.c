// SPDX-License-Identifier: MIT
/*
 * The heap profiler's output, written without malloc (buffers come from
 * the OS layer and are unmapped when the dump ends):
 *
 *   pprof      profile.proto (github.com/google/pprof/proto/profile.proto)
 *              encoded by hand, gzip-wrapped. Sample types alloc_objects,
 *              alloc_space, inuse_objects, inuse_space; one Location per
 *              distinct pc; the executable file mappings of
 *              /proc/self/maps with their file offsets and GNU build IDs
 *              (read from each ELF's PT_NOTE in memory), so pprof
 *              symbolizes from the binaries on disk.
 *   collapsed  one line per stack with live bytes, "root;...;leaf bytes",
 *              named from the dynamic symbol tables (flamegraph tools).
 *
 * gzip (RFC 1951/1952): one deflate block per 64 KiB of output, greedy
 * LZ77 inside the block and the fixed Huffman codes, then the CRC-32 and
 * length trailer; pprof and gunzip read it.
 */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "box.h"
#include "boxes/heapprof/prof_internal.h"

#define SINK_BUF	65536		/* input bytes per deflate block */

/* ---- output: plain or gzip (deflate, fixed Huffman codes) ---- */

#define GZ_OUT		(SINK_BUF + SINK_BUF / 4 + 64)	/* 9 bits a byte at worst */
#define GZ_HASH		4096
#define GZ_WINDOW	32768
#define GZ_MAX_MATCH	258

struct sink {
	int fd;
	bool gz;
	int err;
	uint32_t crc, isize;
	size_t n;
	uint8_t *buf;			/* SINK_BUF bytes of input */
	uint8_t *out;			/* GZ_OUT bytes of compressed output */
	uint32_t *head;			/* GZ_HASH: last position + 1 of a 3-byte hash */
	size_t on;
	uint64_t bb;			/* bits not yet written, LSB first */
	unsigned bn;
};

static uint32_t crc_table[256];

static void crc_init(void)
{
	uint32_t i, j, c;

	if (crc_table[1])
		return;
	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void write_all(struct sink *s, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n && !s->err) {
		ssize_t w = write(s->fd, b, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			s->err = errno;
			return;
		}
		b += w;
		n -= (size_t)w;
	}
}

static void bits_put(struct sink *s, uint32_t v, unsigned n)
{
	s->bb |= (uint64_t)v << s->bn;
	s->bn += n;
	while (s->bn >= 8) {
		s->out[s->on++] = (uint8_t)s->bb;
		s->bb >>= 8;
		s->bn -= 8;
	}
}

/* A Huffman code: n bits of v, most significant first. */
static void code_put(struct sink *s, uint32_t v, unsigned n)
{
	uint32_t r = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		r |= ((v >> i) & 1) << (n - 1 - i);
	bits_put(s, r, n);
}

/* Literal/length symbol v in the fixed code (RFC 1951, 3.2.6). */
static void lit_put(struct sink *s, unsigned v)
{
	if (v < 144)
		code_put(s, 0x30 + v, 8);
	else if (v < 256)
		code_put(s, 0x190 + v - 144, 9);
	else if (v < 280)
		code_put(s, v - 256, 7);
	else
		code_put(s, 0xc0 + v - 280, 8);
}

static const uint16_t len_base[29] = {
	3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
};
static const uint8_t len_extra[29] = {
	0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
	3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
};
static const uint16_t dist_base[30] = {
	1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
	257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
};
static const uint8_t dist_extra[30] = {
	0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
	7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
};

static void match_put(struct sink *s, unsigned len, unsigned dist)
{
	unsigned i = 28, d = 29;

	while (len_base[i] > len)
		i--;
	lit_put(s, 257 + i);
	bits_put(s, len - len_base[i], len_extra[i]);
	while (dist_base[d] > dist)
		d--;
	code_put(s, d, 5);
	bits_put(s, dist - dist_base[d], dist_extra[d]);
}

static unsigned hash3(const uint8_t *p)
{
	return ((uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]) * 2654435761u >> 20;
}

/*
 * One deflate block of buf[0..n): greedy LZ77 within the block (one
 * candidate per 3-byte hash), fixed Huffman codes.
 */
static void deflate_block(struct sink *s, bool final)
{
	const uint8_t *b = s->buf;
	size_t i = 0, n = s->n;

	memset(s->head, 0, GZ_HASH * sizeof(*s->head));
	bits_put(s, final, 1);
	bits_put(s, 1, 2);			/* BTYPE 01: fixed codes */
	while (i < n) {
		if (i + 3 <= n) {
			unsigned h = hash3(b + i);
			size_t c = s->head[h], len = 0;

			s->head[h] = (uint32_t)i + 1;
			if (c-- && i - c <= GZ_WINDOW) {
				size_t max = n - i < GZ_MAX_MATCH ? n - i : GZ_MAX_MATCH;

				while (len < max && b[c + len] == b[i + len])
					len++;
			}
			if (len >= 3) {
				match_put(s, (unsigned)len, (unsigned)(i - c));
				i += len;
				continue;
			}
		}
		lit_put(s, b[i++]);
	}
	lit_put(s, 256);			/* end of block */
	if (final && s->bn)
		bits_put(s, 0, 8 - s->bn);	/* pad to a byte */
	write_all(s, s->out, s->on);
	s->on = 0;
}

static void sink_flush(struct sink *s, bool final)
{
	if (!s->gz) {
		write_all(s, s->buf, s->n);
		s->n = 0;
		return;
	}
	s->crc = crc32_update(s->crc, s->buf, s->n);
	s->isize += (uint32_t)s->n;
	deflate_block(s, final);
	s->n = 0;
}

static void sink_put(struct sink *s, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		size_t k = SINK_BUF - s->n;

		if (k > n)
			k = n;
		memcpy(s->buf + s->n, b, k);
		s->n += k;
		b += k;
		n -= k;
		if (s->n == SINK_BUF)
			sink_flush(s, false);
	}
}

static void sink_open(struct sink *s, bool gz)
{
	static const uint8_t hdr[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };

	if (gz) {
		crc_init();
		write_all(s, hdr, sizeof(hdr));
	}
	s->gz = gz;
}

static void sink_close(struct sink *s)
{
	uint8_t t[8];
	unsigned i;

	sink_flush(s, true);
	if (!s->gz)
		return;
	for (i = 0; i < 4; i++) {
		t[i] = (uint8_t)(s->crc >> (8 * i));
		t[4 + i] = (uint8_t)(s->isize >> (8 * i));
	}
	write_all(s, t, 8);
}

/* ---- protobuf ---- */

struct pb {
	uint8_t *b;
	size_t n, cap;
};

static void pb_varint(struct pb *m, uint64_t v)
{
	do {
		uint8_t c = v & 0x7f;

		v >>= 7;
		if (v)
			c |= 0x80;
		if (m->n < m->cap)
			m->b[m->n] = c;
		m->n++;
	} while (v);
}

static void pb_int(struct pb *m, unsigned field, uint64_t v)
{
	pb_varint(m, (uint64_t)field << 3);
	pb_varint(m, v);
}

static void pb_bytes(struct pb *m, unsigned field, const void *p, size_t n)
{
	pb_varint(m, (uint64_t)field << 3 | 2);
	pb_varint(m, n);
	if (m->n + n <= m->cap)
		memcpy(m->b + m->n, p, n);
	m->n += n;
}

/* Write field `field` of the Profile: the message m, length-delimited. */
static void emit(struct sink *s, unsigned field, const struct pb *m)
{
	uint8_t hdr[16];
	struct pb h = { hdr, 0, sizeof(hdr) };

	if (m->n > m->cap)
		return;			/* did not fit its buffer: leave it out */
	pb_varint(&h, (uint64_t)field << 3 | 2);
	pb_varint(&h, m->n);
	sink_put(s, hdr, h.n);
	sink_put(s, m->b, m->n);
}

/* ---- /proc/self/maps and build IDs ---- */

struct mapping {
	uintptr_t start, end, off;
	const char *path;
	char build_id[41];
	bool names;		/* no DWARF in the file: we name its pcs */
};

/*
 * Does the ELF file at path carry .debug_info? pprof reads names from
 * DWARF when it is there; otherwise the dynamic symbols are all there is,
 * and the profile names the file's pcs itself (go tool pprof cannot read
 * .dynsym). buf holds at least 64 KiB.
 */
static bool has_debug_info(const char *path, uint8_t *buf, size_t len)
{
	ElfW(Ehdr) eh;
	const ElfW(Shdr) *sh;
	size_t shbytes, i;
	char names[8192];
	ssize_t nn;
	bool found = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return true;		/* unreadable: leave it to pprof */
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_shentsize != sizeof(*sh) ||
	    eh.e_shstrndx >= eh.e_shnum)
		goto out;
	shbytes = (size_t)eh.e_shnum * sizeof(*sh);
	if (shbytes > len || pread(fd, buf, shbytes, (off_t)eh.e_shoff) != (ssize_t)shbytes)
		goto out;
	sh = (const ElfW(Shdr) *)buf;
	nn = pread(fd, names, sizeof(names) - 1,
		   (off_t)sh[eh.e_shstrndx].sh_offset);
	if (nn <= 0)
		goto out;
	names[nn] = 0;
	for (i = 0; i < eh.e_shnum; i++)
		if (sh[i].sh_name < (size_t)nn &&
		    (!strcmp(names + sh[i].sh_name, ".debug_info") ||
		     !strcmp(names + sh[i].sh_name, ".zdebug_info")))
			found = true;
out:
	close(fd);
	return found;
}

/* Read the whole of /proc/self/maps into an OS mapping; *len its size. */
static char *read_maps(size_t *len, size_t *cap)
{
	size_t c = 256 << 10, n = 0;
	char *b = __hak_os_map(c), *nb;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (!b || fd < 0)
		goto fail;
	for (;;) {
		if (c - n < 4096) {
			nb = __hak_os_remap(b, c, c * 2);
			if (!nb)
				goto fail;
			b = nb;
			c *= 2;
		}
		r = read(fd, b + n, c - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	b[n] = 0;
	*len = n;
	*cap = c;
	return b;
fail:
	if (fd >= 0)
		close(fd);
	if (b)
		__hak_os_unmap(b, c);
	return NULL;
}

static uintptr_t hexnum(const char **pp)
{
	const char *p = *pp;
	uintptr_t v = 0;

	for (;; p++) {
		char c = *p;

		if (c >= '0' && c <= '9')
			v = v * 16 + (uintptr_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uintptr_t)(c - 'a' + 10);
		else
			break;
	}
	*pp = p;
	return v;
}

/* The GNU build ID of the ELF image whose header is mapped at base. */
static void build_id(uintptr_t base, char *out)
{
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)base;
	const ElfW(Phdr) *ph;
	uintptr_t bias = 0;
	unsigned i;
	bool have_bias = false;

	out[0] = 0;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_phoff + eh->e_phnum * sizeof(*ph) > 4096)
		return;
	ph = (const ElfW(Phdr) *)(base + eh->e_phoff);
	for (i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0) {
			bias = base - (ph[i].p_vaddr & ~(uintptr_t)(HAK_OS_PAGE - 1));
			have_bias = true;
			break;
		}
	if (!have_bias)
		return;
	for (i = 0; i < eh->e_phnum; i++) {
		const uint8_t *p, *end;

		if (ph[i].p_type != PT_NOTE)
			continue;
		p = (const uint8_t *)(bias + ph[i].p_vaddr);
		end = p + ph[i].p_filesz;
		while (p + 12 <= end) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
			const uint8_t *name = p + 12;
			const uint8_t *desc = name + HAK_ALIGN_UP(nh->n_namesz, 4);

			if (desc + nh->n_descsz > end)
				break;
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    !memcmp(name, "GNU", 4) && nh->n_descsz <= 20) {
				unsigned k;

				for (k = 0; k < nh->n_descsz; k++) {
					out[2 * k] = "0123456789abcdef"[desc[k] >> 4];
					out[2 * k + 1] = "0123456789abcdef"[desc[k] & 15];
				}
				out[2 * k] = 0;
				return;
			}
			p = desc + HAK_ALIGN_UP(nh->n_descsz, 4);
		}
	}
}

/*
 * The executable file mappings, parsed in place from text (the lines'
 * paths are cut there). Returns how many, into an OS mapping *maps.
 */
static size_t parse_maps(char *text, struct mapping **out, size_t *out_bytes)
{
	size_t lines = 1, n = 0, bytes, i;
	struct mapping *m;
	char *p;

	for (p = text; *p; p++)
		lines += *p == '\n';
	bytes = HAK_ALIGN_UP(lines * sizeof(*m), HAK_OS_PAGE);
	m = __hak_os_map(bytes);
	if (!m)
		return 0;
	/* Each line: start-end perms offset dev inode [path] */
	struct { uintptr_t start, off; const char *path; } first[64];
	size_t nfirst = 0;

	for (p = text; *p;) {
		char *line = p, *nl = strchr(p, '\n'), *path;
		const char *q = line;
		uintptr_t start, end, off;
		bool x;

		if (nl)
			*nl = 0;
		p = nl ? nl + 1 : line + strlen(line);
		start = hexnum(&q);
		if (*q++ != '-')
			continue;
		end = hexnum(&q);
		if (*q++ != ' ' || strlen(q) < 4)
			continue;
		x = q[2] == 'x';
		q += 5;
		off = hexnum(&q);
		path = strchr((char *)q, '/');
		if (!path || strstr(path, " (deleted)"))
			continue;
		if (off == 0 && nfirst < ARRAY_SIZE(first)) {
			first[nfirst].start = start;
			first[nfirst].off = off;
			first[nfirst].path = path;
			nfirst++;
		}
		if (!x)
			continue;
		m[n].start = start;
		m[n].end = end;
		m[n].off = off;
		m[n].path = path;
		m[n].build_id[0] = 0;
		for (i = 0; i < nfirst; i++)
			if (!strcmp(first[i].path, path)) {
				build_id(first[i].start, m[n].build_id);
				break;
			}
		n++;
	}
	*out = m;
	*out_bytes = bytes;
	return n;
}

/* ---- pprof ---- */

enum {
	S_EMPTY, S_ALLOC_OBJECTS, S_COUNT, S_ALLOC_SPACE, S_BYTES,
	S_INUSE_OBJECTS, S_INUSE_SPACE, S_SPACE, S_DROP, S_COMMENT, S_FIXED
};

static const char *const fixed_strings[S_FIXED] = {
	"", "alloc_objects", "count", "alloc_space", "bytes",
	"inuse_objects", "inuse_space", "space",
	("operator new.*|malloc|calloc|realloc|reallocarray|posix_memalign|"
	 "aligned_alloc|memalign|valloc|pvalloc|hak_.*|__hak_.*"),
	"hakmem heap profile",
};

static void value_type(struct sink *s, unsigned field, uint64_t type, uint64_t unit)
{
	uint8_t b[32];
	struct pb m = { b, 0, sizeof(b) };

	pb_int(&m, 1, type);
	pb_int(&m, 2, unit);
	emit(s, field, &m);
}

static uint64_t est(double v)
{
	return v < 0.5 ? 0 : (uint64_t)(v + 0.5);
}

struct loctab {
	uintptr_t *pc;			/* 0: empty */
	size_t cap, bytes;
	const char **fn;		/* function names, by id - 1 */
	size_t nfn, fn_cap;
	size_t str_base;		/* string index of fn[0] */
};

/* Id of the Function named name (a pointer into a .dynstr), 0 if full. */
static size_t function_id(struct loctab *t, struct sink *s, const char *name)
{
	uint8_t b[40];
	struct pb m = { b, 0, sizeof(b) };
	size_t i;

	for (i = t->nfn; i-- > 0;)
		if (t->fn[i] == name)
			return i + 1;
	if (t->nfn == t->fn_cap)
		return 0;
	t->fn[t->nfn++] = name;
	pb_int(&m, 1, t->nfn);
	pb_int(&m, 2, t->str_base + t->nfn - 1);
	pb_int(&m, 3, t->str_base + t->nfn - 1);
	emit(s, 5, &m);
	return t->nfn;
}

/* Id of pc's Location; a new one is emitted on first sight. */
static size_t location_id(struct loctab *t, struct sink *s, uintptr_t pc,
			  const struct mapping *maps, size_t nmaps)
{
	size_t j = (size_t)((pc * 0x9e3779b97f4a7c15ULL) >> 17) & (t->cap - 1);
	uint8_t b[64];
	struct pb m = { b, 0, sizeof(b) };
	size_t i, mid = 0;

	for (; t->pc[j]; j = (j + 1) & (t->cap - 1))
		if (t->pc[j] == pc)
			return j + 1;
	t->pc[j] = pc;
	for (i = 0; i < nmaps; i++)
		if (pc >= maps[i].start && pc < maps[i].end) {
			mid = i + 1;
			break;
		}
	pb_int(&m, 1, j + 1);
	if (mid)
		pb_int(&m, 2, mid);
	pb_int(&m, 3, pc);
	if (mid && maps[mid - 1].names) {
		struct hp_module mod;
		const char *name;
		uintptr_t off;
		size_t fid;

		if (__hak_prof_module_of(pc, &mod) &&
		    (name = __hak_prof_symbol(&mod, pc, &off)) && *name &&
		    (fid = function_id(t, s, name))) {
			uint8_t lb[16];
			struct pb l = { lb, 0, sizeof(lb) };

			pb_int(&l, 1, fid);
			pb_bytes(&m, 4, l.b, l.n);
		}
	}
	emit(s, 4, &m);
	return j + 1;
}

static int write_pprof(struct sink *s, struct hp_stack *all, size_t mean)
{
	struct mapping *maps = NULL;
	size_t maps_bytes = 0, nmaps = 0, text_len = 0, text_cap = 0, frames = 0, i;
	char *text = read_maps(&text_len, &text_cap);
	struct loctab lt = { 0 };
	struct hp_stack *st;
	uint8_t sb[2048], lb[1024];
	struct timespec ts;

	if (text)
		nmaps = parse_maps(text, &maps, &maps_bytes);
	for (i = 0; i < nmaps; i++)
		maps[i].names = !has_debug_info(maps[i].path, s->buf, SINK_BUF);
	for (st = all; st; st = st->all)
		frames += st->depth;
	for (lt.cap = 1024; lt.cap < 2 * frames; lt.cap *= 2)
		;
	/* pc slots, then one function name per frame at most */
	lt.fn_cap = frames;
	lt.bytes = HAK_ALIGN_UP((lt.cap + frames) * sizeof(uintptr_t), HAK_OS_PAGE);
	lt.pc = __hak_os_map(lt.bytes);
	lt.fn = (const char **)(void *)(lt.pc + lt.cap);
	lt.str_base = S_FIXED + 2 * nmaps;
	if (!lt.pc) {
		s->err = ENOMEM;
		goto out;
	}
	value_type(s, 1, S_ALLOC_OBJECTS, S_COUNT);
	value_type(s, 1, S_ALLOC_SPACE, S_BYTES);
	value_type(s, 1, S_INUSE_OBJECTS, S_COUNT);
	value_type(s, 1, S_INUSE_SPACE, S_BYTES);
	for (i = 0; i < nmaps; i++) {
		uint8_t b[96];
		struct pb m = { b, 0, sizeof(b) };

		pb_int(&m, 1, i + 1);
		pb_int(&m, 2, maps[i].start);
		pb_int(&m, 3, maps[i].end);
		pb_int(&m, 4, maps[i].off);
		pb_int(&m, 5, S_FIXED + 2 * i);
		pb_int(&m, 6, S_FIXED + 2 * i + 1);
		if (maps[i].names)
			pb_int(&m, 7, 1);
		emit(s, 3, &m);
	}
	for (st = all; st; st = st->all) {
		struct pb smsg = { sb, 0, sizeof(sb) }, locs = { lb, 0, sizeof(lb) };
		uint8_t vb[48];
		struct pb vals = { vb, 0, sizeof(vb) };
		unsigned k;

		for (k = 0; k < st->depth; k++)
			pb_varint(&locs, location_id(&lt, s, st->pc[k], maps, nmaps));
		pb_varint(&vals, est(st->alloc_n));
		pb_varint(&vals, est(st->alloc_b));
		pb_varint(&vals, est(st->live_n));
		pb_varint(&vals, est(st->live_b));
		pb_bytes(&smsg, 1, locs.b, locs.n);
		pb_bytes(&smsg, 2, vals.b, vals.n);
		emit(s, 2, &smsg);
	}
	/* String table, in index order: fixed, mappings' two, functions. */
	for (i = 0; i < lt.str_base + lt.nfn; i++) {
		const char *str = i < S_FIXED ? fixed_strings[i] :
				  i >= lt.str_base ? lt.fn[i - lt.str_base] :
				  (i - S_FIXED) & 1 ? maps[(i - S_FIXED) / 2].build_id :
				  maps[(i - S_FIXED) / 2].path;
		struct pb h = { sb, 0, 16 };

		pb_varint(&h, 6 << 3 | 2);
		pb_varint(&h, strlen(str));
		sink_put(s, sb, h.n);
		sink_put(s, str, strlen(str));
	}
	{
		uint8_t b[64];
		struct pb m = { b, 0, sizeof(b) };

		pb_int(&m, 7, S_DROP);
		clock_gettime(CLOCK_REALTIME, &ts);
		pb_int(&m, 9, (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
		sink_put(s, m.b, m.n);
	}
	value_type(s, 11, S_SPACE, S_BYTES);
	{
		uint8_t b[32];
		struct pb m = { b, 0, sizeof(b) };

		pb_int(&m, 12, mean);
		pb_int(&m, 13, S_COMMENT);
		pb_int(&m, 14, S_INUSE_SPACE);
		sink_put(s, m.b, m.n);
	}
out:
	if (lt.pc)
		__hak_os_unmap(lt.pc, lt.bytes);
	if (maps)
		__hak_os_unmap(maps, maps_bytes);
	if (text)
		__hak_os_unmap(text, text_cap);
	return s->err ? -1 : 0;
}

/* ---- folded stacks ---- */

static void write_collapsed(struct sink *s, struct hp_stack *all)
{
	struct hp_stack *st;
	char name[512], num[24];

	for (st = all; st; st = st->all) {
		uint64_t v = est(st->live_b);
		unsigned k;
		int n = 0;

		if (!v)
			continue;
		for (k = st->depth; k-- > 0;) {
			size_t len = __hak_prof_pc_text(st->pc[k], name, sizeof(name));
			size_t j;

			for (j = 0; j < len; j++)
				if (name[j] == ';' || name[j] == ' ')
					name[j] = '_';
			sink_put(s, name, len);
			if (k)
				sink_put(s, ";", 1);
		}
		if (!st->depth)
			sink_put(s, "[unknown]", 9);
		num[sizeof(num) - 1] = '\n';
		n = (int)sizeof(num) - 1;
		do {
			num[--n] = (char)('0' + v % 10);
			v /= 10;
		} while (v);
		num[--n] = ' ';
		sink_put(s, num + n, sizeof(num) - (size_t)n);
	}
}

int __hak_prof_write(int fd, enum hp_format fmt, struct hp_stack *all, size_t mean)
{
	struct sink s = { .fd = fd };
	size_t bytes = HAK_ALIGN_UP(SINK_BUF + GZ_OUT + GZ_HASH * sizeof(uint32_t), HAK_OS_PAGE);
	uint8_t *mem = __hak_os_map(bytes);

	if (!mem) {
		errno = ENOMEM;
		return -1;
	}
	s.buf = mem;
	s.out = mem + SINK_BUF;
	s.head = (uint32_t *)(void *)(mem + HAK_ALIGN_UP(SINK_BUF + GZ_OUT, 8));
	sink_open(&s, fmt == HP_FMT_PPROF);
	if (fmt == HP_FMT_PPROF)
		write_pprof(&s, all, mean);
	else
		write_collapsed(&s, all);
	sink_close(&s);
	__hak_os_unmap(mem, bytes);
	if (s.err) {
		errno = s.err;
		return -1;
	}
	return 0;
}

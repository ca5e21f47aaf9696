// SPDX-License-Identifier: MIT
/*
 * Call stacks for the heap profiler, without malloc and without frame
 * pointers.
 *
 * x86_64: a DWARF call-frame (CFI) unwinder over each module's .eh_frame,
 * which Debian's default flags always emit (-fasynchronous-unwind-tables)
 * while they omit frame pointers. For each frame: find the FDE of the
 * return address (minus one) with the binary-search table of
 * .eh_frame_hdr, run its CIE's and its own CFA program up to that address
 * (the common DW_CFA ops; a CFA given by a DWARF expression ends the
 * walk), then CFA = rsp or rbp + offset, the return address and a saved
 * rbp are read at CFA + their offsets, and rsp becomes the CFA. The walk
 * stops at an undefined return address (_start, thread start), at a pc
 * outside every module, and at any step that would not move up the stack.
 * Other architectures (ARCH=generic) walk frame pointers
 * (__builtin_frame_address), which is right only where they are kept.
 *
 * Modules (their PT_LOAD range, bias, .eh_frame_hdr and PT_DYNAMIC) are
 * cached; the cache is rebuilt with dl_iterate_phdr, which takes the
 * loader's lock, only when a pc misses it and the loader's add/remove
 * counters have moved. module_lock guards the cache (and the CFA rules)
 * and is held for a whole full walk; a walk-cache hit does not take it.
 *
 * The allocator's own frames are cut from the front: everything up to the
 * outermost frame that lies in a known entry point (malloc, calloc, ...,
 * their hak_ names and the profiler's slow paths; ranges from their FDEs).
 *
 * Walk cache (x86_64). Samples repeat their stacks, and a walk is a pure
 * function of the registers it starts from and of the stack words it
 * reads: the rule of each frame depends only on its pc, and the next
 * frame's pc, sp and rbp only on that rule, the frame's sp and rbp and
 * the words read at the return-address (and saved-rbp) slots. So a walk
 * remembers, keyed by the sampled call's return address and the sp the
 * walk starts from, the words it read that decided its course: every
 * return-address slot (address and value), a saved-rbp slot only when a
 * later frame's CFA was computed from that rbp, and the starting rbp
 * itself only when a CFA was computed from it (rbp is an ordinary
 * register in code without frame pointers, so its value is usually
 * noise), leaving out the profiler's own frames below the sampled call's
 * (fixed for a key). A later walk from the same key re-reads those words in the
 * same order; when all still hold, it would take the very same steps, so
 * the remembered result (the caller's stack record) is the answer,
 * without a rule lookup or a frame step. The first word that differs
 * sends it down the full walk, which then replaces the entry. The reads
 * are the ones the full walk would make, in its order, so they are as
 * safe. The cache is used under the caller's lock (prof.c's prof_lock)
 * and is forgotten (a generation count) whenever the module list changes.
 */
#include <link.h>
#include <string.h>
#include <stdlib.h>
#include "box.h"
#include "boxes/heapprof/heapprof.h"
#include "boxes/heapprof/prof_internal.h"

#define HP_MAX_MODULES	1024
#define HP_SKIP_SCAN	16		/* frames searched for entry points */
#define HP_MAX_FRAME	(64UL << 20)	/* largest believable frame */

static struct hak_lock module_lock = HAK_LOCK_INIT;
static struct hp_module mods[HP_MAX_MODULES];
static unsigned nmods;
static unsigned long mods_adds = ~0UL, mods_subs = ~0UL;
static bool mods_valid;

/* ---- module cache ---- */

static void rules_clear(void);
static unsigned walk_gen = 1;		/* walk cache generation */

struct scan {
	bool first, changed;
};

static int scan_one(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan *sc = arg;
	struct hp_module m = { .lo = UINTPTR_MAX };
	unsigned i;

	if (sc->first) {
		sc->first = false;
		if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs) &&
		    mods_valid && info->dlpi_adds == mods_adds && info->dlpi_subs == mods_subs)
			return 1;	/* nothing loaded or unloaded since */
		sc->changed = true;
		mods_adds = info->dlpi_adds;
		mods_subs = info->dlpi_subs;
		nmods = 0;
	}
	if (nmods >= HP_MAX_MODULES)
		return 0;
	m.bias = info->dlpi_addr;
	m.name = info->dlpi_name ? info->dlpi_name : "";
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t a = info->dlpi_addr + ph->p_vaddr;

		switch (ph->p_type) {
		case PT_LOAD:
			if (a < m.lo)
				m.lo = a;
			if (a + ph->p_memsz > m.hi)
				m.hi = a + ph->p_memsz;
			break;
		case PT_GNU_EH_FRAME:
			m.eh_hdr = (const uint8_t *)a;
			break;
		case PT_DYNAMIC:
			m.dyn = (const void *)a;
			break;
		}
	}
	if (m.lo < m.hi)
		mods[nmods++] = m;
	return 0;
}

/*
 * The DWARF walk finds a frame's rule through its module's .eh_frame_hdr.
 * A program linked with -static gets none unless it asks
 * (-Wl,--eh-frame-hdr; gcc passes it only to dynamic links): every frame
 * of its was [unknown], without a word. Said once, at the first scan.
 */
static void modules_check(void)
{
	static bool said;

	if (IS_ENABLED(__x86_64__) && !said && nmods && !mods[0].eh_hdr) {
		said = true;
		__hak_report("heap profiler: the program has no .eh_frame_hdr (linked -static "
			     "without -Wl,--eh-frame-hdr?): its frames will read [unknown]");
	}
}

static void modules_refresh(void)
{
	struct scan sc = { .first = true };

	dl_iterate_phdr(scan_one, &sc);
	if (sc.changed) {
		mods_valid = true;
		rules_clear();
		walk_gen++;
		modules_check();
	}
}

static const struct hp_module *module_find(uintptr_t pc, bool refresh)
{
	unsigned i;

	for (i = 0; i < nmods; i++)
		if (pc >= mods[i].lo && pc < mods[i].hi)
			return &mods[i];
	if (!refresh)
		return NULL;
	modules_refresh();
	return module_find(pc, false);
}

bool __hak_prof_module_of(uintptr_t pc, struct hp_module *out)
{
	const struct hp_module *m;

	hak_lock(&module_lock);
	m = module_find(pc, true);
	if (m)
		*out = *m;
	hak_unlock(&module_lock);
	return m != NULL;
}

bool __hak_prof_unwind_fork_prepare(void) __acquires(&module_lock)
{
	return hak_lock_fork_prepare(&module_lock);
}

void __hak_prof_unwind_fork_parent(void) __releases(&module_lock)
{
	hak_lock_fork_parent(&module_lock);
}

void __hak_prof_unwind_fork_child(void) __releases(&module_lock)
{
	hak_lock_fork_child(&module_lock);
}

#if defined(__x86_64__)

/* ---- DWARF encodings ---- */

#define DW_EH_PE_omit		0xff
#define DW_EH_PE_absptr		0x00
#define DW_EH_PE_uleb128	0x01
#define DW_EH_PE_udata2		0x02
#define DW_EH_PE_udata4		0x03
#define DW_EH_PE_udata8		0x04
#define DW_EH_PE_sleb128	0x09
#define DW_EH_PE_sdata2		0x0a
#define DW_EH_PE_sdata4		0x0b
#define DW_EH_PE_sdata8		0x0c
#define DW_EH_PE_pcrel		0x10
#define DW_EH_PE_datarel	0x30
#define DW_EH_PE_indirect	0x80

#define REG_RBP		6
#define REG_RSP		7
#define REG_RA		16
#define NREGS		17

static uint64_t rd_uleb(const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	unsigned shift = 0;

	while (p < end) {
		uint8_t b = *p++;

		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	*pp = p;
	return v;
}

static int64_t rd_sleb(const uint8_t **pp, const uint8_t *end)
{
	const uint8_t *p = *pp;
	int64_t v = 0;
	unsigned shift = 0;
	uint8_t b = 0;

	while (p < end) {
		b = *p++;
		if (shift < 64)
			v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	if (shift < 64 && (b & 0x40))
		v |= -((int64_t)1 << shift);
	*pp = p;
	return v;
}

/* A pointer in encoding enc at *pp; data is the datarel base. */
static bool rd_ptr(const uint8_t **pp, const uint8_t *end, uint8_t enc,
		   uintptr_t data, uintptr_t *out)
{
	const uint8_t *p = *pp;
	uintptr_t base = 0, v;

	if (enc == DW_EH_PE_omit)
		return false;
	switch (enc & 0x70) {
	case DW_EH_PE_absptr:
		break;
	case DW_EH_PE_pcrel:
		base = (uintptr_t)p;
		break;
	case DW_EH_PE_datarel:
		base = data;
		break;
	default:
		return false;
	}
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr:
	case DW_EH_PE_udata8:
	case DW_EH_PE_sdata8:
		if (end - p < 8)
			return false;
		memcpy(&v, p, 8);
		p += 8;
		break;
	case DW_EH_PE_udata4: {
		uint32_t u;

		if (end - p < 4)
			return false;
		memcpy(&u, p, 4);
		v = u;
		p += 4;
		break;
	}
	case DW_EH_PE_sdata4: {
		int32_t s;

		if (end - p < 4)
			return false;
		memcpy(&s, p, 4);
		v = (uintptr_t)(intptr_t)s;
		p += 4;
		break;
	}
	case DW_EH_PE_udata2: {
		uint16_t u;

		if (end - p < 2)
			return false;
		memcpy(&u, p, 2);
		v = u;
		p += 2;
		break;
	}
	case DW_EH_PE_sdata2: {
		int16_t s;

		if (end - p < 2)
			return false;
		memcpy(&s, p, 2);
		v = (uintptr_t)(intptr_t)s;
		p += 2;
		break;
	}
	case DW_EH_PE_uleb128:
		v = (uintptr_t)rd_uleb(&p, end);
		break;
	case DW_EH_PE_sleb128:
		v = (uintptr_t)rd_sleb(&p, end);
		break;
	default:
		return false;
	}
	v += base;
	if (enc & DW_EH_PE_indirect)
		v = *(const uintptr_t *)v;
	*pp = p;
	*out = v;
	return true;
}

/* ---- CIE / FDE ---- */

struct cie {
	const uint8_t *insn, *end;
	uint64_t code_align;
	int64_t data_align;
	unsigned ra;
	uint8_t fde_enc;
	bool aug_z;
};

struct fde {
	uintptr_t start, end;
	const uint8_t *insn, *insn_end;
	struct cie cie;
};

/* Entry length and the end of the entry; false at a terminator. */
static bool entry_len(const uint8_t **pp, const uint8_t **end)
{
	uint32_t l32;
	uint64_t l;

	memcpy(&l32, *pp, 4);
	*pp += 4;
	l = l32;
	if (l32 == 0xffffffffu) {
		memcpy(&l, *pp, 8);
		*pp += 8;
	}
	if (!l)
		return false;
	*end = *pp + l;
	return true;
}

static bool parse_cie(const uint8_t *p, struct cie *c)
{
	const uint8_t *end, *aug, *augdata_end = NULL;
	uint32_t id;
	uint8_t version;

	if (!entry_len(&p, &end))
		return false;
	memcpy(&id, p, 4);
	p += 4;
	if (id != 0)
		return false;
	version = *p++;
	aug = p;
	while (p < end && *p)
		p++;
	p++;
	if (aug[0] && aug[0] != 'z')
		return false;		/* "eh" and other old forms */
	c->code_align = rd_uleb(&p, end);
	c->data_align = rd_sleb(&p, end);
	c->ra = version == 1 ? *p++ : (unsigned)rd_uleb(&p, end);
	c->fde_enc = DW_EH_PE_absptr;
	c->aug_z = aug[0] == 'z';
	if (c->aug_z) {
		uint64_t alen = rd_uleb(&p, end);
		const uint8_t *q;

		augdata_end = p + alen;
		for (q = aug + 1; *q && p < augdata_end; q++) {
			switch (*q) {
			case 'R':
				c->fde_enc = *p++;
				break;
			case 'L':
				p++;
				break;
			case 'P': {
				uint8_t enc = *p++;
				uintptr_t dummy;

				if (!rd_ptr(&p, augdata_end, enc & ~DW_EH_PE_indirect, 0, &dummy))
					return false;
				break;
			}
			case 'S':
			case 'B':
				break;
			default:
				return false;
			}
		}
		p = augdata_end;
	}
	c->insn = p;
	c->end = end;
	return p <= end;
}

static bool parse_fde(const uint8_t *p, struct fde *f)
{
	const uint8_t *end, *cie_ptr, *fde_start = p;
	uint32_t cie_off;
	uintptr_t range;

	(void)fde_start;
	if (!entry_len(&p, &end))
		return false;
	memcpy(&cie_off, p, 4);
	if (!cie_off)
		return false;		/* a CIE, not an FDE */
	cie_ptr = p - cie_off;
	p += 4;
	if (!parse_cie(cie_ptr, &f->cie))
		return false;
	if (!rd_ptr(&p, end, f->cie.fde_enc, 0, &f->start))
		return false;
	if (!rd_ptr(&p, end, f->cie.fde_enc & 0x0f, 0, &range))
		return false;
	f->end = f->start + range;
	if (f->cie.aug_z) {
		uint64_t alen = rd_uleb(&p, end);

		p += alen;
	}
	f->insn = p;
	f->insn_end = end;
	return p <= end;
}

/* The FDE covering pc in module m, by binary search of .eh_frame_hdr. */
static bool find_fde(const struct hp_module *m, uintptr_t pc, struct fde *f)
{
	const uint8_t *h = m->eh_hdr, *p, *end;
	uintptr_t ehf, count, lo, hi;
	const int32_t *tab;

	if (!h || h[0] != 1)
		return false;
	p = h + 4;
	end = p + 16;
	if (!rd_ptr(&p, end, h[1], (uintptr_t)h, &ehf))
		return false;
	if (!rd_ptr(&p, end, h[2], (uintptr_t)h, &count) || !count)
		return false;
	if (h[3] != (DW_EH_PE_datarel | DW_EH_PE_sdata4))
		return false;		/* what GNU ld writes; nothing else seen */
	tab = (const int32_t *)p;
	lo = 0;
	hi = count;
	while (hi - lo > 1) {
		uintptr_t mid = lo + (hi - lo) / 2;

		if ((uintptr_t)h + (intptr_t)tab[2 * mid] <= pc)
			lo = mid;
		else
			hi = mid;
	}
	if ((uintptr_t)h + (intptr_t)tab[2 * lo] > pc)
		return false;
	if (!parse_fde(h + (intptr_t)tab[2 * lo + 1], f))
		return false;
	return pc >= f->start && pc < f->end;
}

/* ---- the CFA program ---- */

enum rule { R_SAME = 0, R_UNDEF, R_OFFSET, R_VAL_OFFSET, R_REG, R_UNKNOWN };

struct regrule {
	uint8_t how;
	int64_t val;
};

struct frame_state {
	unsigned cfa_reg;
	int64_t cfa_off;
	bool cfa_expr;
	struct regrule r[NREGS];
};

#define HP_STATE_STACK	8

static void set_rule(struct frame_state *s, uint64_t reg, uint8_t how, int64_t val)
{
	if (reg < NREGS) {
		s->r[reg].how = how;
		s->r[reg].val = val;
	}
}

/*
 * Run CFA program [p, end) while loc <= pc. init holds the CIE's state
 * (for DW_CFA_restore) or NULL while running the CIE itself.
 */
static bool run_cfa(const uint8_t *p, const uint8_t *end, const struct cie *c,
		    uintptr_t loc, uintptr_t pc, struct frame_state *s,
		    const struct frame_state *init)
{
	struct frame_state stack[HP_STATE_STACK];
	unsigned depth = 0;

	while (p < end && loc <= pc) {
		uint8_t op = *p++, lo = op & 0x3f;
		uint64_t reg, v;
		int64_t sv;

		switch (op & 0xc0) {
		case 0x40:	/* advance_loc */
			loc += lo * c->code_align;
			continue;
		case 0x80:	/* offset */
			v = rd_uleb(&p, end);
			set_rule(s, lo, R_OFFSET, (int64_t)v * c->data_align);
			continue;
		case 0xc0:	/* restore */
			if (lo < NREGS)
				s->r[lo] = init ? init->r[lo] : (struct regrule){ 0, 0 };
			continue;
		}
		switch (op) {
		case 0x00:	/* nop */
			break;
		case 0x01:	/* set_loc */
			if (!rd_ptr(&p, end, c->fde_enc, 0, &loc))
				return false;
			break;
		case 0x02:	/* advance_loc1 */
			if (end - p < 1)
				return false;	/* a truncated program: stop, read nothing past it */
			loc += *p++ * c->code_align;
			break;
		case 0x03: {	/* advance_loc2 */
			uint16_t d;

			if (end - p < 2)
				return false;
			memcpy(&d, p, 2);
			p += 2;
			loc += d * c->code_align;
			break;
		}
		case 0x04: {	/* advance_loc4 */
			uint32_t d;

			if (end - p < 4)
				return false;
			memcpy(&d, p, 4);
			p += 4;
			loc += d * c->code_align;
			break;
		}
		case 0x05:	/* offset_extended */
			reg = rd_uleb(&p, end);
			v = rd_uleb(&p, end);
			set_rule(s, reg, R_OFFSET, (int64_t)v * c->data_align);
			break;
		case 0x06:	/* restore_extended */
			reg = rd_uleb(&p, end);
			if (reg < NREGS)
				s->r[reg] = init ? init->r[reg] : (struct regrule){ 0, 0 };
			break;
		case 0x07:	/* undefined */
			set_rule(s, rd_uleb(&p, end), R_UNDEF, 0);
			break;
		case 0x08:	/* same_value */
			set_rule(s, rd_uleb(&p, end), R_SAME, 0);
			break;
		case 0x09:	/* register */
			reg = rd_uleb(&p, end);
			v = rd_uleb(&p, end);
			set_rule(s, reg, R_REG, (int64_t)v);
			break;
		case 0x0a:	/* remember_state */
			if (depth == HP_STATE_STACK)
				return false;
			stack[depth++] = *s;
			break;
		case 0x0b:	/* restore_state */
			if (!depth)
				return false;
			*s = stack[--depth];	/* the CFA rule too, as libgcc does */
			break;
		case 0x0c:	/* def_cfa */
			s->cfa_reg = (unsigned)rd_uleb(&p, end);
			s->cfa_off = (int64_t)rd_uleb(&p, end);
			s->cfa_expr = false;
			break;
		case 0x0d:	/* def_cfa_register */
			s->cfa_reg = (unsigned)rd_uleb(&p, end);
			s->cfa_expr = false;
			break;
		case 0x0e:	/* def_cfa_offset */
			s->cfa_off = (int64_t)rd_uleb(&p, end);
			break;
		case 0x0f:	/* def_cfa_expression */
			v = rd_uleb(&p, end);
			p += v;
			s->cfa_expr = true;
			break;
		case 0x10:	/* expression */
			reg = rd_uleb(&p, end);
			v = rd_uleb(&p, end);
			p += v;
			set_rule(s, reg, R_UNKNOWN, 0);
			break;
		case 0x11:	/* offset_extended_sf */
			reg = rd_uleb(&p, end);
			sv = rd_sleb(&p, end);
			set_rule(s, reg, R_OFFSET, sv * c->data_align);
			break;
		case 0x12:	/* def_cfa_sf */
			s->cfa_reg = (unsigned)rd_uleb(&p, end);
			s->cfa_off = rd_sleb(&p, end) * c->data_align;
			s->cfa_expr = false;
			break;
		case 0x13:	/* def_cfa_offset_sf */
			s->cfa_off = rd_sleb(&p, end) * c->data_align;
			break;
		case 0x14:	/* val_offset */
			reg = rd_uleb(&p, end);
			v = rd_uleb(&p, end);
			set_rule(s, reg, R_VAL_OFFSET, (int64_t)v * c->data_align);
			break;
		case 0x15:	/* val_offset_sf */
			reg = rd_uleb(&p, end);
			sv = rd_sleb(&p, end);
			set_rule(s, reg, R_VAL_OFFSET, sv * c->data_align);
			break;
		case 0x16:	/* val_expression */
			reg = rd_uleb(&p, end);
			v = rd_uleb(&p, end);
			p += v;
			set_rule(s, reg, R_UNKNOWN, 0);
			break;
		case 0x2e:	/* GNU_args_size */
			rd_uleb(&p, end);
			break;
		case 0x2f:	/* GNU_negative_offset_extended */
			reg = rd_uleb(&p, end);
			v = rd_uleb(&p, end);
			set_rule(s, reg, R_OFFSET, -(int64_t)v * c->data_align);
			break;
		default:
			return false;
		}
	}
	return true;
}

struct regs {
	uintptr_t ip, sp, bp;
	bool bp_ok;
};

/*
 * What a full walk read that decided its course, being recorded for the
 * walk cache: the words in order, and where the current rbp came from.
 */
struct wcheck {
	uintptr_t addr, val;
};

#define HP_WALK_CHECKS	64		/* words per cached walk; more: not cached */
#define HP_WALKS	1024		/* cached walks (direct-mapped) */

enum { BP_LIVE, BP_SLOT, BP_DONE };

struct wrec {
	uintptr_t key, sp, bp;		/* the walk's key and starting rbp */
	unsigned n;
	bool over, need_bp;
	uint8_t bp_src;			/* BP_LIVE: the starting rbp; BP_SLOT: bp_slot */
	struct wcheck bp_slot;
	struct wcheck c[HP_WALK_CHECKS];
};

struct walk_ent {
	uintptr_t key, sp, bp;		/* key 0: empty */
	void *result;
	unsigned gen, n;
	bool need_bp;
	struct wcheck c[HP_WALK_CHECKS];
};

static struct walk_ent *walks;		/* OS-layer mapping, made on first use */
static struct wrec pend;		/* the last full walk, for ..._remember() */

static void rec_word(struct wrec *w, uintptr_t addr, uintptr_t val)
{
	if (w->n == HP_WALK_CHECKS) {
		w->over = true;
		return;
	}
	w->c[w->n].addr = addr;
	w->c[w->n].val = val;
	w->n++;
}

/* A CFA is being computed from the current rbp: its origin must hold too. */
static void rec_bp_used(struct wrec *w)
{
	if (w->bp_src == BP_LIVE)
		w->need_bp = true;
	else if (w->bp_src == BP_SLOT)
		rec_word(w, w->bp_slot.addr, w->bp_slot.val);
	w->bp_src = BP_DONE;
}

static struct walk_ent *walk_slot(uintptr_t key, uintptr_t sp)
{
	uint64_t h = ((uint64_t)key ^ ((uint64_t)sp << 7)) * 0x9e3779b97f4a7c15ULL;

	return &walks[h >> 54 & (HP_WALKS - 1)];
}

/* The result remembered for this exact walk, or NULL. */
static void *walk_cached(uintptr_t key, const struct regs *r)
{
	const struct walk_ent *e;
	unsigned i;

	if (!walks)
		return NULL;
	e = walk_slot(key, r->sp);
	if (e->key != key || e->sp != r->sp || e->gen != walk_gen ||
	    (e->need_bp && e->bp != r->bp))
		return NULL;
	for (i = 0; i < e->n; i++)
		if (*(const uintptr_t *)e->c[i].addr != e->c[i].val)
			return NULL;
	return e->result;
}

/*
 * What a frame's CFI says at one pc, reduced to what the walk uses. Kept
 * in a direct-mapped cache: samples repeat their stacks, so most steps
 * skip the FDE search and the CFA programs. Cleared whenever the module
 * list changes (an unloaded module's addresses may be reused).
 */
struct cfa_rule {
	uintptr_t pc;			/* 0: empty */
	int32_t cfa_off, ra_off, bp_off;
	uint8_t cfa_reg, bp_how;
};

#define HP_RULES	2048
#define RULE_STOP	0xff		/* cfa_reg of a pc where the walk ends */
static struct cfa_rule rules[HP_RULES];

static void rules_clear(void)
{
	memset(rules, 0, sizeof(rules));
}

/* The rule at pc from the FDE that covers it; false when the walk must stop. */
static bool rule_from_cfi(uintptr_t pc, struct cfa_rule *out)
{
	const struct hp_module *m = module_find(pc, true);
	struct fde f;
	struct frame_state s, init;

	if (!m || !find_fde(m, pc, &f))
		return false;
	memset(&s, 0, sizeof(s));
	if (!run_cfa(f.cie.insn, f.cie.end, &f.cie, 0, UINTPTR_MAX, &s, NULL))
		return false;
	init = s;
	if (!run_cfa(f.insn, f.insn_end, &f.cie, f.start, pc, &s, &init))
		return false;
	if (s.cfa_expr || f.cie.ra != REG_RA ||
	    (s.cfa_reg != REG_RSP && s.cfa_reg != REG_RBP))
		return false;
	if (s.r[REG_RA].how != R_OFFSET)
		return false;	/* R_UNDEF: the outermost frame */
	if (s.cfa_off != (int32_t)s.cfa_off || s.r[REG_RA].val != (int32_t)s.r[REG_RA].val ||
	    s.r[REG_RBP].val != (int32_t)s.r[REG_RBP].val)
		return false;
	out->pc = pc;
	out->cfa_reg = (uint8_t)s.cfa_reg;
	out->cfa_off = (int32_t)s.cfa_off;
	out->ra_off = (int32_t)s.r[REG_RA].val;
	out->bp_how = s.r[REG_RBP].how;
	out->bp_off = (int32_t)s.r[REG_RBP].val;
	return true;
}

/* One frame up from r (ip exact when exact, else a return address). */
static bool step(struct regs *r, bool exact, struct wrec *w)
{
	uintptr_t pc = exact ? r->ip : r->ip - 1, cfa, ra, slot;
	struct cfa_rule *ru = &rules[(pc ^ (pc >> 11)) & (HP_RULES - 1)];

	if (ru->pc != pc && !rule_from_cfi(pc, ru)) {
		/* Remember the stops too: each thread's outermost frame is one. */
		ru->pc = pc;
		ru->cfa_reg = RULE_STOP;
	}
	if (ru->cfa_reg == RULE_STOP)
		return false;
	if (ru->cfa_reg == REG_RSP) {
		cfa = r->sp + (uintptr_t)(intptr_t)ru->cfa_off;
	} else if (r->bp_ok) {
		cfa = r->bp + (uintptr_t)(intptr_t)ru->cfa_off;
		rec_bp_used(w);
	} else {
		return false;
	}
	if (cfa <= r->sp || cfa - r->sp > HP_MAX_FRAME || (cfa & 7))
		return false;
	slot = cfa + (uintptr_t)(intptr_t)ru->ra_off;
	ra = *(const uintptr_t *)slot;
	rec_word(w, slot, ra);
	switch (ru->bp_how) {
	case R_SAME:
		break;
	case R_OFFSET:
		slot = cfa + (uintptr_t)(intptr_t)ru->bp_off;
		r->bp = *(const uintptr_t *)slot;
		r->bp_ok = true;
		w->bp_src = BP_SLOT;
		w->bp_slot.addr = slot;
		w->bp_slot.val = r->bp;
		break;
	case R_VAL_OFFSET:
		r->bp = cfa + (uintptr_t)(intptr_t)ru->bp_off;
		w->bp_src = BP_DONE;
		break;
	default:
		r->bp_ok = false;
		break;
	}
	r->sp = cfa;
	r->ip = ra;
	return ra != 0;
}

/*
 * Raw walk from the caller's frame: return addresses, outermost last.
 * When the walk cache knows this stack (key: the sampled call's return
 * address), returns 0 with *hit its result instead.
 */
static __noinline unsigned walk(uintptr_t *pc, unsigned max, uintptr_t key, void **hit)
{
	struct regs r;
	unsigned n = 0;
	bool exact = true, rebased = false;

	__asm__ volatile("lea 1f(%%rip), %0\n1:\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
			 : "=r"(r.ip), "=r"(r.sp), "=r"(r.bp));
	r.bp_ok = true;
	*hit = walk_cached(key, &r);
	if (*hit)
		return 0;
	pend.key = key;
	pend.sp = r.sp;
	pend.bp = r.bp;
	pend.n = 0;
	pend.over = pend.need_bp = false;
	pend.bp_src = BP_LIVE;
	hak_lock(&module_lock);
	while (n < max) {
		if (!step(&r, exact, &pend))
			break;
		exact = false;
		pc[n++] = r.ip;
		/*
		 * The frames below the one that returns to key are the
		 * profiler's, one fixed chain for one key (key is a call
		 * instruction's return address, so it names the entry point
		 * called, and frame sizes are fixed): their words hold
		 * whenever key and sp do, so the cache need not re-read them.
		 * A saved rbp among them that a later CFA uses is still
		 * recorded then (rec_bp_used).
		 */
		if (!rebased && n <= HP_SKIP_SCAN && r.ip == key) {
			pend.n = 0;
			rebased = true;
		}
	}
	hak_unlock(&module_lock);
	return n;
}

/* The full walk just made (under the same hold of the caller's lock) gave result. */
void __hak_prof_backtrace_remember(void *result)
{
	struct walk_ent *e;

	if (!walks) {
		walks = __hak_os_map(HAK_ALIGN_UP(HP_WALKS * sizeof(*walks), HAK_OS_PAGE));
		if (!walks)
			return;
	}
	if (pend.over || !pend.key || !result)
		return;
	e = walk_slot(pend.key, pend.sp);
	e->key = pend.key;
	e->sp = pend.sp;
	e->bp = pend.bp;
	e->need_bp = pend.need_bp;
	e->gen = walk_gen;
	e->n = pend.n;
	memcpy(e->c, pend.c, pend.n * sizeof(pend.c[0]));
	e->result = result;
}

static bool fde_range(uintptr_t fn, uintptr_t *lo, uintptr_t *hi)
{
	const struct hp_module *m = module_find(fn, true);
	struct fde f;

	if (!m || !find_fde(m, fn, &f))
		return false;
	*lo = f.start;
	*hi = f.end;
	return true;
}

#else	/* frame pointers */

static void rules_clear(void)
{
}

static __noinline unsigned walk(uintptr_t *pc, unsigned max, uintptr_t key, void **hit)
{
	uintptr_t *fp = __builtin_frame_address(0), *next;
	unsigned n = 0;

	(void)key;
	*hit = NULL;
	hak_lock(&module_lock);
	while (fp && n < max) {
		uintptr_t ra = fp[1];

		if (!ra)
			break;
		pc[n++] = ra;
		next = (uintptr_t *)fp[0];
		if (next <= fp || (uintptr_t)next - (uintptr_t)fp > HP_MAX_FRAME)
			break;
		fp = next;
	}
	hak_unlock(&module_lock);
	return n;
}

/* No walk cache without CFI: every sample walks its frame pointers. */
void __hak_prof_backtrace_remember(void *result)
{
	(void)result;
}

/* Without FDEs, the entry points' extents are unknown: 256 bytes each. */
static bool fde_range(uintptr_t fn, uintptr_t *lo, uintptr_t *hi)
{
	*lo = fn;
	*hi = fn + 256;
	return true;
}

#endif

/* ---- the allocator's own frames ---- */

static const void *const entries[] = {
	(const void *)malloc, (const void *)calloc, (const void *)realloc,
	(const void *)posix_memalign, (const void *)aligned_alloc,
	(const void *)__hak_calloc, (const void *)__hak_realloc,
	(const void *)__hak_reallocarray, (const void *)__hak_posix_memalign,
	(const void *)__hak_memalign, (const void *)__hak_aligned_alloc,
	(const void *)__hak_valloc, (const void *)__hak_pvalloc,
	(const void *)__hak_alloc_big, (const void *)hak_prof_alloc,
	(const void *)hak_prof_note_big,
};

static uintptr_t entry_lo[ARRAY_SIZE(entries)], entry_hi[ARRAY_SIZE(entries)];
static bool entries_done;
static uintptr_t self_lo, self_hi;

static bool in_entry(uintptr_t pc)
{
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(entries); i++)
		if (pc >= entry_lo[i] && pc < entry_hi[i])
			return true;
	return false;
}

void *__hak_prof_backtrace(uintptr_t *pc, unsigned max, uintptr_t ra, unsigned *depth)
{
	uintptr_t raw[HP_MAX_DEPTH + 2 * HP_SKIP_SCAN];
	unsigned n, i, skip = 0;
	const struct hp_module *self;
	void *hit;

	if (unlikely(!entries_done)) {
		hak_lock(&module_lock);
		for (i = 0; i < ARRAY_SIZE(entries); i++)
			if (!fde_range((uintptr_t)entries[i], &entry_lo[i], &entry_hi[i]))
				entry_lo[i] = entry_hi[i] = 0;
		self = module_find((uintptr_t)hak_prof_alloc, true);
		/* A shared libhakmem: every frame in it is the allocator's. */
		if (self && self->name[0]) {
			self_lo = self->lo;
			self_hi = self->hi;
		}
		entries_done = true;
		hak_unlock(&module_lock);
	}
	n = walk(raw, max + 2 * HP_SKIP_SCAN, ra, &hit);
	if (hit)
		return hit;
	/* Below the frame the entry returns to, everything is the profiler. */
	for (i = 0; i < n && i < HP_SKIP_SCAN; i++)
		if (raw[i] == ra) {
			skip = i;
			break;
		}
	/* Then the allocator's entry points (malloc, calloc -> __hak_calloc). */
	while (skip < n && in_entry(raw[skip] - 1))
		skip++;
	while (skip < n && raw[skip] - 1 >= self_lo && raw[skip] - 1 < self_hi)
		skip++;
	n -= skip;
	if (n > max)
		n = max;
	/* Return addresses point after the call: name the call itself. */
	for (i = 0; i < n; i++)
		pc[i] = raw[skip + i] - 1;
	*depth = n;
	return NULL;
}

# SPDX-License-Identifier: MIT
#
# hakmem: the one entry point of the build. Kbuild-like and non-recursive:
# lib/Makefile and every boxes/<box>/Makefile are read into this make and
# only list their objects (obj-y, obj-$(CONFIG_HAK_X)); selftests/<dir>/
# Makefile lists test programs (tests-y) and scripts (scripts-y).
#
#   make [all]            libhakmem.so and libhakmem.a from .config
#   make menuconfig ...   configuration (see `make help`)
#   make selftests [T=d]  build and run the selftests of this configuration
#   make check            the tests, under 20 minutes (tools/check.sh)
#   make check-more       the rest of what CI runs after make check
#
# Variables: O=dir (out-of-tree), ARCH=, V=1, C=1/C=2 (sparse), T=,
# CC=, KCFLAGS=, PREFIX=, DESTDIR=, COVERAGE=1 (gcov, tools/coverage.sh).
# Documentation/building-variants.md.

HAKMEM_VERSION := 0.1.0

MAKEFLAGS += -rR --no-print-directory
.SUFFIXES:
.DEFAULT_GOAL := all

this-makefile := $(lastword $(MAKEFILE_LIST))
srctree := $(realpath $(dir $(this-makefile)))
ifneq ($(words $(srctree)),1)
  $(error the source path "$(srctree)" must not contain spaces)
endif

# ---------------------------------------------------------------------------
# O= : all outputs go to $(objtree); without it, into the source tree as the
# kernel does (everything generated is in .gitignore).

ifeq ("$(origin O)", "command line")
  KBUILD_OUTPUT := $(O)
endif
ifneq ($(KBUILD_OUTPUT),)
  $(shell mkdir -p "$(KBUILD_OUTPUT)")
  objtree := $(realpath $(KBUILD_OUTPUT))
  ifeq ($(objtree),)
    $(error cannot create output directory "$(KBUILD_OUTPUT)")
  endif
else
  objtree := $(srctree)
endif

# ---------------------------------------------------------------------------
# V=1 prints whole commands; the default prints "  CC      lib/x.o".

ifeq ("$(origin V)", "command line")
  KBUILD_VERBOSE := $(V)
endif
ifeq ($(KBUILD_VERBOSE),1)
  quiet :=
  Q :=
else
  quiet := quiet_
  Q := @
endif
ifneq ($(findstring s,$(firstword -$(MAKEFLAGS))),)
  quiet := silent_
endif

# C=1: sparse on every C file compiled; C=2: on every C file, compiled or not.
ifeq ("$(origin C)", "command line")
  KBUILD_CHECKSRC := $(C)
endif

export srctree objtree
export KCONFIG_CONFIG := $(objtree)/.config
export KCONFIG_WARN_UNDEF := y

# ---------------------------------------------------------------------------
# Tools

# CROSS_COMPILE=aarch64-linux-gnu- prefixes the default tools, the kernel
# way (Documentation/building-variants.md, "Other architectures").
ifneq ($(filter default undefined,$(origin CC)),)
  CC := $(CROSS_COMPILE)gcc
endif
ifneq ($(filter default undefined,$(origin CXX)),)
  CXX := $(CROSS_COMPILE)g++
endif
ifneq ($(filter default undefined,$(origin AR)),)
  AR := $(CROSS_COMPILE)ar
endif

# ARCH: like the kernel's SUBARCH, but the compiler's target rather than
# the host's (`$(CC) -dumpmachine`), so that a CROSS_COMPILE or CC= build
# for another architecture picks generic by itself; overridable (ARCH=generic).
cc-machine := $(firstword $(subst -, ,$(shell $(CC) -dumpmachine 2>/dev/null)))
SUBARCH := $(or $(cc-machine),$(shell uname -m | sed -e 's/^amd64$$/x86_64/'))
ARCH ?= $(if $(filter x86_64,$(SUBARCH)),x86_64,generic)
ifeq ($(wildcard $(srctree)/arch/$(ARCH)/include/asm),)
  $(error ARCH=$(ARCH): no arch/$(ARCH)/include/asm; use one of: $(notdir $(wildcard $(srctree)/arch/*)))
endif
export ARCH

# Atomics on 1- and 2-byte objects are calls into libatomic where the
# compiler does not inline them (riscv64 with GCC 12: no sub-word AMO).
# Asked of the compiler, once, on generic builds only: x86_64 never needs it.
ifneq ($(ARCH),x86_64)
  arch-ldlibs := $(shell printf 'int main(void){static unsigned char c; return __atomic_fetch_or(&c, 1, 5);}\n' | \
	$(CC) -x c -o /dev/null - >/dev/null 2>&1 || echo -latomic)
endif
SPARSE ?= sparse
INSTALL ?= install
# Debian's python3-kconfiglib lives in /usr/bin/python3's path; a pyenv or
# venv python3 earlier in PATH cannot import it.
PYTHON3 ?= $(firstword $(wildcard /usr/bin/python3) python3)

# Missing tools are installed (as root) or named by tools/deps.sh.
need-kconfiglib = $(PYTHON3) -c 'import kconfiglib' 2>/dev/null || $(srctree)/tools/deps.sh
need-sparse = command -v $(SPARSE) >/dev/null 2>&1 || $(srctree)/tools/deps.sh

# ---------------------------------------------------------------------------
# Helpers (after scripts/Kbuild.include)

empty :=
space := $(empty) $(empty)
space_escape := _-_SPACE_-_
pound := \#
comma := ,
squote := '
escsq = $(subst $(squote),'\$(squote)',$1)
short = $(patsubst $(objtree)/%,%,$(patsubst $(srctree)/%,%,$1))

dot-target = $(@D)/.$(@F)
depfile = $(dot-target).d

echo-cmd = $(if $($(quiet)cmd_$(1)),echo '  $(call escsq,$($(quiet)cmd_$(1)))';)
cmd = @set -e; $(echo-cmd) $(cmd_$(1))

# A target is rebuilt when a prerequisite is newer or its command changed
# (saved in .<target>.cmd): a new ARCH, compiler flag or object list is
# enough to redo exactly what it affects.
newer-prereqs = $(filter-out FORCE,$?)
cmd-check = $(filter-out $(subst $(space),$(space_escape),$(strip $(savedcmd_$@))), \
                         $(subst $(space),$(space_escape),$(strip $(cmd_$1))))
if-changed-cond = $(newer-prereqs)$(cmd-check)
make-cmd = $(call escsq,$(subst $(pound),$$(pound),$(subst $$,$$$$,$(cmd_$(1)))))

if_changed = $(if $(if-changed-cond),$(cmd_and_savecmd),@:)
cmd_and_savecmd = $(cmd); printf '%s\n' 'savedcmd_$@ := $(make-cmd)' > $(dot-target).cmd

# Compile, then let tools/fixdep (awk: it runs after every compile) turn the
# .d into per-symbol dependencies.
AWK ?= awk
cmd_and_fixdep = $(cmd); \
	$(AWK) -f $(srctree)/tools/fixdep $(depfile) $@ $(objtree)/include/config '$(call escsq,$(cmd_$(1)))' > $(dot-target).cmd; \
	rm -f $(depfile)

# Compile-and-check rule: rebuild when needed; with C=2 also check sources
# whose object is up to date.
define rule_cc
	$(call cmd_and_fixdep,$(1))
	$(if $(KBUILD_CHECKSRC),$(call cmd,checksrc))
endef
if_changed_cc = $(if $(if-changed-cond),$(call rule_cc,$(1)),$(if $(filter 2,$(KBUILD_CHECKSRC)),$(call cmd,checksrc),@:))

PHONY := FORCE
FORCE:

# ---------------------------------------------------------------------------
# Which goals need a configuration, and mixed goals (`make defconfig all`):
# config and clean targets run one by one, each in its own make, like Kbuild.

config-targets := menuconfig oldconfig olddefconfig defconfig %_defconfig \
	savedefconfig listnewconfig alldefconfig allnoconfig allyesconfig setconfig
clean-targets := clean mrproper distclean
no-dot-config-targets := $(config-targets) $(clean-targets) help check check-more bench cross-check \
	uninstall stress fuzz boxmatrix boxmatrix-all autotune

mixed-build :=
need-config := 1
ifneq ($(filter $(config-targets) $(clean-targets),$(MAKECMDGOALS)),)
  ifneq ($(words $(MAKECMDGOALS)),1)
    mixed-build := 1
  endif
endif
ifneq ($(MAKECMDGOALS),)
  ifeq ($(filter-out $(no-dot-config-targets),$(MAKECMDGOALS)),)
    need-config :=
  endif
endif

ifdef mixed-build
# ===========================================================================
PHONY += __build_one_by_one
$(MAKECMDGOALS): __build_one_by_one
	@:
__build_one_by_one:
	$(Q)set -e; for i in $(MAKECMDGOALS); do \
		$(MAKE) -f $(this-makefile) $$i; \
	done

else
# ===========================================================================

PHONY += all
all:

# ---------------------------------------------------------------------------
# Configuration (Kconfiglib front ends). Config targets never read .config
# through make; menuconfig/olddefconfig read it as their input.

kconfig := $(srctree)/Kconfig
# Every front end runs under tools/kconfig-run, which ends it when its
# terminal hangs up (make alone would wait for it forever).
kconfig-run = $(PYTHON3) $(srctree)/tools/kconfig-run

PHONY += $(config-targets)
menuconfig: FORCE
	$(Q)$(need-kconfiglib)
	$(Q)$(kconfig-run) menuconfig $(kconfig)

oldconfig olddefconfig alldefconfig allnoconfig allyesconfig listnewconfig: FORCE
	$(Q)$(need-kconfiglib)
	$(Q)$(kconfig-run) $@ $(kconfig)

cmd_defconfig = $(need-kconfiglib); \
	test -f $(srctree)/configs/$@ || { \
		echo >&2 "*** configs/$@ does not exist; see 'make help'"; exit 1; }; \
	KCONFIG_WARN_UNDEF_ASSIGN=y $(kconfig-run) defconfig --kconfig $(kconfig) \
		$(srctree)/configs/$@

defconfig: FORCE
	$(Q)$(cmd_defconfig)

%_defconfig: FORCE
	$(Q)$(cmd_defconfig)

savedefconfig: FORCE
	$(Q)$(need-kconfiglib)
	$(Q)$(kconfig-run) savedefconfig --kconfig $(kconfig) --out $(objtree)/defconfig

# make setconfig SET="HAK_FOO=y HAK_BAR=n"   (scripts, CI matrices)
setconfig: FORCE
	$(Q)$(need-kconfiglib)
	$(Q)$(kconfig-run) setconfig --kconfig $(kconfig) $(SET)

ifdef need-config
# ---------------------------------------------------------------------------
# .config -> include/config/auto.conf (read by this Makefile),
# include/generated/autoconf.h, and per-symbol change files. auto.conf is
# the stamp: it is touched whenever tools/syncconfig runs, while autoconf.h
# and the symbol files only change when their content does, so a touched
# but unchanged .config rebuilds nothing.

autoconf := $(objtree)/include/config/auto.conf

$(KCONFIG_CONFIG):
	@echo "*** No $(call short,$@): using configs/defconfig"
	$(Q)$(MAKE) -f $(this-makefile) defconfig

quiet_cmd_syncconfig = SYNC    $(call short,$(objtree)/include/generated/autoconf.h)
      cmd_syncconfig = $(need-kconfiglib); \
	$(PYTHON3) $(srctree)/tools/syncconfig $(kconfig) $(objtree); touch $@

$(autoconf): $(KCONFIG_CONFIG) $(wildcard $(srctree)/boxes/*/Kconfig)
	$(call cmd,syncconfig)

-include $(autoconf).cmd
include $(autoconf)

endif # need-config

# ---------------------------------------------------------------------------
# Objects: lib/Makefile and boxes/*/Makefile, Kbuild style. A directory
# Makefile may also set ccflags-y (flags for its objects), ldlibs-y (extra
# libraries for libhakmem.so) and list subdirectories as obj-y += dir/.

lib-objs :=
lib-ldlibs :=

define add-dir
obj-y :=
ccflags-y :=
ldlibs-y :=
include $(srctree)/$(1)/Makefile
objs_$(1) := $$(addprefix $(objtree)/$(1)/,$$(filter %.o,$$(obj-y)))
subdirs_$(1) := $$(patsubst %/,$(1)/%,$$(filter %/,$$(obj-y)))
$$(objs_$(1)): dir-ccflags := $$(ccflags-y)
lib-objs += $$(objs_$(1))
lib-ldlibs += $$(ldlibs-y)
$$(foreach d,$$(subdirs_$(1)),$$(eval $$(call add-dir,$$(d))))
endef

src-dirs := $(patsubst $(srctree)/%/Makefile,%,$(wildcard $(srctree)/lib/Makefile \
	$(sort $(wildcard $(srctree)/boxes/*/Makefile))))
ifdef need-config
$(foreach d,$(src-dirs),$(eval $(call add-dir,$(d))))
endif

# ---------------------------------------------------------------------------
# Flags (see the contract in Documentation/building-variants.md)

opt-flags-$(CONFIG_HAK_CC_OPTIMIZE_O2) := -O2
opt-flags-$(CONFIG_HAK_CC_OPTIMIZE_O3) := -O3
opt-flags-$(CONFIG_HAK_CC_OPTIMIZE_SIZE) := -Os
opt-flags-$(CONFIG_HAK_CC_OPTIMIZE_DEBUG) := -Og
opt-flags := $(or $(opt-flags-y),-O2)
opt-flags += $(if $(CONFIG_HAK_DEBUG_INFO),-g)
# clang 14 writes DWARF 5 forms (strx1, addrx) that valgrind 3.19 cannot
# read ("Possibly corrupted debuginfo file"): DWARF 4 keeps memcheck's
# reports and the selftests that read them working on a clang build.
cc-is-clang := $(shell $(CC) --version 2>/dev/null | grep -q clang && echo y)
opt-flags += $(if $(CONFIG_HAK_DEBUG_INFO),$(if $(cc-is-clang),-gdwarf-4))
opt-flags += $(if $(CONFIG_HAK_FRAME_POINTER),-fno-omit-frame-pointer)

hak-cppflags := -D_GNU_SOURCE -I$(objtree)/include -I$(srctree)/include \
	-I$(srctree)/arch/$(ARCH)/include -I$(srctree)/lib -I$(srctree) \
	-include $(srctree)/include/hak/kconfig.h
hak-warnings := -Wall -Wextra -Werror
lib-cflags := -std=gnu11 $(opt-flags) -fPIC -fvisibility=hidden \
	-ftls-model=initial-exec $(hak-warnings)
test-cppflags := $(hak-cppflags) -I$(srctree)/selftests/lib
# A selftest asks the allocator, not the compiler: clang folds
# malloc(SIZE_MAX) and valloc(SIZE_MAX) to NULL without the call (errno
# never set; -fno-builtin-valloc does not stop it, only -fno-builtin), and
# both compilers drop a malloc/free pair whose block is not used.
test-nobuiltin := -fno-builtin
test-cflags := -std=gnu11 $(opt-flags) $(hak-warnings) $(test-nobuiltin)
test-cxxflags := -std=gnu++17 $(opt-flags) $(hak-warnings) $(test-nobuiltin)

# COVERAGE=1: gcov counters in the library and the selftests, for
# tools/coverage.sh (never on by default; Documentation/reliability.md,
# "Coverage"). -O1 after the configuration's level keeps the lines close to
# the source; atomic counters stay right in the threaded tests. Every
# program and the shared library also link selftests/lib/gcov_flush.c,
# which writes the counters before abort() and _exit(): a process ends
# through them in every fail-fast diagnostic and in most forked children,
# and would otherwise take its counts with it.
ifeq ($(COVERAGE),1)
cov-cflags := --coverage -O1 -fprofile-update=atomic
cov-obj := $(objtree)/selftests/lib/gcov_flush.o
cov-ldflags := $(cov-obj) -Wl,--wrap=abort -Wl,--wrap=_exit
lib-cflags += $(cov-cflags)
test-cflags += $(cov-cflags)
test-cxxflags += $(cov-cflags)
endif

# sparse: flag set checked on this toolchain (Documentation/building-variants.md)
sparse-flags := -std=gnu11 -D_GNU_SOURCE -Wsparse-all -Wno-unknown-attribute \
	-Wno-declaration-after-statement -Wno-non-pointer-null \
	-D__GCC_ATOMIC_TEST_AND_SET_TRUEVAL=1 -Wsparse-error

quiet_cmd_checksrc = CHECK   $(call short,$<)
      cmd_checksrc = $(need-sparse); \
	$(SPARSE) $(sparse-flags) $(filter -I% -D% -include %/kconfig.h,$(cppflags-for-sparse)) $< \
	|| { rm -f $@; exit 1; }

# ---------------------------------------------------------------------------
# The library

so := $(objtree)/libhakmem.so
ar := $(objtree)/libhakmem.a

quiet_cmd_cc_o_c = CC      $(call short,$@)
      cmd_cc_o_c = $(CC) $(hak-cppflags) $(lib-cflags) $(dir-ccflags) $(KCFLAGS) \
	-MMD -MF $(depfile) -c -o $@ $<

$(lib-objs): cppflags-for-sparse = $(hak-cppflags) $(dir-ccflags)
$(lib-objs): $(objtree)/%.o: $(srctree)/%.c FORCE
	@mkdir -p $(@D)
	$(call if_changed_cc,cc_o_c)

# -z nodelete: the fork handlers stay registered for the life of the process
# (lib/init.c, __hak_atfork), so the code they point to must never be unmapped
# by a dlclose.
quiet_cmd_ld_so = LD      $(call short,$@)
      cmd_ld_so = $(CC) $(opt-flags) $(cov-cflags) $(KCFLAGS) $(KLDFLAGS) -shared -o $@ $(lib-objs) \
	$(cov-ldflags) -Wl,-soname,libhakmem.so -Wl,-z,defs -Wl,-z,nodelete -lpthread $(lib-ldlibs) \
	$(arch-ldlibs)

quiet_cmd_ar = AR      $(call short,$@)
      cmd_ar = rm -f $@; $(AR) rcsD $@ $(lib-objs)

$(so): $(lib-objs) $(cov-obj) FORCE
	$(call if_changed,ld_so)

quiet_cmd_cov_o = CC      $(call short,$@)
      cmd_cov_o = $(CC) $(hak-cppflags) -std=gnu11 -O2 -fPIC -ftls-model=initial-exec \
	$(hak-warnings) -c -o $@ $<

$(cov-obj): $(srctree)/selftests/lib/gcov_flush.c FORCE
	@mkdir -p $(@D)
	$(call if_changed,cov_o)

$(ar): $(lib-objs) FORCE
	$(call if_changed,ar)

all: $(so) $(ar)

# ---------------------------------------------------------------------------
# Selftests: selftests/<dir>/Makefile lists tests-y (C or C++ programs,
# name.c / name.cc, linked with the whole libhakmem.a so that malloc IS
# hakmem), scripts-y (name.sh) and optional name-ldlibs. T="arch core"
# limits everything to those folders.

test-progs :=
test-scripts :=
test-run :=

define add-selftest-dir
tests-y :=
scripts-y :=
include $(srctree)/selftests/$(1)/Makefile
$$(foreach t,$$(tests-y),$$(eval ldlibs_selftests/$(1)/$$(t) := $$($$(t)-ldlibs))$$(eval undefine $$(t)-ldlibs))
test-progs += $$(addprefix $(objtree)/selftests/$(1)/,$$(tests-y))
test-scripts += $$(addprefix $(srctree)/selftests/$(1)/,$$(scripts-y))
test-run += $$(addprefix $(objtree)/selftests/$(1)/,$$(tests-y)) \
	$$(addprefix $(srctree)/selftests/$(1)/,$$(scripts-y))
endef

selftest-dirs := $(patsubst $(srctree)/selftests/%/Makefile,%, \
	$(sort $(wildcard $(srctree)/selftests/*/Makefile)))
ifneq ($(T),)
  selftest-dirs := $(filter $(patsubst selftests/%,%,$(patsubst %/,%,$(T))),$(selftest-dirs))
  ifeq ($(selftest-dirs),)
    $(error T=$(T): no such selftests folder)
  endif
endif
ifdef need-config
$(foreach d,$(selftest-dirs),$(eval $(call add-selftest-dir,$(d))))
endif

test-src = $(firstword $(wildcard $(srctree)/selftests/$(1).c $(srctree)/selftests/$(1).cc))
test-progs-c := $(foreach p,$(test-progs),$(if $(filter %.c,$(call test-src,$(patsubst $(objtree)/selftests/%,%,$(p)))),$(p)))
test-progs-cc := $(filter-out $(test-progs-c),$(test-progs))
test-ldlibs = $(ldlibs_$(patsubst $(objtree)/%,%,$@))

quiet_cmd_test_c = CC      $(call short,$@)
      cmd_test_c = $(CC) $(test-cppflags) $(test-cflags) $(KCFLAGS) -MMD -MF $(depfile) \
	-o $@ $< -Wl,--whole-archive $(ar) -Wl,--no-whole-archive $(cov-ldflags) -lpthread $(test-ldlibs) \
	$(arch-ldlibs)

quiet_cmd_test_cc = CXX     $(call short,$@)
      cmd_test_cc = $(CXX) $(test-cppflags) $(test-cxxflags) $(KCFLAGS) -MMD -MF $(depfile) \
	-o $@ $< -Wl,--whole-archive $(ar) -Wl,--no-whole-archive $(cov-ldflags) -lpthread $(test-ldlibs) \
	$(arch-ldlibs)

$(test-progs): cppflags-for-sparse = $(test-cppflags)
$(test-progs-c): $(objtree)/selftests/%: $(srctree)/selftests/%.c $(ar) $(cov-obj) FORCE
	@mkdir -p $(@D)
	$(call if_changed_cc,test_c)

# C++: no sparse
$(test-progs-cc): $(objtree)/selftests/%: $(srctree)/selftests/%.cc $(ar) $(cov-obj) FORCE
	@mkdir -p $(@D)
	$(if $(if-changed-cond),$(call cmd_and_fixdep,test_cc),@:)

# Another architecture: a cross build, its quick selftests under qemu-user
# (tools/cross-check.sh; not in make check: Documentation/building-variants.md).
PHONY += cross-check
cross-check:
	$(Q)MAKEFLAGS= MAKELEVEL= BUILD=$(objtree)/build $(srctree)/tools/cross-check.sh $(or $(CROSS_COMPILE),aarch64-linux-gnu-)

PHONY += selftests selftests-build
selftests-build: $(so) $(ar) $(test-progs)

selftests: selftests-build
	$(Q)HAKMEM_LIB=$(so) O=$(objtree) SRCTREE=$(srctree) \
		$(srctree)/selftests/lib/runner.sh $(test-run)

# ---------------------------------------------------------------------------
# Hermetic headers: every header compiles on its own (with the -include of
# include/hak/kconfig.h every translation unit gets). C=1 also runs sparse.
# A header that is a fragment by design (included once, in one place, into
# a prepared context) opts out with the comment "hdrcheck: skip". The header
# is force-included into an empty file, not compiled as the main file:
# clang flags every unused static inline function of a main file.

hdr-files = $(sort $(filter-out $(srctree)/include/generated/% $(srctree)/include/config/%, \
	$(shell find $(srctree)/include $(srctree)/arch/$(ARCH)/include -name '*.h')) \
	$(wildcard $(srctree)/lib/*.h $(srctree)/boxes/*/*.h))

PHONY += headers_check
headers_check: $(autoconf)
	$(Q)set -e; fail=0; for h in $(hdr-files); do \
		rel=$${h#$(srctree)/}; \
		if grep -q 'hdrcheck: skip' $$h; then echo "  HDRSKIP $$rel"; continue; fi; \
		$(if $(Q),echo "  HDRCHK  $$rel";) \
		$(CC) $(hak-cppflags) $(lib-cflags) $(KCFLAGS) -fsyntax-only -include $$h -x c /dev/null || fail=1; \
		$(if $(KBUILD_CHECKSRC),$(need-sparse); \
		$(SPARSE) $(sparse-flags) $(filter -I% -D% -include %/kconfig.h,$(hak-cppflags)) $$h || fail=1;) \
	done; exit $$fail

# ---------------------------------------------------------------------------
# install / uninstall

PREFIX ?= /usr/local
libdir ?= $(PREFIX)/lib
includedir ?= $(PREFIX)/include
pkgconfigdir ?= $(libdir)/pkgconfig
pc := $(objtree)/hakmem.pc

quiet_cmd_pc = GEN     $(call short,$@)
      cmd_pc = printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(libdir)' \
	'includedir=$(includedir)' '' 'Name: hakmem' \
	'Description: modular malloc (Kconfig-assembled boxes)' \
	'Version: $(HAKMEM_VERSION)' 'Libs: -L$${libdir} -lhakmem' \
	'Libs.private: -lpthread' 'Cflags: -I$${includedir}' > $@

$(pc): FORCE
	$(call if_changed,pc)

pub-headers = $(wildcard $(srctree)/include/hakmem/*.h)

PHONY += install
install: $(so) $(ar) $(pc)
	$(Q)$(INSTALL) -d $(DESTDIR)$(libdir) $(DESTDIR)$(includedir)/hakmem $(DESTDIR)$(pkgconfigdir)
	$(Q)$(INSTALL) -m 0755 $(so) $(DESTDIR)$(libdir)/libhakmem.so
	$(Q)$(INSTALL) -m 0644 $(ar) $(DESTDIR)$(libdir)/libhakmem.a
	$(Q)$(if $(pub-headers),$(INSTALL) -m 0644 $(pub-headers) $(DESTDIR)$(includedir)/hakmem/,:)
	$(Q)$(INSTALL) -m 0644 $(pc) $(DESTDIR)$(pkgconfigdir)/hakmem.pc
	@echo "  INSTALL $(DESTDIR)$(libdir)/libhakmem.{so,a} $(DESTDIR)$(includedir)/hakmem/ $(DESTDIR)$(pkgconfigdir)/hakmem.pc"

PHONY += uninstall
uninstall:
	$(Q)rm -f $(DESTDIR)$(libdir)/libhakmem.so $(DESTDIR)$(libdir)/libhakmem.a \
		$(DESTDIR)$(pkgconfigdir)/hakmem.pc
	$(Q)rm -rf $(DESTDIR)$(includedir)/hakmem

# ---------------------------------------------------------------------------
# CI and benchmarks: scripts that build their own variants with O=.

PHONY += check check-more bench stress fuzz boxmatrix boxmatrix-all autotune
check:
	$(Q)$(srctree)/tools/check.sh $(STEPS)

# The second tier (tools/check.sh): the selftests make check leaves out, in
# the trees it left; .ci/run runs it after make check.
check-more:
	$(Q)HAKMEM_CHECK_TIER=more $(srctree)/tools/check.sh $(STEPS)

# Box combinations: a strength-3 covering array (make check and check-more
# run strength 2, each with part of the selftests), or
# every valid combination (2^boxes builds; hours once there are many boxes).
boxmatrix:
	$(Q)$(srctree)/tools/boxmatrix.sh

boxmatrix-all:
	$(Q)$(srctree)/tools/boxmatrix.sh --all

# Long reliability runs (Documentation/reliability.md): DURATION=2h, 30m, 600.
stress:
	$(Q)$(srctree)/tools/stress.sh -d $(or $(DURATION),1h) $(STRESS_CONFIGS)

fuzz:
	$(Q)$(srctree)/tools/fuzz.sh -t $(or $(DURATION),3600) -j $(or $(FUZZ_JOBS),2)

bench:
	$(Q)test -x $(srctree)/tools/bench/run.sh || { \
		echo >&2 "*** tools/bench/run.sh is missing"; exit 1; }
	$(Q)cd $(srctree) && tools/bench/run.sh

# The best variant and HAKMEM_* options for a workload
# (Documentation/autotune.md). WORKLOAD, OBJECTIVE, BUDGET, METRIC,
# METRIC_DIR, OUT ... reach tools/autotune.sh through the environment
# (make exports command-line variables); AUTOTUNE_ARGS adds options.
autotune:
	$(Q)$(srctree)/tools/autotune.sh $(AUTOTUNE_ARGS)

# ---------------------------------------------------------------------------
# clean: every build output has a .<name>.cmd next to it; remove both. Nested
# output trees (build/, build-*/, any folder with its own .config) are left
# alone. mrproper also removes the configuration.

PHONY += clean mrproper distclean
clean:
	$(Q)cd $(objtree) && find . \( -name .git -o -path ./build -o -path './build-*' \
		-o \( -type d ! -path . -exec test -f {}/.config \; \) \) -prune \
		-o -type f \( -name '.*.cmd' -o -name '.*.d' \) ! -path ./include/config/'*' -print | \
		while read -r f; do \
			case $$f in *.cmd) d=$${f%/*}; t=$${f##*/.}; rm -f "$$d/$${t%.cmd}";; esac; \
			rm -f "$$f"; \
		done
	$(Q)rm -f $(objtree)/hakmem.pc

mrproper distclean: clean
	$(Q)rm -rf $(objtree)/.config $(objtree)/.config.old $(objtree)/defconfig \
		$(objtree)/include/generated $(objtree)/include/config

# ---------------------------------------------------------------------------

PHONY += help
help:
	@echo 'Configuration (Kconfiglib, as in the kernel):'
	@echo '  menuconfig       - edit .config in a terminal menu'
	@echo '  defconfig        - .config from configs/defconfig'
	@echo '  <name>_defconfig - .config from configs/<name>_defconfig:'
	@echo '                     $(sort $(notdir $(wildcard $(srctree)/configs/*_defconfig)))'
	@echo '  olddefconfig     - update .config, new symbols get their defaults'
	@echo '  oldconfig        - update .config, asking about new symbols'
	@echo '  savedefconfig    - write the minimal $(if $(KBUILD_OUTPUT),$$O/)defconfig for .config'
	@echo '  listnewconfig    - list symbols that .config does not set yet'
	@echo '  allnoconfig, allyesconfig, alldefconfig'
	@echo '  setconfig SET="HAK_X=y ..." - set symbols from a script'
	@echo ''
	@echo 'Build (no .config: defconfig first):'
	@echo '  all              - libhakmem.so and libhakmem.a (default)'
	@echo '  selftests        - build and run the selftests of this configuration'
	@echo '                     (T="arch core" runs only those folders)'
	@echo '  headers_check    - every header compiles on its own'
	@echo '  install          - PREFIX=$(PREFIX) DESTDIR=: libs, include/hakmem, hakmem.pc'
	@echo '  uninstall        - remove what install put there'
	@echo '  clean            - remove build outputs, keep the configuration'
	@echo '  mrproper         - clean and remove .config and generated headers'
	@echo ''
	@echo 'Project:'
	@echo '  check            - the tests, under 20 minutes (tools/check.sh; STEPS="pattern" picks steps)'
	@echo '  check-more       - the rest of what CI runs, after check (HAKMEM_CHECK_TIER=more)'
	@echo '  bench            - build variants and run the benchmarks (tools/bench/run.sh)'
	@echo '  stress           - threaded selftests again and again (DURATION=1h, tools/stress.sh)'
	@echo '  fuzz             - libFuzzer on the hak_* API (DURATION=3600 seconds, tools/fuzz.sh)'
	@echo '  boxmatrix        - box combinations, covering every 3 boxes (tools/boxmatrix.sh)'
	@echo '  boxmatrix-all    - every valid combination of the boxes (long)'
	@echo '  autotune         - best variant and options for WORKLOAD="cmd args" [OBJECTIVE=time|rss|time*rss'
	@echo '                     BUDGET=600 METRIC=regexp METRIC_DIR=higher|lower]: configs/autotune_defconfig,'
	@echo '                     autotune-results/<date>/report.md (tools/autotune.sh)'
	@echo ''
	@echo 'Variables:'
	@echo '  O=dir     build out of tree (several variants side by side)'
	@echo '  ARCH=     x86_64 or generic (detected: $(ARCH))'
	@echo '  V=1       show full commands'
	@echo '  C=1       sparse on every compiled C file (C=2: every C file)'
	@echo '  CC= KCFLAGS= KLDFLAGS=   compiler, extra compile/link flags'
	@echo '  COVERAGE=1               gcov counters (tools/coverage.sh)'

-include $(foreach f,$(lib-objs) $(so) $(ar) $(pc) $(test-progs) $(cov-obj),$(dir $(f)).$(notdir $(f)).cmd)

endif # mixed-build

.PHONY: $(PHONY)

# SPDX-License-Identifier: MIT
# make install into a DESTDIR, then build a program against the installed
# files only (headers, pkg-config, -lhakmem) and run it. It installs the
# defconfig variant's tree (build/check-defconfig, built and tested above;
# built here when that step did not run), not another build of defconfig.
install_check() {
	local d=$BUILD/check-install dest prefix=/usr/local
	rm -rf "$d" && mkdir -p "$d" || return 1
	dest=$d/root
	hakmake O="$BUILD/check-defconfig" defconfig >/dev/null &&
	hakmake O="$BUILD/check-defconfig" install PREFIX=$prefix DESTDIR="$dest" || return 1
	for f in lib/libhakmem.so lib/libhakmem.a lib/pkgconfig/hakmem.pc; do
		[ -f "$dest$prefix/$f" ] || { echo "not installed: $prefix/$f"; return 1; }
	done
	ls "$dest$prefix/include/hakmem/"*.h >/dev/null || { echo "no headers installed"; return 1; }
	cat > "$d/t.c" <<'EOT'
#include <hakmem/hakmem.h>
#include <stdlib.h>
#include <string.h>
int main(void)
{
	char *p = malloc(100);

	if (!p)
		return 1;
	memset(p, 1, 100);
	free(p);
	return 0;
}
EOT
	# pkg-config answers for the final prefix; point it at the staging root.
	local flags
	flags=$(PKG_CONFIG_PATH="$dest$prefix/lib/pkgconfig" \
		PKG_CONFIG_SYSROOT_DIR="$dest" pkg-config --cflags --libs hakmem) || return 1
	echo "pkg-config: $flags"
	# shellcheck disable=SC2086
	gcc -std=gnu11 -Wall -Werror -o "$d/t" "$d/t.c" $flags &&
	LD_LIBRARY_PATH="$dest$prefix/lib" "$d/t" &&
	LD_LIBRARY_PATH="$dest$prefix/lib" ldd "$d/t" | grep -q "$dest$prefix/lib/libhakmem.so" || {
		echo "program built against the installed hakmem did not run with it"; return 1; }
}
tier check && step install install_check

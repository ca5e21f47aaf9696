# SPDX-License-Identifier: MIT
# Every source file opens with an SPDX-License-Identifier line.
spdx_check() {
	local f bad=0
	git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "not a git tree"; return 0; }
	while IFS= read -r f; do
		case $f in
		*.c|*.h|*.cc|*.sh|*.py|*Makefile|*Kconfig|*.S|tools/fixdep|tools/syncconfig|.ci/run) ;;
		*) continue ;;
		esac
		[ -f "$f" ] || continue
		if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier:'; then
			echo "missing SPDX-License-Identifier: $f"
			bad=1
		fi
	done < <(git ls-files)
	return $bad
}
tier check && step spdx spdx_check

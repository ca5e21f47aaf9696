# SPDX-License-Identifier: MIT
# Every source file opens with an SPDX-License-Identifier line.
# One awk over all the files (a head and a grep per file were some 1,600
# processes, 7 s of CPU on this VM).
spdx_check() {
	local f files=() bad=0
	git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "not a git tree"; return 0; }
	while IFS= read -r f; do
		case $f in
		*.c|*.h|*.cc|*.sh|*.py|*Makefile|*Kconfig|*.S|tools/fixdep|tools/syncconfig|.ci/run) ;;
		*) continue ;;
		esac
		[ -f "$f" ] || continue
		# an empty file has no line for awk to see
		[ -s "$f" ] || { echo "missing SPDX-License-Identifier: $f"; bad=1; continue; }
		files+=("$f")
	done < <(git ls-files)
	[ ${#files[@]} -gt 0 ] || return $bad
	awk '
		function done_file() {
			if (cur != "" && !ok) { print "missing SPDX-License-Identifier: " cur; bad = 1 }
		}
		FNR == 1 { done_file(); cur = FILENAME; ok = 0 }
		FNR <= 3 && /SPDX-License-Identifier:/ { ok = 1 }
		FNR >= 3 { nextfile }
		END { done_file(); exit bad }
	' "${files[@]}" || bad=1
	return $bad
}
tier check && step spdx spdx_check

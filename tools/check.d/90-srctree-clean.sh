# SPDX-License-Identifier: MIT
# Out-of-tree builds must not write into the source tree. Build outputs are
# all in .gitignore, so look for new ignored paths outside build/; on CI
# (CI=true, a fresh clone nobody else edits) also for new untracked files.
srctree_clean() {
	local now new
	git rev-parse --git-dir >/dev/null 2>&1 || { echo "not a git tree"; return 0; }
	now=$(git status --porcelain --ignored --untracked-files=all | grep -v '^!! build/')
	new=$(comm -13 <(echo "$SRCTREE_STATUS_BEFORE" | sort) <(echo "$now" | sort))
	[ "${CI:-}" = true ] || new=$(echo "$new" | grep '^!!')
	if [ -n "$new" ]; then
		echo "the source tree changed during check:"
		echo "$new"
		return 1
	fi
}
bgwait
step srctree-clean srctree_clean

# SPDX-License-Identifier: MIT
# The box contract: a box's files reach the core only through lib/box.h.
# A quoted include of anything else must be another box's header
# ("boxes/<box>/<file>.h", for a box that depends on it) or the box's own.
boxapi_check() {
	local f inc bad=0 n=0
	for f in boxes/*/*.c boxes/*/*.h; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		while IFS= read -r inc; do
			case $inc in
			box.h|boxes/*/*.h) ;;
			*)
				echo "$f: includes \"$inc\"; a box may include only \"box.h\" of the core"
				bad=1 ;;
			esac
		done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
	done
	echo "$n box files checked"
	return $bad
}
tier check && step boxapi boxapi_check

# SPDX-License-Identifier: MIT
# Box combinations (tools/boxcombos): a strength-2 covering array over every
# box (every two boxes see all four on/off settings), each built with
# -Werror and sparse. The first tier runs each combination's own boxes'
# selftests (a box's tests against the others' settings), the second the
# rest (the core's folders and those of the boxes it turns off), so the two
# together run every folder in every combination. `make boxmatrix` runs
# strength 3 with every folder, `make boxmatrix-all` every valid
# combination.
if tier check; then
	step boxmatrix tools/boxmatrix.sh --strength 2 --tests own
else
	step boxmatrix-rest tools/boxmatrix.sh --strength 2 --tests rest
fi

# SPDX-License-Identifier: MIT
# Box combinations (tools/boxcombos): a strength-2 covering array over every
# box (every two boxes see all four on/off settings), each built with
# -Werror and sparse and run through the selftests. `make boxmatrix` runs
# strength 3, `make boxmatrix-all` every valid combination.
step boxmatrix tools/boxmatrix.sh --strength 2

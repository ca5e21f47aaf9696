# SPDX-License-Identifier: MIT
# Box combinations (tools/boxcombos): a strength-3 covering array over every
# box, each built with -Werror and sparse and run through the selftests.
# `make boxmatrix-all` runs every valid combination.
step boxmatrix tools/boxmatrix.sh

# SPDX-License-Identifier: MIT
# Stress: larson_sim (4 threads) and threads_prodcons (4 and 8 threads),
# 50 runs each (20 for perf and debug), and the fork scenarios
# (fork_signal, fork_stdio) at a short slice, 5 runs each, every run its
# own process, for defconfig, perf_defconfig and debug_defconfig
# (tools/stress.sh; `make stress` is the long mode, with the fork scenarios
# at full size). The runs use the trees of the variants above
# (build/check-<name>, same configuration and flags; -o), so no
# configuration is built twice (about 80 s of CPU).
# perf and debug share defconfig's code paths but for their boxes: their
# 20 runs each are the second tier's (tools/check.sh; about 55 s of a quiet
# machine's wall time, which kept make check under 20 minutes with room),
# in the trees the first tier left; make stress runs them for hours.
if tier more; then
	step stress-variants tools/stress.sh -o "$BUILD/check" -n 20 perf_defconfig debug_defconfig
	return 0
fi
step stress tools/stress.sh -o "$BUILD/check" -n 50 defconfig
# Past the cores: the same programs (and threads_churn) at 16 and 64
# threads on this 2-core machine, 10 runs each for defconfig (60 runs,
# about 3 minutes); the 100-run version is
# `tools/stress.sh -n 100 -t "16 64"`, and `make stress` includes them in
# its round robin for every config.
step stress-wide tools/stress.sh -o "$BUILD/check" -n 10 -t "16 64" defconfig

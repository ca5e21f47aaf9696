# SPDX-License-Identifier: MIT
# Stress: larson_sim (4 threads) and threads_prodcons (4 and 8 threads),
# 100 runs each, and the fork scenarios (fork_signal, fork_stdio) at a short
# slice, 5 runs each, every run its own process, for defconfig,
# perf_defconfig and debug_defconfig (tools/stress.sh; `make stress` is the
# long mode, with the fork scenarios at full size).
step stress tools/stress.sh -n 100 defconfig perf_defconfig debug_defconfig

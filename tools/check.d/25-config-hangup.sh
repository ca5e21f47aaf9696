# SPDX-License-Identifier: MIT
# Configuration front ends end when their terminal hangs up: make menuconfig
# (make as the session leader, and under a shell), the front end run without
# make, and make oldconfig, each on a pseudo-terminal whose master is then
# closed; no process of the session may be left after 6 s
# (tools/config-hangup-test, tools/kconfig-run).
# In the background: about 13 s of waiting on terminals and 1 s of CPU,
# next to install and the box matrix.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
tier check && bgstep config-hangup "$py" tools/config-hangup-test "$BUILD/check-hangup"

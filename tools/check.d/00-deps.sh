# SPDX-License-Identifier: MIT
# Install (as root) or name the Debian packages everything below needs.
step deps tools/deps.sh

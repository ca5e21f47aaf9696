# SPDX-License-Identifier: MIT
# All on/off combinations of the seed boxes: -Werror, sparse, selftests.
step boxmatrix tools/boxmatrix.sh

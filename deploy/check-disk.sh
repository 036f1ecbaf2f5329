#!/usr/bin/env bash
# Usage: deploy/check-disk.sh DIR GIB
# Warns, before pip starts, when DIR's file system has less than GIB GiB free: the
# Python environment (torch with its CUDA libraries) needs about 6.5 GiB installed plus
# room for the wheels while pip unpacks them, and a full disk otherwise shows up as a
# bare "[Errno 28] No space left on device" halfway through pip.  A warning, not a
# failure: with a little less it may still fit, and pip's own error then has this context.
set -euo pipefail
dir=${1:?directory}
need_gib=${2:?GiB needed}
free_kib=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
free_gib=$((free_kib / 1024 / 1024))
if ((free_gib < need_gib)); then
	echo "check-disk: WARNING only ${free_gib} GiB free under $(cd "$dir" && pwd); installing needs about ${need_gib} GiB (torch and its CUDA libraries): pip may fail with 'No space left on device'" >&2
	exit 0
fi
echo "check-disk: ${free_gib} GiB free under $(cd "$dir" && pwd)"

#!/usr/bin/env bash
# Builds the consumer with nothing but pkg-config's flags against an installed aiopp.
# usage: build-and-run.sh <install-prefix> <work-dir> <c++ compiler> [extra flags...]
set -euo pipefail
prefix=$1 work=$2 cxx=$3
shift 3
pcdir=$(dirname "$(find "$prefix" -name aiopp.pc -print -quit)")
[ -n "$pcdir" ] || { echo "no aiopp.pc under $prefix" >&2; exit 1; }
export PKG_CONFIG_PATH=$pcdir
echo "pkg-config --cflags --libs aiopp: $(pkg-config --cflags --libs aiopp)"
mkdir -p "$work"
# shellcheck disable=SC2046
"$cxx" "$@" "$(dirname "$0")/../consumer.cpp" $(pkg-config --cflags --libs aiopp) -o "$work/consumer"
"$work/consumer"

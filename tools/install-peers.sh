#!/usr/bin/env bash
# Installs the external peer engines' benchmark tools (Debian/Ubuntu): RocksDB's db_bench
# (rocksdb-tools) and tkrzw's tkrzw_dbm_perf (tkrzw-utils). The in-process peers (redb, fjall,
# candystore) need no install: they are cargo features of kvbench.
set -euo pipefail
if command -v db_bench >/dev/null && command -v tkrzw_dbm_perf >/dev/null; then
    echo "peers already installed: $(command -v db_bench) $(command -v tkrzw_dbm_perf)"
    exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq rocksdb-tools tkrzw-utils
db_bench --version 2>/dev/null || true

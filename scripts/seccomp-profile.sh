#!/usr/bin/env bash
# Regenerates the evidence behind the seccomp allow-list (crates/openfc-sandbox/src/filter.rs): builds openfc with
# OPENFC_SECCOMP_PROFILE=1 (calls the list refuses are allowed and logged with SECCOMP_RET_LOG instead of refused)
# into its own target directory, runs e2e tests against that binary, and prints every system call a function made
# that the list lacks, with how often and which executables made it. An empty report means the list covers what
# the suites exercise; anything printed is to be decided in filter.rs (allowed in a group with its reason, or left
# refused on purpose).
#
# Usage: scripts/seccomp-profile.sh [PYTEST -k EXPRESSION]
#   default expression: the runtime suites (sandbox, runtimes, invoke, custom runtimes and containers, prestart,
#   java, php, go, node, layers).
# Needs root (reads the kernel log, lifts printk's rate limit for the run and restores it) and a kernel with
# SECCOMP_RET_LOG (4.14+) logging enabled in /proc/sys/kernel/seccomp/actions_logged. The seccomp records reach
# the kernel log through audit; without auditd they are printk'd, which is why the rate limit is lifted.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
K=${1:-"sandbox or runtime or invoke or custom or container or prestart or java or php or go or node or layer"}
TARGET=$ROOT/target/seccomp-profile
BIN=$TARGET/debug/openfc
UNISTD=/usr/include/x86_64-linux-gnu/asm/unistd_64.h

[[ $EUID -eq 0 ]] || { echo "seccomp-profile.sh: run as root (dmesg, sysctl)" >&2; exit 1; }
grep -qw log /proc/sys/kernel/seccomp/actions_logged || { echo "seccomp-profile.sh: the kernel does not log SECCOMP_RET_LOG" >&2; exit 1; }
[[ -r $UNISTD ]] || { echo "seccomp-profile.sh: $UNISTD missing (apt-get install linux-libc-dev)" >&2; exit 1; }

# A separate target directory, so target/debug/openfc (what everyone's tests run) never is the logging build.
# Seeded from target/debug the first time: only openfc-sandbox and what depends on it are rebuilt.
if [[ ! -d $TARGET/debug && -d $ROOT/target/debug ]]; then
    mkdir -p "$TARGET/debug"
    for entry in "$ROOT"/target/debug/* "$ROOT"/target/debug/.fingerprint; do
        # Other builds may be deleting files meanwhile: what is missing is rebuilt.
        [[ $(basename "$entry") == incremental ]] || cp -a --reflink=auto "$entry" "$TARGET/debug/" 2>/dev/null || true
    done
fi
echo "==> building the logging openfc into $TARGET"
OPENFC_SECCOMP_PROFILE=1 CARGO_TARGET_DIR=$TARGET cargo build -p openfc

RATELIMIT=$(cat /proc/sys/kernel/printk_ratelimit)
restore() { echo "$RATELIMIT" >/proc/sys/kernel/printk_ratelimit; }
trap restore EXIT
echo 0 >/proc/sys/kernel/printk_ratelimit
# Records after this marker are this run's.
MARK="openfc-seccomp-profile-$$-$(date +%s)"
echo "$MARK" >/dev/kmsg

echo "==> e2e: -k \"$K\" against $BIN"
set +e
OPENFC_BIN=$BIN scripts/test.sh --e2e-only -k "$K"
rc=$?
set -e
echo "==> e2e exit status $rc (failures here are not the list's: every call was allowed)"

LOG=$TARGET/seccomp-log.txt
dmesg | sed -n "/$MARK/,\$p" | grep 'type=1326' | grep 'code=0x7ffc0000' >"$LOG" || true
lost=$(dmesg | sed -n "/$MARK/,\$p" | grep -c -e 'callbacks suppressed' -e 'backlog limit exceeded' -e 'audit_lost' || true)
echo "==> $(wc -l <"$LOG") logged calls ($LOG); kernel messages about lost records: $lost"
# syscall=N exe="..." → name, count, executables.
awk -v unistd="$UNISTD" '
    BEGIN { while ((getline line < unistd) > 0) if (line ~ /^#define __NR_/) { split(line, f, " "); name[f[3]] = substr(f[2], 6) } }
    {
        nr = ""; exe = "";
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^syscall=/) nr = substr($i, 9);
            if ($i ~ /^exe=/) exe = substr($i, 5);
        }
        n = (nr in name) ? name[nr] : "nr" nr;
        count[n]++; if (index(exes[n], exe) == 0) exes[n] = exes[n] " " exe;
    }
    END { for (n in count) printf "%-24s %6d %s\n", n, count[n], exes[n] }
' "$LOG" | sort -k2,2nr
exit 0

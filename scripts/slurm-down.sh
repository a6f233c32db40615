#!/usr/bin/env bash
# Stop the single-node Slurm that scripts/slurm-up.sh started (only the daemons named in its pid
# files). --purge also removes the state folder (config, job state, logs, munge key) and the
# /etc/slurm/slurm.conf link to it. Safe to run when nothing is running.
set -euo pipefail

DIR=${STAGECTL_SLURM_DIR:-/tmp/stagectl-slurm}
purge=0
case "${1:-}" in
    --purge) purge=1 ;;
    "") ;;
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac
say() { echo "slurm-down: $*"; }

stop() {  # name pidfile
    local pid i
    pid=$(cat "$2" 2>/dev/null) || { say "$1 not running"; return 0; }
    if [ -z "$pid" ] || [ ! -r "/proc/$pid/comm" ] || [ "$(cat "/proc/$pid/comm")" != "$1" ]; then
        say "$1 not running"
        return 0
    fi
    kill "$pid"
    for ((i = 0; i < 100; i++)); do
        # gone, or a zombie nobody has reaped yet (both mean it has stopped)
        if [ ! -d "/proc/$pid" ] || [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then
            say "stopped $1 (pid $pid)"
            return 0
        fi
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    say "killed $1 (pid $pid) after 10 s"
}

# Jobs first would be polite, but slurmd's stepds end with it; the compute node goes first so
# the controller does not mark it down while stopping.
stop slurmd "$DIR/run/slurmd.pid"
stop slurmctld "$DIR/run/slurmctld.pid"
stop munged "$DIR/run/munged.pid"

if [ "$purge" = 1 ]; then
    if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$DIR/etc/slurm.conf" ]; then
        rm -f /etc/slurm/slurm.conf
        say "removed the /etc/slurm/slurm.conf link"
    fi
    rm -rf "$DIR"
    say "removed $DIR"
fi

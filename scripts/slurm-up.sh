#!/usr/bin/env bash
# Start a real single-node Slurm (Debian's munge, slurmctld, slurmd) on this machine for tests and
# CI: config, state and logs under one folder, fake GPUs declared as gres on plain files, plugins
# that need neither systemd nor cgroups. Idempotent: a second run with the same settings leaves the
# running daemons alone; changed settings restart them. See docs/slurm-pool.md.
#
# Settings (environment):
#   STAGECTL_SLURM_DIR    state folder            [/tmp/stagectl-slurm]
#   STAGECTL_SLURM_GPUS   fake GPUs on the node   [4]
#   STAGECTL_SLURM_CPUS   CPUs the node declares  [max(nproc, 8)]
#   STAGECTL_SLURM_NO_INSTALL=1  never run apt-get (fail if a package is missing)
# Exit codes: 0 node idle and ready, 1 failure, 2 bad settings.
set -euo pipefail

DIR=${STAGECTL_SLURM_DIR:-/tmp/stagectl-slurm}
GPUS=${STAGECTL_SLURM_GPUS:-4}
NPROC=$(nproc)
CPUS=${STAGECTL_SLURM_CPUS:-$(( NPROC > 8 ? NPROC : 8 ))}
NODE=$(hostname -s)
CONF="$DIR/etc/slurm.conf"

say() { echo "slurm-up: $*"; }
die() { echo "slurm-up: error: $1" >&2; exit "${2:-1}"; }

[[ "$GPUS" =~ ^[0-9]+$ ]] || die "STAGECTL_SLURM_GPUS must be a whole number, got '$GPUS'" 2
[[ "$CPUS" =~ ^[1-9][0-9]*$ ]] || die "STAGECTL_SLURM_CPUS must be a positive number, got '$CPUS'" 2
[[ "$DIR" = /* ]] || die "STAGECTL_SLURM_DIR must be an absolute path, got '$DIR'" 2
[ "$(id -u)" -eq 0 ] || die "run as root: munged, slurmctld and slurmd run as root here (sudo $0)"

# --- packages ---------------------------------------------------------------------------------
missing=()
command -v munged >/dev/null 2>&1 || [ -x /usr/sbin/munged ] || missing+=(munge)
[ -x /usr/sbin/slurmctld ] || missing+=(slurmctld)
[ -x /usr/sbin/slurmd ] || missing+=(slurmd)
command -v sbatch >/dev/null 2>&1 || missing+=(slurm-client)
if [ ${#missing[@]} -gt 0 ]; then
    [ "${STAGECTL_SLURM_NO_INSTALL:-0}" = 1 ] && die "missing packages: ${missing[*]} (apt-get install ${missing[*]})"
    command -v apt-get >/dev/null 2>&1 || die "missing packages: ${missing[*]} and no apt-get here"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's maintainer scripts would start the services with /etc/slurm's config; a
    # policy-rc.d that says 101 (Docker images ship one) stops that, and this script starts the
    # daemons itself below with its own config.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
    if [ "$(trap -p EXIT)" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
else
    say "packages present: $(dpkg-query -W -f='${Package} ${Version}  ' munge slurmctld slurmd slurm-client 2>/dev/null)"
fi
PATH=/usr/sbin:/sbin:$PATH

mkdir -p "$DIR"/{etc,state,spool,log,run,munge,dev}
chmod 0755 "$DIR" "$DIR"/{etc,state,spool,log,run,dev}
chmod 0711 "$DIR/munge"  # munged wants its socket folder searchable by all

# --- config -----------------------------------------------------------------------------------
gpu_files=""
changed=0
fake_kind="character devices"
for ((i = 0; i < GPUS; i++)); do
    # Fake /dev/nvidiaN: Slurm numbers GPUs (and sets CUDA_VISIBLE_DEVICES, SLURM_JOB_GPUS) only
    # for gres files that are character devices; it stats them and never opens them (task/none
    # builds no device cgroup). Major 240 is reserved for local use, so nothing real is behind them
    # (195, NVIDIA's, would reach a real GPU on a machine that has one).
    f="$DIR/dev/nvidia$i"
    [ -c "$f" ] && continue
    rm -f "$f"
    changed=1
    if ! mknod -m 0666 "$f" c 240 "$i" 2>/dev/null; then
        : > "$f"  # no CAP_MKNOD: Slurm still counts the GPUs but sets no CUDA_VISIBLE_DEVICES
        fake_kind="plain files (mknod refused: jobs get no CUDA_VISIBLE_DEVICES)"
    fi
done
if [ "$GPUS" -gt 0 ]; then
    gpu_files="$DIR/dev/nvidia[0-$((GPUS - 1))]"
    node_gres="Gres=gpu:$GPUS"
else
    node_gres=""
fi

new_conf=$(cat <<CONF
# Written by scripts/slurm-up.sh: a single-node Slurm for stagectl tests and CI. Do not edit.
ClusterName=stagectl
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket.2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
PlugStackConfig=$DIR/etc/plugstack.conf
# No systemd, no cgroups in a container: track processes by parent pid, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
# No slurmdbd: finished jobs are read from the controller, which keeps them MinJobAge seconds
# (docs/decisions/0060-slurm-job-state-without-slurmdbd.md); a text completion log for people.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
MinJobAge=3600
# The node declares what this file says, not what the hardware has (fake GPUs, CPUs for overlap).
SlurmdParameters=config_overrides
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=2
ReturnToService=2
KillWait=5
InactiveLimit=0
Waittime=0
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$CPUS $node_gres State=UNKNOWN
PartitionName=stage Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
)
new_gres="# Written by scripts/slurm-up.sh: fake GPUs on plain files."
[ "$GPUS" -gt 0 ] && new_gres+=$'\n'"NodeName=$NODE Name=gpu File=$gpu_files"

write_if_changed() {  # path content
    if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then
        printf '%s\n' "$2" > "$1"
        changed=1
        say "wrote $1"
    fi
}
write_if_changed "$CONF" "$new_conf"
write_if_changed "$DIR/etc/gres.conf" "$new_gres"
write_if_changed "$DIR/etc/plugstack.conf" "# Written by scripts/slurm-up.sh: no SPANK plugins."
export SLURM_CONF="$CONF"

if [ ! -s "$DIR/munge/munge.key" ]; then
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$DIR/munge/munge.key"
    say "created munge key $DIR/munge/munge.key"
fi

# --- daemons ----------------------------------------------------------------------------------
running() {  # name pidfile: true when the pid file names a live process of that name
    # (a killed daemon can linger as a zombie where nothing reaps orphans: not running)
    local pid state
    pid=$(cat "$2" 2>/dev/null) || return 1
    [ -n "$pid" ] || return 1
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$1" ] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != "Z" ] && [ "$state" != "X" ]
}
stop() {  # name pidfile
    local pid i
    running "$1" "$2" || return 0
    pid=$(cat "$2")
    say "stopping $1 (pid $pid)"
    kill "$pid"
    for ((i = 0; i < 100; i++)); do running "$1" "$2" || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

started() {  # name pidfile: wait up to 10 s for a daemon that just forked to write its pid file
    local i
    for ((i = 0; i < 100; i++)); do running "$1" "$2" && return 0; sleep 0.1; done
    return 1
}

if [ "$changed" = 1 ]; then
    stop slurmd "$DIR/run/slurmd.pid"
    stop slurmctld "$DIR/run/slurmctld.pid"
fi

if running munged "$DIR/run/munged.pid"; then
    say "munged already running (pid $(cat "$DIR/run/munged.pid"))"
else
    # --force: munged refuses a root-owned socket folder otherwise; it is private to this stage.
    munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket.2" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed"
    say "started munged (pid $(cat "$DIR/run/munged.pid"))"
fi
munge -n -S "$DIR/munge/munge.socket.2" | unmunge -S "$DIR/munge/munge.socket.2" >/dev/null \
    || die "munge credential round trip failed; see $DIR/log/munged.log"

if running slurmctld "$DIR/run/slurmctld.pid"; then
    say "slurmctld already running (pid $(cat "$DIR/run/slurmctld.pid"))"
else
    slurmctld -f "$CONF"
    started slurmctld "$DIR/run/slurmctld.pid" || die "slurmctld did not start; see $DIR/log/slurmctld.log"
    say "started slurmctld (pid $(cat "$DIR/run/slurmctld.pid"))"
fi
if running slurmd "$DIR/run/slurmd.pid"; then
    say "slurmd already running (pid $(cat "$DIR/run/slurmd.pid"))"
else
    slurmd -f "$CONF"
    started slurmd "$DIR/run/slurmd.pid" || die "slurmd did not start; see $DIR/log/slurmd.log"
    say "started slurmd (pid $(cat "$DIR/run/slurmd.pid"))"
fi

# --- wait for the node ------------------------------------------------------------------------
state=""
for ((i = 0; i < 120; i++)); do
    state=$(sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n1 || true)
    case "$state" in
        idle|mixed|allocated) break ;;
        down*|drain*|drained*|fail*)
            scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
case "$state" in
    idle|mixed|allocated) ;;
    *) die "node $NODE is '${state:-unknown}' after 60 s; see $DIR/log/slurmctld.log and $DIR/log/slurmd.log" ;;
esac

# Plain `sinfo`/`sbatch` find this config through /etc/slurm/slurm.conf, unless a real one is there.
if [ ! -e /etc/slurm/slurm.conf ] || { [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$CONF" ]; }; then
    if [ ! -L /etc/slurm/slurm.conf ]; then
        mkdir -p /etc/slurm
        ln -sfn "$CONF" /etc/slurm/slurm.conf
        say "linked /etc/slurm/slurm.conf -> $CONF"
    fi
else
    say "left /etc/slurm/slurm.conf alone (not ours); use SLURM_CONF=$CONF"
fi

say "$(sinfo --version): node $NODE $state, $CPUS CPUs, $GPUS fake GPUs ($fake_kind), partition 'stage'"
say "config $CONF, logs $DIR/log"
echo "export SLURM_CONF=$CONF"

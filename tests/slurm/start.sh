#!/usr/bin/env bash
# Start a single-node SLURM (munged, slurmctld, slurmd) on this machine, for tests/workflow/test_slurm.py.
#
# Debian 12, run as root, no systemd needed: installs the packages if missing, writes
# /etc/slurm/slurm.conf (the only place every SLURM client finds it: the executor's job step does
# not pass SLURM_CONF on) and starts the daemons with pid files that tests/slurm/stop.sh kills.
# The node has two fake GPUs (gres backed by /dev/null and /dev/zero) so GPU requests are really
# scheduled, two at a time like the two jobs a 2-core machine runs at once.
# No slurmdbd: job status comes from `squeue`, which keeps finished jobs for MinJobAge seconds.
#
#   bash tests/slurm/start.sh        # state, logs and pid files under $FTLAB_SLURM_DIR
set -euo pipefail

DIR="${FTLAB_SLURM_DIR:-/tmp/ftlab-slurm}"
PACKAGES=(slurmctld slurmd slurm-client munge)

if [[ $(id -u) -ne 0 ]]; then
    echo "tests/slurm/start.sh: must run as root (it writes /etc/slurm and starts daemons)" >&2
    exit 1
fi

alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    echo "installing ${PACKAGES[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
fi

mkdir -p "$DIR/state" "$DIR/spool" /etc/slurm
host="$(hostname -s)"
# The node as slurmd sees the hardware (CPUs, sockets, memory), plus the fake GPU.
node="$(slurmd -C | head -1)"
cat >/etc/slurm/slurm.conf <<CONF
# Written by ftlab tests/slurm/start.sh: a single-node test cluster on the loopback address.
ClusterName=ftlab
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=${DIR}/state
SlurmdSpoolDir=${DIR}/spool
SlurmctldPidFile=${DIR}/slurmctld.pid
SlurmdPidFile=${DIR}/slurmd.pid
SlurmctldLogFile=${DIR}/slurmctld.log
SlurmdLogFile=${DIR}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol this long (the executor polls squeue, the test
# counts a whole run's jobs with scontrol).
MinJobAge=3600
GresTypes=gpu
${node} NodeAddr=127.0.0.1 Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
cat >/etc/slurm/gres.conf <<CONF
AutoDetect=off
Name=gpu File=/dev/null
Name=gpu File=/dev/zero
CONF

# Start each daemon unless it already runs; list what we started for stop.sh (and only that).
start() {  # start PIDFILE COMMAND...
    local pidfile="$1"
    shift
    alive "$pidfile" && return 0
    if ! "$@" </dev/null >"$DIR/$(basename "$pidfile" .pid).out" 2>&1; then
        echo "tests/slurm/start.sh: '$*' failed:" >&2
        cat "$DIR/$(basename "$pidfile" .pid).out" >&2
        exit 1
    fi
    for _ in $(seq 50); do alive "$pidfile" && break; sleep 0.1; done
    echo "$pidfile" >>"$DIR/started"
}
install -d -o munge -g munge -m 0755 /run/munge
start /run/munge/munged.pid runuser -u munge -- /usr/sbin/munged
start "$DIR/slurmctld.pid" /usr/sbin/slurmctld -c
start "$DIR/slurmd.pid" /usr/sbin/slurmd

for _ in $(seq 60); do
    state="$(sinfo -h -n "$host" -o %T 2>/dev/null || true)"
    [[ "$state" == idle* || "$state" == mixed* || "$state" == allocated* ]] && break
    [[ "$state" == down* || "$state" == drain* ]] && scontrol update nodename="$host" state=resume || true
    sleep 1
done
if [[ "$state" != idle* && "$state" != mixed* && "$state" != allocated* ]]; then
    echo "tests/slurm/start.sh: node $host not ready (state '$state'); logs in $DIR" >&2
    tail -n 20 "$DIR"/slurmctld.log "$DIR"/slurmd.log >&2 || true
    exit 1
fi
echo "SLURM up: node $host ($state), partition main, gres gpu:2; state in $DIR"

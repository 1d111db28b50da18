#!/usr/bin/env bash
# A single-node SLURM cluster on localhost (munged, slurmctld, slurmd), for
# testing profiles/slurm against a real scheduler (issue 16). Everything lives
# in one state folder, so it never touches a system SLURM or munge.
#
#   scripts/slurm-local.sh start DIR   # prints: export SLURM_CONF=DIR/slurm.conf
#   scripts/slurm-local.sh stop DIR
#
# Needs root (slurmd starts jobs as their user) and Debian's slurmctld, slurmd,
# slurm-client and munge (scripts/install.sh --test installs them).
set -euo pipefail

cmd=${1:?usage: slurm-local.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: slurm-local.sh start|stop DIR}")

stop() {
    local f
    for f in slurmd slurmctld munged; do
        [ -f "$dir/$f.pid" ] && kill "$(cat "$dir/$f.pid")" 2>/dev/null || true
    done
    sleep 1
    # The system config link start made, if it points at this cluster's.
    if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$dir/slurm.conf" ]; then
        rm -f /etc/slurm/slurm.conf
    fi
}

if [ "$cmd" = stop ]; then
    stop
    exit 0
fi
[ "$cmd" = start ] || { echo "slurm-local.sh: unknown command '$cmd' (start or stop)" >&2; exit 2; }

for tool in munged slurmctld slurmd sbatch; do
    command -v "$tool" >/dev/null || {
        echo "slurm-local.sh: '$tool' not found; install Debian's slurmctld slurmd slurm-client munge (scripts/install.sh --test)" >&2
        exit 1
    }
done
[ "$(id -u)" = 0 ] || { echo "slurm-local.sh: needs root (slurmd launches jobs as their user)" >&2; exit 1; }

mkdir -p "$dir"/{ctld,spool,munge}
chmod 700 "$dir/munge"
# Free ports, so that two clusters (or a system one) can coexist.
read -r ctld_port slurmd_port < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
host=$(hostname -s)
# The node's size is what slurmd itself sees, so the scheduler's view is true (its first line; the
# second is the uptime).
node=$(slurmd -C | head -1)

dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"

cat > "$dir/slurm.conf" <<EOF
ClusterName=facegen-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# The executor polls squeue; finished jobs must stay visible to it a while.
MinJobAge=600
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

# SLURM_CONF reaches sbatch, but not the srun inside each job: the jobstep plugin drops every SLURM_*
# variable it does not know before calling srun, which then reads the system path. So the cluster's
# config is linked there too, when no other config holds that path.
mkdir -p /etc/slurm
if [ -e /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" != "$dir/slurm.conf" ]; then
    echo "slurm-local.sh: /etc/slurm/slurm.conf belongs to another cluster; stop it first, or run this where none is set up" >&2
    exit 1
fi
ln -sfn "$dir/slurm.conf" /etc/slurm/slurm.conf

export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 1
done
echo "slurm-local.sh: the node did not come up in 60 s; see $dir/slurmctld.log and $dir/slurmd.log" >&2
stop
exit 1

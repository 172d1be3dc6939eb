#!/usr/bin/env bash
# The servers that the tests of the PostgreSQL store and the Slurm executor use: PostgreSQL
# (Debian's cluster) and a one-node Slurm cluster with munge. `up` starts whichever are installed
# and prints the environment that names them, for `eval`; `down` stops the Slurm daemons.
#
#   eval "$(scripts/servers.sh up)"      # LAB_TEST_POSTGRES, SLURM_CONF
#   scripts/servers.sh down
#
# Everything the cluster writes lives in $LAB_SERVERS_DIR (default /tmp/lab-servers). Messages
# go to stderr; stdout is only the exports.
set -euo pipefail
state="${LAB_SERVERS_DIR:-/tmp/lab-servers}"
say() { echo "servers: $*" >&2; }

as_user() {
    local user=$1
    shift
    if [ "$(id -un)" = "$user" ]; then "$@"; else runuser -u "$user" -- "$@"; fi
}

postgres_up() {
    if ! command -v pg_lsclusters >/dev/null 2>&1; then
        say "PostgreSQL is not installed (apt-get install postgresql): its tests skip"
        return
    fi
    local version cluster port status
    read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n 1) || true
    if [ -z "${version:-}" ]; then
        say "no PostgreSQL cluster is configured (pg_createcluster): its tests skip"
        return
    fi
    if [ "$status" != "online" ]; then
        pg_ctlcluster "$version" "$cluster" start >&2
    fi
    # A role that may create the test databases, with a password so that it logs in over TCP.
    as_user postgres psql -q -p "$port" -v ON_ERROR_STOP=1 >&2 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lab') THEN
    CREATE ROLE lab LOGIN CREATEDB PASSWORD 'lab';
  END IF;
END \$\$;
SQL
    say "PostgreSQL $version/$cluster on port $port"
    echo "export LAB_TEST_POSTGRES=postgres://lab:lab@localhost:$port/postgres"
}

slurm_up() {
    if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
        say "Slurm is not installed (apt-get install slurm-wlm munge): its tests skip"
        return
    fi
    mkdir -p "$state/slurmctld" "$state/slurmd"
    local conf="$state/slurm.conf" node cpus memory
    node=$(hostname -s)
    cpus=$(nproc)
    memory=$(awk '/MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)
    cat >"$conf" <<CONF
ClusterName=lab
SlurmctldHost=localhost
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$state/slurmctld
SlurmdSpoolDir=$state/slurmd
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
KillWait=5
MinJobAge=300
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=lab Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
    if ! pgrep -x munged >/dev/null; then
        mkdir -p /run/munge && chown munge:munge /run/munge
        as_user munge /usr/sbin/munged >&2
    fi
    export SLURM_CONF="$conf"
    pgrep -x slurmctld >/dev/null || slurmctld -f "$conf" >&2
    pgrep -x slurmd >/dev/null || slurmd -f "$conf" >&2
    # Up when the node takes jobs.
    for _ in $(seq 1 100); do
        if sinfo --noheader --format=%t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
            say "Slurm: one node ($node, $cpus CPUs), config $conf"
            echo "export SLURM_CONF=$conf"
            return
        fi
        sleep 0.2
    done
    say "Slurm did not come up; see $state/slurmctld.log and $state/slurmd.log"
    return 1
}

case "${1:-up}" in
up)
    postgres_up
    slurm_up
    ;;
down)
    pkill -x slurmd || true
    pkill -x slurmctld || true
    ;;
*)
    say "usage: $0 up|down"
    exit 2
    ;;
esac

#!/usr/bin/env bash
# ovs-sandbox.sh — a private Open vSwitch (ovsdb-server + DPDK ovs-vswitchd) in one directory.
#
# Tests, benchmarks and the demo start their own OVS with this script so that they never touch
# (or need) a system OVS. Everything lives in DIR; vswitchd runs in its own network namespace
# because two netdev datapaths in one namespace clash over the "ovs-netdev" tap device.
# See docs/sandbox.md for the why of each flag.
set -euo pipefail

readonly SCHEMA=${OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}
readonly VSWITCHD_DPDK=${VHP_VSWITCHD_DPDK:-/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk}
# The Debian alternative /usr/sbin/ovs-vswitchd may point at the DPDK build; prefer the plain one.
if [[ -x /usr/lib/openvswitch-switch/ovs-vswitchd ]]; then
  readonly VSWITCHD_PLAIN=${VHP_VSWITCHD:-/usr/lib/openvswitch-switch/ovs-vswitchd}
else
  readonly VSWITCHD_PLAIN=${VHP_VSWITCHD:-ovs-vswitchd}
fi
readonly DPDK_RUNTIME_BASE=/var/run/dpdk
SCRIPT=$(realpath "${BASH_SOURCE[0]}")
readonly SCRIPT
# How long start waits for vswitchd to apply the configuration and initialise DPDK.
readonly START_TIMEOUT=${VHP_SANDBOX_TIMEOUT:-20}

usage() {
  cat <<'EOF'
Usage: ovs-sandbox.sh COMMAND DIR [--no-dpdk] [--pmd sleep|busy] [--owner PID]

A private Open vSwitch in DIR: ovsdb-server on DIR/conf.db (remote unix:DIR/db.sock) and a DPDK
ovs-vswitchd (no hugepages) in its own network namespace, with bridge br-int
(datapath_type=netdev). dpdkvhostuser sockets appear in DIR (OVS_RUNDIR=DIR).

Commands:
  start DIR [--no-dpdk] [--pmd sleep|busy] [--owner PID]
                          create DIR if needed and start both daemons; returns once vswitchd has
                          applied the config (cur_cfg == next_cfg) and dpdk_initialized is true.
                          --no-dpdk runs the plain ovs-vswitchd (still in its own netns).
                          --pmd sleep (default): the PMD sleeps when idle (pmd-maxsleep=10000),
                          sparing a core; every port add/delete then waits for it to wake.
                          --pmd busy: as production nodes run it: the PMD busy-polls
                          (pmd-maxsleep=0) on its own core, and every other thread of both
                          daemons is pinned to the remaining CPUs (taskset), when there are any.
                          A busy PMD takes a whole core: stop the sandbox when done.
                          --owner PID: a watchdog stops the sandbox once PID has exited.
                          A failed start prints the log tails, cleans up and exits non-zero.
  stop DIR                stop everything (processes, netns, taps, DPDK runtime dir). Idempotent.
                          conf.db and the logs stay in DIR.
  env DIR                 print `export` lines: OVS_RUNDIR OVS_DBDIR OVS_LOGDIR OVS_SYSCONFDIR
                          VHP_DB VHP_NETNS VHP_DPDK_PREFIX VHP_PMD VHP_PMD_CPUS VHP_HOUSEKEEPING_CPUS.
                          Use: eval "$(ovs-sandbox.sh env DIR)"
  status DIR              print the state of each daemon; exit 0 if both run, 3 otherwise.
  restart-vswitchd DIR    stop and start ovs-vswitchd only; the database keeps its rows and the new
                          vswitchd re-creates existing vhost-user sockets.
  kill-db DIR             SIGKILL ovsdb-server, as a crash would (db.sock stays behind).
  start-db DIR            start ovsdb-server again on the same conf.db (removes a stale db.sock).

Environment: VHP_SANDBOX_TIMEOUT (seconds, default 20), VHP_SANDBOX_PMD_MASK (default 0x2 when
the machine has a CPU 1, else 0x1), VHP_SANDBOX_PIN=0 (busy PMD without pinning the other threads), VHP_SANDBOX_OTHER_CONFIG
("key=value ..." added to Open_vSwitch other_config at start, after the defaults).
Needs root (network namespaces, /var/run/dpdk).
EOF
}

die() { echo "ovs-sandbox: $*" >&2; exit 1; }

# ---- naming -------------------------------------------------------------------------------------

# Unique per absolute DIR, used both as netns name and DPDK --file-prefix so that several
# sandboxes can run at once.
sandbox_name() {
  local hash
  hash=$(printf '%s' "$1" | sha256sum)
  echo "vhp-${hash:0:8}"
}

# ---- process helpers ----------------------------------------------------------------------------

# A process counts as alive unless it is gone or a zombie: PID 1 here reaps only every ~2 s.
pid_alive() {
  local pid=$1 stat
  [[ -n "$pid" ]] || return 1
  read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
  stat=${stat##*) }
  [[ "${stat:0:1}" != Z ]]
}

read_pid() {
  local f=$1 pid
  [[ -f "$f" ]] || return 0
  read -r pid <"$f" 2>/dev/null || true
  [[ "$pid" =~ ^[0-9]+$ ]] && echo "$pid"
  return 0
}

# wait_dead PID SECONDS: poll until PID is dead; returns 1 if still alive at the deadline.
wait_dead() {
  local pid=$1 deadline=$((${EPOCHREALTIME//[!0-9]/} + $2 * 1000000))
  while ((${EPOCHREALTIME//[!0-9]/} < deadline)); do
    pid_alive "$pid" || return 0
    sleep 0.01
  done
  ! pid_alive "$pid"
}

# Processes that belong to this sandbox even if their pidfile is missing (a start that failed
# half-way): daemons whose command line names DIR's database.
sandbox_daemon_pids() {
  local p comm
  local -a argv
  for p in /proc/[0-9]*; do
    read -r comm 2>/dev/null <"$p/comm" || continue
    case "$comm" in ovsdb-server | ovs-vswitchd*) ;; *) continue ;; esac
    mapfile -d '' argv 2>/dev/null <"$p/cmdline" || continue
    if [[ " ${argv[*]} " == *" unix:$DIR/db.sock "* || " ${argv[*]} " == *" $DIR/conf.db "* ]]; then
      echo "${p#/proc/}"
    fi
  done
}

# stop_daemon NAME CTL PIDFILE [EXIT-ARGS...]: graceful exit via unixctl, then SIGKILL.
stop_daemon() {
  local name=$1 ctl=$2 pidfile=$3
  shift 3
  local pid
  pid=$(read_pid "$pidfile")
  if pid_alive "$pid"; then
    if [[ -S "$ctl" ]]; then
      timeout 5 ovs-appctl -t "$ctl" exit "$@" >/dev/null 2>&1 || true
    fi
    if ! wait_dead "$pid" 3; then
      echo "ovs-sandbox: $name ($pid) did not exit, sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      wait_dead "$pid" 2 || echo "ovs-sandbox: $name ($pid) survived SIGKILL" >&2
    fi
  fi
  rm -f "$pidfile" "$ctl"
}

# ---- environment --------------------------------------------------------------------------------

setup_env() {
  local arg=$1
  [[ -n "$arg" ]] || die "missing DIR (see --help)"
  if [[ "$CMD" == start ]]; then
    mkdir -p "$arg"
  fi
  if [[ -d "$arg" ]]; then
    DIR=$(cd "$arg" && pwd -P)
  else
    # A nonexistent sandbox: stop/status/env still work on the name.
    DIR=$(realpath -m "$arg")
  fi
  NAME=$(sandbox_name "$DIR")
  DB="unix:$DIR/db.sock"
  export OVS_RUNDIR=$DIR OVS_DBDIR=$DIR OVS_LOGDIR=$DIR OVS_SYSCONFDIR=$DIR
  OVSDB_PIDFILE=$DIR/ovsdb-server.pid
  OVSDB_CTL=$DIR/ovsdb-server.ctl
  VSWITCHD_PIDFILE=$DIR/ovs-vswitchd.pid
  VSWITCHD_CTL=$DIR/ovs-vswitchd.ctl
  MODE_FILE=$DIR/sandbox.mode
  PMD_FILE=$DIR/sandbox.pmd
  WATCHDOG_PIDFILE=$DIR/watchdog.pid
}

vsctl() { ovs-vsctl --db="$DB" --timeout=10 "$@"; }

need_root() {
  [[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, DPDK runtime dir)"
}

pmd_mask() {
  if [[ -n "${VHP_SANDBOX_PMD_MASK:-}" ]]; then
    echo "$VHP_SANDBOX_PMD_MASK"
  elif [[ -d /sys/devices/system/cpu/cpu1 ]]; then
    echo 0x2 # keep the PMD off CPU 0, where the main thread and testpmd live
  else
    echo 0x1
  fi
}

# ---- PMD placement ------------------------------------------------------------------------------

# "0-2,5" -> "0 1 2 5"
expand_cpu_list() {
  local part a b out=() parts
  IFS=, read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ "$part" == *-* ]]; then
      a=${part%-*} b=${part#*-}
      while ((a <= b)); do out+=("$a"); a=$((a + 1)); done
    elif [[ -n "$part" ]]; then
      out+=("$part")
    fi
  done
  echo "${out[*]}"
}

# 0x6 -> "1 2"
mask_to_cpus() {
  local mask=$(($1)) cpu=0 out=()
  while ((mask > 0)); do
    ((mask & 1)) && out+=("$cpu")
    mask=$((mask >> 1)) cpu=$((cpu + 1))
  done
  echo "${out[*]}"
}

# Decides where the PMD and everything else run: sets PMD (sleep|busy), PMD_CPUS and
# HOUSEKEEPING (comma list of the CPUs this script may use minus the PMD's; empty when pinning
# is off or impossible). Only a busy PMD is isolated: a sleeping one hardly uses its core.
plan_pmd() {
  PMD=$1
  PMD_CPUS=$(mask_to_cpus "$(pmd_mask)")
  HOUSEKEEPING=""
  [[ "$PMD" == busy && "${VHP_SANDBOX_PIN:-1}" != 0 ]] || return 0
  local allowed c keep=()
  allowed=$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status)
  for c in $(expand_cpu_list "$allowed"); do
    [[ " $PMD_CPUS " == *" $c "* ]] || keep+=("$c")
  done
  local IFS=,
  HOUSEKEEPING="${keep[*]}"
}

save_pmd() {
  printf 'pmd=%s\npmd_cpus=%s\nhousekeeping=%s\n' "$PMD" "${PMD_CPUS// /,}" "$HOUSEKEEPING" >"$PMD_FILE"
}

# Reads sandbox.pmd (written by start); a sandbox from before it existed had a sleeping PMD.
load_pmd() {
  PMD=sleep PMD_CPUS="" HOUSEKEEPING=""
  [[ -f "$PMD_FILE" ]] || return 0
  local k v
  while IFS='=' read -r k v; do
    case "$k" in
      pmd) PMD=$v ;;
      pmd_cpus) PMD_CPUS=${v//,/ } ;;
      housekeeping) HOUSEKEEPING=$v ;;
    esac
  done <"$PMD_FILE"
}

# Runs a daemon on the housekeeping CPUs when pinning is on. vswitchd must START there: DPDK
# gives its control threads (vhost-events, eal-intr-thread, ...) the start-up affinity minus the
# EAL lcores, which would otherwise be the PMD's core. The PMD thread pins itself to
# pmd-cpu-mask all the same (ovs-numa sees every CPU of the machine).
pinned() {
  if [[ -n "$HOUSEKEEPING" ]]; then
    taskset -c "$HOUSEKEEPING" "$@"
  else
    "$@"
  fi
}

print_log_tails() {
  local f
  for f in "$DIR/ovsdb-server.log" "$DIR/ovs-vswitchd.log"; do
    [[ -f "$f" ]] || continue
    echo "---- tail of $f ----" >&2
    tail -n 25 "$f" >&2 || true
  done
}

# ---- ovsdb-server -------------------------------------------------------------------------------

start_db() {
  if pid_alive "$(read_pid "$OVSDB_PIDFILE")"; then
    die "ovsdb-server already running in $DIR"
  fi
  # A crashed server leaves its sockets behind; a stale db.sock would make clients see ECONNREFUSED
  # instead of ENOENT, and inotify watchers would miss the socket reappearing.
  rm -f "$DIR/db.sock" "$OVSDB_CTL"
  [[ -f "$DIR/conf.db" ]] || ovsdb-tool create "$DIR/conf.db" "$SCHEMA"
  pinned ovsdb-server "$DIR/conf.db" \
    --remote="punix:$DIR/db.sock" \
    --unixctl="$OVSDB_CTL" \
    --pidfile="$OVSDB_PIDFILE" \
    -vconsole:off --log-file="$DIR/ovsdb-server.log" \
    --detach --no-chdir
}

# ---- ovs-vswitchd -------------------------------------------------------------------------------

ensure_netns() {
  if [[ ! -e "/run/netns/$NAME" ]]; then
    ip netns add "$NAME"
  fi
  ip -n "$NAME" link set lo up
}

start_vswitchd() {
  local dpdk=$1 bin
  if pid_alive "$(read_pid "$VSWITCHD_PIDFILE")"; then
    die "ovs-vswitchd already running in $DIR"
  fi
  rm -f "$VSWITCHD_CTL"
  if [[ "$dpdk" == 1 ]]; then
    bin=$VSWITCHD_DPDK
    [[ -x "$bin" ]] || die "$bin not found (install openvswitch-switch-dpdk)"
    rm -rf "${DPDK_RUNTIME_BASE:?}/$NAME"
  else
    bin=$VSWITCHD_PLAIN
  fi
  ensure_netns
  local -a pin=()
  [[ -z "$HOUSEKEEPING" ]] || pin=(taskset -c "$HOUSEKEEPING")
  ip netns exec "$NAME" "${pin[@]}" "$bin" "$DB" \
    --unixctl="$VSWITCHD_CTL" \
    --pidfile="$VSWITCHD_PIDFILE" \
    -vconsole:off --log-file="$DIR/ovs-vswitchd.log" \
    --detach --no-chdir
  wait_applied "$dpdk"
}

# Returns once vswitchd has applied the database (cur_cfg caught up with a next_cfg we bump) and,
# with DPDK, dpdk_initialized is true.
wait_applied() {
  local dpdk=$1 next cond
  # Bump next_cfg ourselves: a restarted vswitchd finds cur_cfg already equal to the old next_cfg,
  # and ovs-vsctl only bumps it in transactions that change something.
  next=$(vsctl --no-wait get Open_vSwitch . next_cfg)
  next=$((next + 1))
  vsctl --no-wait set Open_vSwitch . next_cfg="$next"
  cond=("cur_cfg>=$next")
  [[ "$dpdk" == 1 ]] && cond+=(dpdk_initialized=true)
  ovs-vsctl --db="$DB" --no-wait --timeout="$START_TIMEOUT" \
    wait-until Open_vSwitch . "${cond[@]}" ||
    die "vswitchd did not apply the configuration within ${START_TIMEOUT}s"
  vsctl --no-wait br-exists br-int || die "bridge br-int missing"
}

stop_vswitchd() {
  # --cleanup makes vswitchd remove its datapath, taps and vhost-user sockets.
  stop_daemon ovs-vswitchd "$VSWITCHD_CTL" "$VSWITCHD_PIDFILE" --cleanup
  rm -rf "${DPDK_RUNTIME_BASE:?}/$NAME"
  # A vswitchd that died without --cleanup leaves its dpdkvhostuser sockets, and DPDK will not
  # bind over them ("Address already in use"): the port would come back with ofport -1. Every
  # socket in DIR except the database's belongs to vswitchd.
  local f
  for f in "$DIR"/*; do
    [[ -S "$f" && "$f" != "$DIR/db.sock" && "$f" != "$OVSDB_CTL" ]] && rm -f "$f"
  done
  # After a SIGKILL the persistent taps (ovs-netdev, br-int) stay and would make the next
  # vswitchd fail with EBUSY. Every tun/tap in the sandbox netns is vswitchd's own.
  if [[ -e "/run/netns/$NAME" ]]; then
    local tap
    for tap in $(ip -n "$NAME" tuntap show 2>/dev/null | cut -d: -f1); do
      ip -n "$NAME" link delete "$tap" 2>/dev/null || true
    done
  fi
}

# ---- commands -----------------------------------------------------------------------------------

cmd_start() {
  need_root
  local dpdk=$1 owner=${2:-} pmd=${3:-sleep}
  if pid_alive "$(read_pid "$OVSDB_PIDFILE")" || pid_alive "$(read_pid "$VSWITCHD_PIDFILE")"; then
    die "a sandbox is already running in $DIR (stop it first)"
  fi
  # Leftovers of a sandbox that died without stop (netns, DPDK runtime dir, a stray daemon).
  if [[ -e "/run/netns/$NAME" || -e "$DPDK_RUNTIME_BASE/$NAME" ]] ||
    { [[ -e "$DIR/conf.db" ]] && [[ -n "$(sandbox_daemon_pids)" ]]; }; then
    echo "ovs-sandbox: cleaning up leftovers of an earlier sandbox in $DIR" >&2
    cmd_stop
  fi
  # OVS copes with long unix socket paths, DPDK's vhost-user sockets (sun_path, 108 bytes) do not.
  if ((${#DIR} > 80)); then
    echo "ovs-sandbox: warning: $DIR is ${#DIR} bytes long; vhost-user socket paths over 107 bytes fail" >&2
  fi
  STARTING=1
  echo "$dpdk" >"$MODE_FILE"
  plan_pmd "$pmd"
  save_pmd
  start_db
  # One transaction for the whole initial config; vswitchd reads it at start-up, so there is
  # nothing to reconfigure afterwards.
  local -a cfg=(-- init -- --may-exist add-br br-int -- set Bridge br-int datapath_type=netdev)
  if [[ "$dpdk" == 1 ]]; then
    cfg+=(-- set Open_vSwitch . other_config:dpdk-init=true
      "other_config:dpdk-extra=\"--legacy-mem --no-huge -m 512 --no-pci --file-prefix $NAME\""
      other_config:per-port-memory=true
      "other_config:pmd-maxsleep=$([[ "$PMD" == busy ]] && echo 0 || echo 10000)"
      "other_config:pmd-cpu-mask=$(pmd_mask)")
  fi
  # Extra Open_vSwitch other_config for experiments (e.g. per-port-memory=false); last wins.
  local kv
  for kv in ${VHP_SANDBOX_OTHER_CONFIG:-}; do
    [[ "$kv" == *=* ]] || die "VHP_SANDBOX_OTHER_CONFIG: '$kv' is not key=value"
    cfg+=(-- set Open_vSwitch . "other_config:$kv")
  done
  vsctl --no-wait "${cfg[@]}"
  start_vswitchd "$dpdk"
  [[ -z "$owner" ]] || start_watchdog "$owner"
  STARTING=0
}

cmd_stop() {
  local pid
  # The watchdog first, so it does not race with us (unless we are the watchdog).
  pid=$(read_pid "$WATCHDOG_PIDFILE")
  if [[ -n "$pid" && "$pid" != "$BASHPID" ]] && pid_alive "$pid"; then
    # It only sleeps and polls; SIGKILL does not wait for its `sleep 1` to finish.
    kill -KILL "$pid" 2>/dev/null || true
    wait_dead "$pid" 1 || true
  fi
  rm -f "$WATCHDOG_PIDFILE"
  stop_vswitchd
  stop_daemon ovsdb-server "$OVSDB_CTL" "$OVSDB_PIDFILE"
  # Stragglers without a (valid) pidfile, e.g. from a start that failed half-way.
  for pid in $(sandbox_daemon_pids); do
    kill -KILL "$pid" 2>/dev/null || true
    wait_dead "$pid" 2 || true
  done
  if [[ -e "/run/netns/$NAME" ]]; then
    for pid in $(ip netns pids "$NAME" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null || true
      wait_dead "$pid" 2 || true
    done
    # Deleting the namespace also destroys the ovs-netdev and br-int taps inside it.
    ip netns delete "$NAME" 2>/dev/null || [[ ! -e "/run/netns/$NAME" ]] ||
      die "could not delete netns $NAME"
  fi
  rm -rf "${DPDK_RUNTIME_BASE:?}/$NAME"
  rm -f "$DIR/db.sock"
}

cmd_env() {
  local v
  for v in OVS_RUNDIR OVS_DBDIR OVS_LOGDIR OVS_SYSCONFDIR; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
  printf 'export VHP_DB=%q\n' "$DB"
  printf 'export VHP_NETNS=%q\n' "$NAME"
  printf 'export VHP_DPDK_PREFIX=%q\n' "$NAME"
  load_pmd
  printf 'export VHP_PMD=%q\n' "$PMD"
  printf 'export VHP_PMD_CPUS=%q\n' "${PMD_CPUS// /,}"
  printf 'export VHP_HOUSEKEEPING_CPUS=%q\n' "$HOUSEKEEPING"
}

cmd_status() {
  local rc=0 pid
  pid=$(read_pid "$OVSDB_PIDFILE")
  if pid_alive "$pid"; then echo "ovsdb-server: running (pid $pid)"; else echo "ovsdb-server: stopped"; rc=3; fi
  pid=$(read_pid "$VSWITCHD_PIDFILE")
  if pid_alive "$pid"; then echo "ovs-vswitchd: running (pid $pid, netns $NAME)"; else echo "ovs-vswitchd: stopped"; rc=3; fi
  echo "db: $DB"
  load_pmd
  echo "pmd: $PMD (cpus ${PMD_CPUS// /,}${HOUSEKEEPING:+; other threads on cpus $HOUSEKEEPING})"
  exit $rc
}

cmd_restart_vswitchd() {
  need_root
  local dpdk=1
  [[ -f "$MODE_FILE" ]] && dpdk=$(<"$MODE_FILE")
  pid_alive "$(read_pid "$OVSDB_PIDFILE")" || die "ovsdb-server is not running in $DIR"
  load_pmd
  stop_vswitchd
  STARTING=restart
  start_vswitchd "$dpdk"
  STARTING=0
}

cmd_kill_db() {
  local pid
  pid=$(read_pid "$OVSDB_PIDFILE")
  pid_alive "$pid" || die "ovsdb-server is not running in $DIR"
  kill -KILL "$pid"
  wait_dead "$pid" 2 || die "ovsdb-server ($pid) survived SIGKILL"
}

cmd_start_db() {
  need_root
  [[ -f "$DIR/conf.db" ]] || die "no $DIR/conf.db (use start)"
  load_pmd
  start_db
}

# Stops the sandbox once the owner process is gone, so a test runner that is killed (SIGKILL,
# OOM) does not leave daemons, a netns and DPDK memory behind.
start_watchdog() {
  local owner=$1
  pid_alive "$owner" || die "--owner $owner is not running"
  setsid bash "$SCRIPT" _watch "$DIR" --owner "$owner" </dev/null >>"$DIR/watchdog.log" 2>&1 &
  echo $! >"$WATCHDOG_PIDFILE"
}

cmd_watch() {
  local owner=$1
  trap - EXIT ERR
  while pid_alive "$owner"; do sleep 1; done
  echo "ovs-sandbox: owner $owner is gone, stopping $DIR" >&2
  cmd_stop
}

on_exit() {
  local rc=$?
  if [[ $rc -ne 0 && "${STARTING:-0}" != 0 ]]; then
    echo "ovs-sandbox: start failed in $DIR" >&2
    print_log_tails
    if [[ "$STARTING" == 1 ]]; then
      STARTING=0
      set +e
      cmd_stop
    fi
  fi
  exit $rc
}

# ---- main ---------------------------------------------------------------------------------------

main() {
  local args=() dpdk=1 owner="" pmd=sleep
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h | --help) usage; exit 0 ;;
      --no-dpdk) dpdk=0 ;;
      --dpdk) dpdk=1 ;;
      --pmd)
        [[ $# -ge 2 && ("$2" == busy || "$2" == sleep) ]] || die "--pmd needs busy or sleep"
        pmd=$2
        shift
        ;;
      --pmd=*)
        pmd=${1#--pmd=}
        [[ "$pmd" == busy || "$pmd" == sleep ]] || die "--pmd needs busy or sleep"
        ;;
      --owner)
        [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--owner needs a PID"
        owner=$2
        shift
        ;;
      --owner=*)
        owner=${1#--owner=}
        [[ "$owner" =~ ^[0-9]+$ ]] || die "--owner needs a PID"
        ;;
      -*) die "unknown option $1 (see --help)" ;;
      *) args+=("$1") ;;
    esac
    shift
  done
  [[ ${#args[@]} -ge 1 ]] || { usage >&2; exit 2; }
  [[ ${#args[@]} -le 2 ]] || die "too many arguments (see --help)"
  CMD=${args[0]}
  case "$CMD" in
    start | stop | env | status | restart-vswitchd | kill-db | start-db | _watch) ;;
    *) die "unknown command '$CMD' (see --help)" ;;
  esac
  [[ "$dpdk" == 1 || "$pmd" == sleep ]] || die "--pmd busy needs DPDK (drop --no-dpdk)"
  setup_env "${args[1]:-}"
  set -E
  trap 'echo "ovs-sandbox: failed (rc=$?): $BASH_COMMAND" >&2' ERR
  trap on_exit EXIT
  case "$CMD" in
    start) cmd_start "$dpdk" "$owner" "$pmd" ;;
    stop) cmd_stop ;;
    env) cmd_env ;;
    status) cmd_status ;;
    restart-vswitchd) cmd_restart_vswitchd ;;
    kill-db) cmd_kill_db ;;
    start-db) cmd_start_db ;;
    _watch) cmd_watch "$owner" ;;
  esac
}

main "$@"

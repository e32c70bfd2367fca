#!/usr/bin/env bash
# verify.sh runs inside the system boot.sh booted, as ember-verify.service,
# ordered after emberd.service. It checks the running service the way an
# operator would, writes one line per check to /mnt/ember-test-out/results
# ("ok NAME" or "FAIL NAME: why"), saves the journal, and powers the
# throwaway system off. TestServiceUnderSystemd reads the results.
set -u
OUT=/mnt/ember-test-out
R=$OUT/results
: >"$R"
pass() { echo "ok $1" >>"$R"; }
fail() { printf 'FAIL %s: %s\n' "$1" "$(echo "$2" | tr '\n' ' ' | cut -c1-600)" >>"$R"; }
finish() {
	journalctl -b --no-pager -o short-monotonic >"$OUT/journal.txt" 2>&1
	echo "done" >>"$R"
	systemctl --no-block start poweroff.target
}
trap finish EXIT
show() { systemctl show emberd -p "$1" --value; }
export EMBER_SOCKET=/run/ember/ember.sock
as_tech() { runuser -u tech -- "$@"; }

# READY: a Type=notify unit is active only once READY=1 arrived.
state="$(show ActiveState)/$(show SubState)"
if [ "$state" = active/running ]; then pass ready; else fail ready "emberd is $state ($(show Result)); no READY=1?"; exit 0; fi
status=$(show StatusText)
case "$status" in serving*) pass status-text ;; *) fail status-text "StatusText=\"$status\"" ;; esac
[ "$(show WatchdogUSec)" = 3s ] && pass watchdog-configured || fail watchdog-configured "WatchdogUSec=$(show WatchdogUSec)"
pid=$(show MainPID)

# The sandbox, as the kernel sees the process.
st=/proc/$pid/status
uid=$(id -u ember)
grep -Eq "^Uid:\s+$uid\s" "$st" && pass runs-as-ember || fail runs-as-ember "$(grep ^Uid: "$st")"
grep -Eq '^NoNewPrivs:\s+1$' "$st" && pass no-new-privs || fail no-new-privs "$(grep ^NoNewPrivs: "$st")"
grep -Eq '^Seccomp:\s+2$' "$st" && pass seccomp-filter || fail seccomp-filter "$(grep ^Seccomp: "$st")"
grep -Eq '^CapEff:\s+0+$' "$st" && grep -Eq '^CapBnd:\s+0+$' "$st" && pass no-capabilities ||
	fail no-capabilities "$(grep -E '^Cap(Eff|Bnd):' "$st")"
cp "$st" "$OUT/emberd-status.txt"
# The file system: read-only but for its own directories, no homes.
ro=$(nsenter -t "$pid" -m -- sh -c 'touch /usr/local/x 2>&1; touch /etc/ember/x 2>&1; ls /home 2>&1 | wc -l; ls /dev' 2>&1)
case "$ro" in *"Read-only file system"*"Read-only file system"*) pass protect-system ;; *) fail protect-system "$ro" ;; esac
# PrivateDevices=: the service's /dev is its own, without the console the
# booted system has.
nsenter -t "$pid" -m -- test -e /dev/console && fail private-devices "/dev/console visible" || pass private-devices
# NoExecPaths=: every place the sandbox can write is mounted noexec, so a
# file put there cannot be run (the control: /usr/bin/true can).
ne=$(nsenter -t "$pid" -m -- sh -c 'for d in /var/lib/ember /run/ember /tmp /var/tmp; do
	case ",$(findmnt -no OPTIONS -T $d)," in *,noexec,*) ;; *) echo "$d is not noexec"; esac
done
cp /usr/bin/true /var/lib/ember/.exec-probe && (/var/lib/ember/.exec-probe) 2>/dev/null && echo "ran a file from /var/lib/ember"
rm -f /var/lib/ember/.exec-probe
/usr/bin/true || echo "cannot run /usr/bin/true"' 2>&1)
[ -z "$ne" ] && pass noexec-writable || fail noexec-writable "$ne"
# Resource limits: as set, and with room to spare at run time.
lim=""
[ "$(show TasksMax)" = 1024 ] || lim="$lim TasksMax=$(show TasksMax);"
threads=$(awk '/^Threads:/ {print $2}' "$st")
[ "${threads:-9999}" -lt 256 ] || lim="$lim $threads threads;"
# LimitNOFILE: as set, and Go raised its soft limit to the hard one. (A
# container whose own hard limit is lower caps it: that is not the unit's.)
[ "$(show LimitNOFILE)" = 65536 ] || lim="$lim LimitNOFILE=$(show LimitNOFILE);"
nofile=$(awk '/^Max open files/ {print $4, $5}' "/proc/$pid/limits")
set -- $nofile
[ "${1:-0}" = "${2:-1}" ] && [ "$2" -le 65536 ] || lim="$lim open files soft/hard $nofile;"
for p in MemoryHigh MemoryMax; do
	case "$(show $p)" in infinity | "") lim="$lim $p=$(show $p);" ;; esac
done
[ -z "$lim" ] && pass resource-limits || fail resource-limits "$lim"
echo "threads=$threads nofile=$nofile MemoryHigh=$(show MemoryHigh) MemoryMax=$(show MemoryMax) TasksMax=$(show TasksMax)" >"$OUT/limits.txt"

# The socket and directories: the ember group is the access list.
for spec in "/run/ember/ember.sock ember ember 660" "/run/ember ember ember 750" \
	"/var/lib/ember ember ember 750" "/var/lib/ember/import ember ember 2770" "/etc/ember/ember.yaml root ember 640"; do
	set -- $spec
	got=$(stat -c '%U %G %a' "$1" 2>&1)
	[ "$got" = "$2 $3 $4" ] && pass "owner:$1" || fail "owner:$1" "got $got, want $2 $3 $4"
done

# A technician generates; a user outside the group is refused.
if out=$(as_tech emberctl generate --temperature 0 --max-tokens 8 "the pump on line three" 2>&1) && [ -n "$out" ]; then
	pass technician-generates
	echo "$out" >"$OUT/generate.txt"
else
	fail technician-generates "$out"
fi
if out=$(runuser -u outsider -- emberctl status 2>&1); then
	fail outsider-refused "emberctl status succeeded: $out"
else
	case "$out" in *"permission denied"*) pass outsider-refused ;; *) fail outsider-refused "$out" ;; esac
fi
as_tech emberctl status -o json >"$OUT/status.json" 2>&1 && pass status-json || fail status-json "$(cat "$OUT/status.json")"

# Importing a model from the technicians' drop directory writes the model
# store under ProtectSystem=strict.
if out=$(as_tech cp /usr/local/share/ember-test/tiny.gguf /var/lib/ember/import/drop.gguf 2>&1 &&
	as_tech emberctl models import /var/lib/ember/import/drop.gguf --name dropped 2>&1 &&
	as_tech emberctl models load dropped 2>&1 &&
	as_tech emberctl generate -m dropped --temperature 0 --max-tokens 4 "valve" 2>&1); then
	pass import-from-drop-dir
else
	fail import-from-drop-dir "$out"
fi

# libffi closures and purego callbacks inside the same sandbox.
systemctl start ember-ffiprobe.service
journalctl -u ember-ffiprobe.service -o cat --no-pager >"$OUT/ffiprobe.txt" 2>&1
[ "$(systemctl show ember-ffiprobe -p Result --value)" = success ] && pass ffi-probe || fail ffi-probe "$(cat "$OUT/ffiprobe.txt")"

# Reload: SIGHUP rereads the pipelines; emberd stays, reporting
# RELOADING=1 and READY=1 around it.
systemd-analyze log-level debug
if out=$(systemctl reload emberd 2>&1); then
	systemd-analyze log-level info
	sleep 0.5
	j=$(journalctl --no-pager -o cat)
	if [ "$(show MainPID)" = "$pid" ] && [ "$(show ActiveState)" = active ] &&
		echo "$j" | grep -q "emberd.service: Got notification message from PID $pid (RELOADING=1" &&
		echo "$j" | grep -q "pipelines reloaded"; then
		pass reload
	else
		fail reload "MainPID $(show MainPID) (was $pid), $(show ActiveState); RELOADING=1 or 'pipelines reloaded' missing from the journal"
	fi
else
	systemd-analyze log-level info
	fail reload "$out"
fi

# The watchdog: pings keep emberd alive well past WatchdogSec...
sleep 7
if [ "$(show MainPID)" = "$pid" ] && [ "$(show NRestarts)" = 0 ] && [ "$(show ActiveState)" = active ]; then
	pass watchdog-pings
else
	fail watchdog-pings "MainPID $(show MainPID) (was $pid), NRestarts $(show NRestarts), $(show ActiveState)"
fi
# ...and a hung emberd is aborted and restarted. SIGSTOP freezes it; once
# systemd gives up on it, SIGCONT lets the Go runtime handle the SIGABRT it
# got, writing every goroutine's stack to the journal before exiting.
kill -STOP "$pid"
for _ in $(seq 1 200); do
	journalctl -u emberd --no-pager -o cat | grep -q "Watchdog timeout" && break
	sleep 0.1
done
kill -CONT "$pid"
for _ in $(seq 1 300); do
	[ "$(show NRestarts)" = 1 ] && [ "$(show ActiveState)" = active ] && break
	sleep 0.1
done
newpid=$(show MainPID)
if [ "$(show NRestarts)" = 1 ] && [ "$(show ActiveState)" = active ] && [ "$newpid" != "$pid" ]; then
	pass watchdog-restart
else
	fail watchdog-restart "NRestarts $(show NRestarts), $(show ActiveState)/$(show SubState), MainPID $newpid (was $pid)"
fi
j=$(journalctl -u emberd --no-pager -o cat)
case "$j" in *"Watchdog timeout"*) pass watchdog-timeout-logged ;; *) fail watchdog-timeout-logged "no 'Watchdog timeout' in the journal" ;; esac
case "$j" in *"SIGABRT: abort"*"goroutine "*) pass goroutine-dump ;; *) fail goroutine-dump "no goroutine dump in the journal" ;; esac
as_tech emberctl generate --temperature 0 --max-tokens 4 "after restart" >/dev/null 2>&1 && pass serves-after-restart ||
	fail serves-after-restart "generate failed"

# A clean stop: STOPPING=1, then exit within TimeoutStopSec. systemd logs
# each notification it accepts at debug level.
systemd-analyze log-level debug
systemctl stop emberd
systemd-analyze log-level info
if [ "$(show ActiveState)" = inactive ] && [ "$(show Result)" = success ]; then
	pass clean-stop
else
	fail clean-stop "$(show ActiveState) $(show Result)"
fi
journalctl --no-pager -o cat | grep -q "emberd.service: Got notification message from PID $newpid (STOPPING=1)" &&
	pass stopping-notified || fail stopping-notified "systemd logged no STOPPING=1 from PID $newpid"
[ ! -e /run/ember ] && pass runtime-dir-removed || fail runtime-dir-removed "$(ls -la /run/ember 2>&1)"

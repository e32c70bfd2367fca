#!/usr/bin/env bash
# test-arm64.sh is ember's portability check (`make test-arm64`): the
# linux/arm64 emberd, cross-built with CGO_ENABLED=0, runs under qemu-user
# with the arm64 llama.cpp libraries and must produce, token for token, the
# greedy output this machine's build produces on the same model and prompts.
# It also checks that the arm64 daemon reports arm64, that `emberd hw` and
# `emberd check-config` work under emulation, and that SIGTERM shuts it down
# cleanly.
#
# Needs (.ci/run installs them): qemu-user-static, and the arm64 runtime
# libraries through Debian multiarch:
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install qemu-user-static libc6:arm64 libstdc++6:arm64 libgomp1:arm64 libffi8:arm64
# The llama.cpp libraries come from `make llama-libs llama-libs-arm64`,
# which `make test-arm64` runs first.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
QEMU=${QEMU:-qemu-aarch64-static}
LIB_HOST=${LIB_HOST:-lib/ember/llama}
LIB_ARM64=${LIB_ARM64:-lib/ember/llama-arm64}
TOKENS=16
# The emulated cores: the Raspberry Pi 4's (baseline NEON: ggml loads its
# armv8.0 kernels) and the Pi 5's (dot product and fp16: armv8.2 kernels,
# the feature set of the Jetson Orin's Cortex-A78AE too), so both kernel
# families real boards run are compared. qemu's default "max" core would
# pick SVE/SME kernels no ember target has.
CPUS=(${CPUS:-cortex-a72=armv8.0_1 cortex-a76=armv8.2_2})
# While qemu is here: the amd64 build on x86 gateways without AVX2, under
# qemu-x86_64 — an Atom/Celeron-class core with SSE4.2 but no AVX (ggml
# loads its sse42 kernels) and a Sandy Bridge with AVX but no AVX2.
X86_CPUS=(${X86_CPUS:-Westmere-v1=sse42 SandyBridge-v1=sandybridge})
QEMU_X86=${QEMU_X86:-qemu-x86_64-static}
PROMPTS=("the pump on line three" "Valve 7 reports high pressure because")

say() { printf 'test-arm64: %s\n' "$*"; }
die() { printf 'test-arm64: FAIL: %s\n' "$*" >&2; exit 1; }

case "$(uname -m)" in
x86_64) ;;
*) die "run this on an x86_64 machine: it compares an arm64 build under qemu against the native amd64 one" ;;
esac
missing=()
{ command -v "$QEMU" && command -v "$QEMU_X86"; } >/dev/null || missing+=(qemu-user-static)
for f in /lib/ld-linux-aarch64.so.1:libc6:arm64 /usr/lib/aarch64-linux-gnu/libstdc++.so.6:libstdc++6:arm64 \
	/usr/lib/aarch64-linux-gnu/libgomp.so.1:libgomp1:arm64 /usr/lib/aarch64-linux-gnu/libffi.so.8:libffi8:arm64; do
	[ -e "${f%%:*}" ] || missing+=("${f#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	die "missing ${missing[*]}; Debian: dpkg --add-architecture arm64 && apt-get update && apt-get install ${missing[*]}"
fi
for d in "$LIB_HOST" "$LIB_ARM64"; do
	[ -e "$d/libllama.so" ] || die "no llama.cpp libraries in $d: run \`make llama-libs llama-libs-arm64\`"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ember-arm64.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
started=$SECONDS

say "building emberd for linux/arm64 and emberd, emberctl for this machine"
t_build=$SECONDS
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $GO build -trimpath -o "$work/arm64/" ./cmd/emberd
CGO_ENABLED=0 $GO build -trimpath -o "$work/host/" ./cmd/emberd ./cmd/emberctl
file_arch=$(od -An -j18 -N2 -tu2 "$work/arm64/emberd" | tr -d ' ')
[ "$file_arch" = 183 ] || die "$work/arm64/emberd is not an aarch64 ELF (e_machine $file_arch)"
t_build=$((SECONDS - t_build))
"$work/host/emberctl" models synth --out "$work/tiny.gguf" >/dev/null
ctl() { "$work/host/emberctl" "$@"; }

# start NAME LIBDIR CMD... starts a daemon with its own config, state and
# socket and waits until it answers.
start() {
	local name=$1 libdir=$2
	shift 2
	mkdir -p "$work/$name"
	cat >"$work/$name/ember.yaml" <<EOF
version: 1
device_id: $name
state_dir: $work/$name/state
shutdown_timeout: 5s
log: {level: debug}
llama: {lib_dir: $PWD/$libdir, verbose: true}
grpc: {socket: $work/$name/ember.sock}
mqtt: {embedded: {listen: ""}}
metrics: {listen: ""}
engine: {threads: 1, queue_size: 4}
models:
  - {name: tiny, path: $work/tiny.gguf, default: true}
EOF
	"$@" check-config --config "$work/$name/ember.yaml" >"$work/$name/check-config.txt" 2>&1 ||
		die "$name: emberd check-config failed: $(cat "$work/$name/check-config.txt")"
	"$@" --config "$work/$name/ember.yaml" 2>"$work/$name/emberd.log" &
	pids+=($!)
	eval "${name}_pid=$!"
	for _ in $(seq 1 600); do
		if EMBER_SOCKET="$work/$name/ember.sock" ctl status >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$!" 2>/dev/null || die "$name: emberd exited at start:
$(tail -20 "$work/$name/emberd.log")"
		sleep 0.1
	done
	die "$name: emberd did not answer within 60s:
$(tail -20 "$work/$name/emberd.log")"
}

# stop NAME PID sends SIGTERM and requires a clean exit.
stop() {
	local name=$1 pid=$2
	kill -TERM "$pid"
	local rc=0
	wait "$pid" || rc=$?
	[ "$rc" = 0 ] || die "$name: emberd exited with status $rc after SIGTERM:
$(tail -20 "$work/$name/emberd.log")"
	grep -q "emberd stopping" "$work/$name/emberd.log" || die "$name: no clean shutdown in its log"
}

# run NAME writes the greedy generations and the tokenizations of every
# prompt to $work/NAME/out.txt.
run() {
	local name=$1
	export EMBER_SOCKET="$work/$name/ember.sock"
	: >"$work/$name/out.txt"
	local t0=$EPOCHREALTIME
	for p in "${PROMPTS[@]}"; do
		{
			printf '## generate %s\n' "$p"
			ctl generate --temperature 0 --max-tokens "$TOKENS" --ignore-eos "$p"
			printf '\n## tokenize %s\n' "$p"
			ctl tokenize "$p"
		} >>"$work/$name/out.txt" 2>>"$work/$name/ctl.err" || die "$name: emberctl failed: $(cat "$work/$name/ctl.err")"
	done
	eval "${name}_secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
	unset EMBER_SOCKET
}

say "running the host (amd64) emberd"
start amd64 "$LIB_HOST" "$work/host/emberd"
run amd64
stop amd64 "$amd64_pid"

summary=()
for spec in "${CPUS[@]}"; do
	cpu=${spec%%=*} want=${spec#*=}
	name=arm64
	say "running the arm64 emberd under $QEMU -cpu $cpu"
	qemu=("$QEMU" -cpu "$cpu" -L / "$work/arm64/emberd")
	"${qemu[@]}" version >"$work/version.txt" 2>&1 || die "arm64 emberd does not run under qemu: $(cat "$work/version.txt")"
	rm -rf "$work/arm64/state" "$work/arm64/out.txt" "$work/arm64/emberd.log"
	start arm64 "$LIB_ARM64" "${qemu[@]}"
	"${qemu[@]}" hw -o json --config "$work/arm64/ember.yaml" >"$work/hw.json" 2>"$work/hw.err" ||
		die "arm64 emberd hw failed under qemu: $(cat "$work/hw.err")"
	grep -q '"platform"' "$work/hw.json" || die "arm64 emberd hw printed no profile: $(head -c 300 "$work/hw.json")"
	arch=$(EMBER_SOCKET="$work/arm64/ember.sock" ctl status -o json | tr -d ' \n' | grep -o '"arch":"[a-z0-9_]*"' | head -1)
	[ "$arch" = '"arch":"arm64"' ] || die "the emulated daemon reports $arch, not arm64"
	run arm64
	stop arm64 "$arm64_pid"
	variant=$(grep -o 'libggml-cpu-[a-z0-9._]*\.so' "$work/arm64/emberd.log" | head -1 || true)
	[ "$variant" = "libggml-cpu-$want.so" ] || die "on $cpu ggml loaded ${variant:-no CPU variant}, want libggml-cpu-$want.so"
	if ! diff -u "$work/amd64/out.txt" "$work/arm64/out.txt" >"$work/diff.txt"; then
		cat "$work/diff.txt" >&2
		die "on $cpu ($variant) the arm64 build's greedy output differs from the amd64 build's"
	fi
	summary+=("$cpu/$want ${arm64_secs}s")
done

for spec in "${X86_CPUS[@]}"; do
	cpu=${spec%%=*} want=${spec#*=}
	say "running the amd64 emberd under $QEMU_X86 -cpu $cpu"
	rm -rf "$work/x86"
	start x86 "$LIB_HOST" "$QEMU_X86" -cpu "$cpu" "$work/host/emberd"
	run x86
	stop x86 "$x86_pid"
	variant=$(grep -o 'libggml-cpu-[a-z0-9._]*\.so' "$work/x86/emberd.log" | head -1 || true)
	[ "$variant" = "libggml-cpu-$want.so" ] || die "on $cpu ggml loaded ${variant:-no CPU variant}, want libggml-cpu-$want.so"
	if ! diff -u "$work/amd64/out.txt" "$work/x86/out.txt" >"$work/diff.txt"; then
		cat "$work/diff.txt" >&2
		die "on $cpu ($variant) the greedy output differs from the native run's"
	fi
	summary+=("$cpu/$want ${x86_secs}s")
done

say "ok: ${#PROMPTS[@]} prompts x $TOKENS greedy tokens and their tokenizations match the native amd64 run (${amd64_secs}s) on ${summary[*]}; total $((SECONDS - started))s, of which building ${t_build}s"
sed -n '2p' "$work/amd64/out.txt" | sed 's/^/test-arm64:   /'

#!/usr/bin/env bash
# boot.sh boots systemd as PID 1 in fresh namespaces, over a throwaway
# overlay of this machine's root file system, the way a container manager
# (systemd-nspawn) would: TestServiceUnderSystemd uses it to run the
# installed emberd.service under a real service manager.
#
#   boot.sh UPPER WORK MERGED OUT [CGROUP]
#
# UPPER holds what is laid over / (the `make install` tree, test units and
# config); WORK and MERGED are empty directories on UPPER's file system; OUT
# is bound into the booted system at /mnt/ember-test-out for results and
# collects systemd's console output in OUT/console.log. CGROUP, a new empty
# cgroup v2 directory, becomes the root of the booted system's cgroup tree,
# so its systemd manages only its own processes.
#
# Nothing leaks out: mounts are private to the new mount namespace (and /proc
# /sys and /proc/sys are read-only inside, so no sysctl, binfmt or udev unit
# can touch the host), processes live in their own PID namespace, and the
# network namespace has only a loopback device.
set -euo pipefail

if [ "${1:-}" != --inside ]; then
	[ $# -ge 4 ] || { echo "usage: boot.sh UPPER WORK MERGED OUT [CGROUP]" >&2; exit 2; }
	if [ -n "${5:-}" ]; then
		echo $$ >"$5/cgroup.procs"
	fi
	exec unshare --mount --pid --fork --cgroup --uts --ipc --net --propagation private -- "$0" --inside "$@"
fi
shift
upper=$1 work=$2 M=$3 out=$4

mount -t overlay overlay -o "lowerdir=/,upperdir=$upper,workdir=$work" "$M"
mount -t proc proc "$M/proc"
mount --bind "$M/proc/sys" "$M/proc/sys"
mount -o remount,bind,ro "$M/proc/sys"
mount -t sysfs -o ro sysfs "$M/sys"
mount -t cgroup2 cgroup2 "$M/sys/fs/cgroup"

# A private /dev holding only the pseudo devices, as a container gets.
mount -t tmpfs -o mode=755,nosuid tmpfs "$M/dev"
for n in null zero full random urandom tty; do
	touch "$M/dev/$n"
	mount --bind "/dev/$n" "$M/dev/$n"
done
mkdir "$M/dev/pts" "$M/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$M/dev/pts"
ln -s pts/ptmx "$M/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$M/dev/shm"
: >"$out/console.log"
touch "$M/dev/console"
mount --bind "$out/console.log" "$M/dev/console"

mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$M/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$M/tmp"
mkdir -p "$M/mnt/ember-test-out"
mount --bind "$out" "$M/mnt/ember-test-out"

cd "$M"
mkdir -p oldroot
pivot_root . oldroot
umount -l /oldroot
rmdir /oldroot
hostname ember-test

# What the installer does after `make install` (its closing message).
systemd-sysusers
systemd-tmpfiles --create /usr/local/lib/tmpfiles.d/ember.conf
# A technician in the ember group, and a user who is not.
useradd --no-create-home --groups ember tech
useradd --no-create-home outsider

exec env container=ember-test /lib/systemd/systemd --system --unit=ember-test.target \
	--log-target=journal-or-kmsg --show-status=no

#!/usr/bin/env bash
# install.sh installs emberd as a systemd service. `make install` runs it
# with every path in the environment (see the Makefile for the defaults):
#
#   DESTDIR PREFIX BINDIR EMBER_LIBDIR SYSTEMDUNITDIR SYSUSERSDIR TMPFILESDIR
#   SYSCONFDIR DOCDIR, BINSRC (where `make install` built emberd and
#   emberctl) and LIBSRC (the llama.cpp libraries `make llama-libs`
#   installed in the checkout)
#
# DESTDIR is prepended to every path and never written into a file, so a
# staged tree (packaging, tests) is byte for byte what a real install gets.
# The config is written only when absent, and llama.cpp libraries that
# `make install` did not put there (a CUDA build installed with yzma) are
# left alone: an upgrade must not silently swap a GPU build for the CPU one.
set -euo pipefail
cd "$(dirname "$0")/.."

for v in PREFIX BINDIR EMBER_LIBDIR SYSTEMDUNITDIR SYSUSERSDIR TMPFILESDIR SYSCONFDIR DOCDIR BINSRC LIBSRC; do
	if [ -z "${!v:-}" ]; then
		echo "install: $v is not set (run \`make install\`)" >&2
		exit 2
	fi
done
D=${DESTDIR:-}
for f in "$BINSRC/emberd" "$BINSRC/emberctl" "$LIBSRC/libllama.so"; do
	[ -e "$f" ] || { echo "install: $f is missing (run \`make install\`, which builds it)" >&2; exit 1; }
done

say() { printf 'install: %s\n' "$*"; }

install -d -m 0755 "$D$BINDIR" "$D$SYSTEMDUNITDIR" "$D$SYSUSERSDIR" "$D$TMPFILESDIR" \
	"$D$SYSCONFDIR/ember" "$D$DOCDIR/firmware-notes" "$(dirname "$D$EMBER_LIBDIR")"
install -m 0755 "$BINSRC/emberd" "$BINSRC/emberctl" "$D$BINDIR/"
say "emberd, emberctl -> $D$BINDIR"

# The llama.cpp libraries. The checkout's set carries a .installed stamp
# naming its npm package; a directory holding libraries without one came
# from somewhere else.
dst="$D$EMBER_LIBDIR"
if [ -e "$dst/libllama.so" ] && [ ! -f "$dst/.installed" ]; then
	say "keeping the llama.cpp libraries in $dst: make install did not put them there (a CUDA or Vulkan build?); remove that directory to install the CPU set"
else
	stage="$dst.new.$$"
	rm -rf "$stage"
	mkdir -m 0755 "$stage"
	cp -P -R "$LIBSRC/." "$stage/"
	chmod -R u=rwX,go=rX "$stage"
	rm -rf "$dst.old"
	[ -d "$dst" ] && mv "$dst" "$dst.old"
	mv "$stage" "$dst"
	rm -rf "$dst.old"
	say "llama.cpp libraries ($(sed 's/ .*//' "$dst/.installed")) -> $dst"
fi

# The unit names the binary and the config by absolute path.
sed -e "s#/usr/local/bin/emberd#$BINDIR/emberd#g" -e "s#/etc/ember/#$SYSCONFDIR/ember/#g" \
	systemd/emberd.service >"$D$SYSTEMDUNITDIR/emberd.service.tmp"
chmod 0644 "$D$SYSTEMDUNITDIR/emberd.service.tmp"
mv "$D$SYSTEMDUNITDIR/emberd.service.tmp" "$D$SYSTEMDUNITDIR/emberd.service"
install -m 0644 systemd/ember.sysusers "$D$SYSUSERSDIR/ember.conf"
sed -e "s#/etc/ember/#$SYSCONFDIR/ember/#g" systemd/ember.tmpfiles >"$D$TMPFILESDIR/ember.conf"
chmod 0644 "$D$TMPFILESDIR/ember.conf"
say "emberd.service -> $D$SYSTEMDUNITDIR, ember.conf -> $D$SYSUSERSDIR and $D$TMPFILESDIR"

# The config may hold broker passwords: 0640 root:ember, readable by emberd
# and by no other user. The ember group may not exist yet (systemd-sysusers
# comes after make install); the tmpfiles.d entry sets the group then. In a
# staged tree (DESTDIR) the target's group id is unknown: the entry sets it
# at the target's first boot.
cfg="$D$SYSCONFDIR/ember/ember.yaml"
if [ -e "$cfg" ]; then
	say "keeping the existing $cfg (the shipped default is $DOCDIR/ember.yaml)"
	if [ -n "$(find "$cfg" -perm /o=rwx)" ]; then
		say "WARNING: $cfg is readable by every user and may hold broker passwords: chmod 0640 $SYSCONFDIR/ember/ember.yaml && chgrp ember $SYSCONFDIR/ember/ember.yaml (systemd-tmpfiles --create does it)"
	fi
else
	sed -e "s#/usr/local/lib/ember/llama#$EMBER_LIBDIR#g" systemd/ember.yaml >"$cfg.tmp"
	chmod 0640 "$cfg.tmp"
	group="group ember once systemd-tmpfiles --create has run"
	if [ -z "$D" ] && [ "$(id -u)" = 0 ] && getent group ember >/dev/null; then
		chown root:ember "$cfg.tmp"
		group="root:ember"
	fi
	mv "$cfg.tmp" "$cfg"
	say "default config -> $cfg (0640, $group)"
fi

sed -e "s#/usr/local/lib/ember/llama#$EMBER_LIBDIR#g" systemd/ember.yaml >"$D$DOCDIR/ember.yaml"
install -m 0644 README.md docs/config.md systemd/jetson-gpu.conf "$D$DOCDIR/"
install -m 0644 systemd/README.md "$D$DOCDIR/systemd.md"
install -m 0644 firmware-notes/*.md "$D$DOCDIR/firmware-notes/"
chmod 0644 "$D$DOCDIR/ember.yaml"
say "documentation -> $D$DOCDIR"

if [ -z "$D" ]; then
	if ! ldconfig -p 2>/dev/null | grep -q 'libffi\.so\.8 '; then
		say "WARNING: libffi.so.8 is missing and emberd needs it: apt-get install libffi8"
	fi
	cat <<MSG

Next, as root:
  systemd-sysusers $SYSUSERSDIR/ember.conf
  systemd-tmpfiles --create $TMPFILESDIR/ember.conf   # also: $SYSCONFDIR/ember/ember.yaml 0640 root:ember
  systemctl daemon-reload
  systemctl enable --now emberd
  usermod -aG ember TECHNICIAN      # who may use /run/ember/ember.sock
On a Jetson with a CUDA build, first: $DOCDIR/jetson-gpu.conf
MSG
fi

#!/usr/bin/env bash
# Builds the binaries of one tools module into a cache folder keyed by the
# module's pins, so a rebuild happens only when a pin (or Go) changes.
#
#   tools/build.sh MODULE_DIR PACKAGE[=NAME]...
#
# Binaries land in .cache/tools/<module>-<key>/ and are linked from .cache/bin/,
# which is where the tests and the demo look for them. A binary is named after
# the last element of its package path; "=NAME" overrides that, for packages
# whose path does not name the tool (etcd's go.etcd.io/etcd/server/v3, which
# `go build` would call "server").
#
# A module whose pinned source does not build as published (Alertmanager's
# module leaves out the web UI files it embeds) has a MODULE_DIR/prepare.sh:
# called as `prepare.sh WORKDIR`, it leaves in WORKDIR a copy of the module
# that builds, and the binaries are built there. The script is part of the
# cache key.
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 MODULE_DIR PACKAGE[=NAME]..." >&2
	exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
module_dir=$1
shift
name=$(basename "$module_dir")
prepare="$root/$module_dir/prepare.sh"
key=$( (cat "$root/$module_dir/go.mod" "$root/$module_dir/go.sum"; [ ! -f "$prepare" ] || cat "$prepare"; go env GOVERSION) | sha256sum | cut -c1-12)
out="$root/.cache/tools/$name-$key"
bin="$root/.cache/bin"
mkdir -p "$bin"

# exe_name PACKAGE[=NAME] prints the file name of the binary.
exe_name() {
	case "$1" in
	*=*) echo "${1#*=}" ;;
	*) basename "$1" ;;
	esac
}

# Two builds of the same module at once (say `make test` in two terminals)
# would waste minutes and race on the output folder: the second one waits,
# then finds the first one's result in the cache.
mkdir -p "$root/.cache/tools"
exec 9>"$root/.cache/tools/$name.lock"
if ! flock -n 9; then
	echo ">> $name: waiting for another build of it to finish"
	flock 9
fi

# cached reports whether $out holds a finished build with every binary asked for.
cached() {
	[ -f "$out/.complete" ] || return 1
	local spec
	for spec in "$@"; do
		[ -x "$out/$(exe_name "$spec")" ] || return 1
	done
}

if cached "$@"; then
	echo ">> $name: cached in ${out#"$root"/}"
else
	echo ">> $name: building ${*%%=*} (pins changed or first build; this can take minutes)"
	tmp=$(mktemp -d "$out.tmp.XXXXXX")
	work=$(mktemp -d "$out.work.XXXXXX")
	trap 'rm -rf "$tmp" "$work"' EXIT
	build_dir="$root/$module_dir"
	if [ -f "$prepare" ]; then
		echo ">> $name: ${prepare#"$root"/} $work"
		bash "$prepare" "$work"
		build_dir=$work
	fi
	for spec in "$@"; do
		# One `go build -o FILE` per package names each binary exactly; the
		# shared build cache makes the separate invocations cheap.
		(cd "$build_dir" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' \
			-o "$tmp/$(exe_name "$spec")" "${spec%%=*}")
	done
	touch "$tmp/.complete"
	rm -rf "$out"
	mv "$tmp" "$out"
fi

for spec in "$@"; do
	exe=$(exe_name "$spec")
	if [ ! -x "$out/$exe" ]; then
		echo "$name: $out/$exe missing after build" >&2
		exit 1
	fi
	ln -sfn "$out/$exe" "$bin/$exe"
done

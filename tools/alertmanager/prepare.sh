#!/usr/bin/env bash
# Called by tools/build.sh as `prepare.sh WORKDIR`: leaves in WORKDIR a copy
# of this tools module that builds.
#
# Alertmanager's published module embeds ui/app/dist (//go:embed in
# ui/web.go), which its release process generates and the module zip leaves
# out, so `go build` of the pinned module fails with "pattern app/dist: no
# matching files found". The tests and the demo use Alertmanager's API, not
# its web UI: the copy gets a one-page placeholder UI and this module's
# go.mod points at that copy. Everything else is the pinned, checksummed
# source from the module cache.
set -euo pipefail

work=${1:?usage: prepare.sh WORKDIR}
here=$(cd "$(dirname "$0")" && pwd)

cp "$here/go.mod" "$here/go.sum" "$work/"
cd "$work"
go mod download github.com/prometheus/alertmanager
src=$(go list -m -f '{{.Dir}}' github.com/prometheus/alertmanager)
cp -R "$src" alertmanager
# The module cache is read-only.
chmod -R u+w alertmanager
for ui in elm mantine; do
	mkdir -p "alertmanager/ui/app/dist/$ui"
	printf '%s\n' '<!doctype html><title>Alertmanager</title>' \
		'<p>This Alertmanager is built for tests without its web UI: use /api/v2.</p>' \
		>"alertmanager/ui/app/dist/$ui/index.html"
done
go mod edit -replace github.com/prometheus/alertmanager=./alertmanager

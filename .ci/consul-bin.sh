#!/usr/bin/env bash
# Prints the path of a consul binary of the given version on stdout (progress goes to stderr),
# building it first when the cache does not hold it.
#   1.8.7   Debian bullseye's package (/usr/bin/consul; .ci/run installs it)
#   1.16.x  built from source with the host's Go: github.com/hashicorp/consul at that tag from the Go
#           module proxy (MPL-2.0 up to v1.16.3; later releases are under the BSL), its go.mod's
#           `replace` block dropped so that the nested modules (api, sdk, proto-public,
#           envoyextensions, troubleshoot) come from the proxy at the versions go.mod requires,
#           CGO_ENABLED=0 as the official release binaries. Version and commit are stamped like
#           upstream's build (version.GitCommit, version.BuildDate from the module proxy's record).
# Cache: $CI_CONSUL_CACHE (default /var/tmp/ci-images/consul-bin)/<version>/consul, rebuilt only when
# this script changes or the file is missing. Go module and build caches are the host's defaults
# (GOMODCACHE, GOCACHE): set them to empty directories to measure a cold build.
#
# Usage: .ci/consul-bin.sh 1.16.3      -> /var/tmp/ci-images/consul-bin/1.16.3/consul
#        CONSUL_BIN=$(.ci/consul-bin.sh 1.16.3) npm run test:integration
set -euo pipefail
VERSION=${1:?usage: $0 VERSION (1.8.7 or 1.16.x)}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${CI_CONSUL_CACHE:-/var/tmp/ci-images/consul-bin}
GO=$(command -v go || echo /usr/local/go/bin/go)
say() { echo "[consul-bin +${SECONDS}s] $*" >&2; }
die() { echo "[consul-bin] ERROR: $*" >&2; exit 1; }
first_line() { local v; v=$("$1" version 2>/dev/null) || return 0; echo "${v%%$'\n'*}"; }

case "$VERSION" in
  1.8.7)
    bin=$(command -v consul || true)
    [ -n "$bin" ] && [ "$(first_line "$bin")" = "Consul v1.8.7" ] \
      || die "no consul 1.8.7 on PATH: apt-get install -t bullseye consul (after bash .ci/apt-sources.sh)"
    echo "$bin"; exit 0 ;;
  1.16.[0-3]) ;;
  *) die "unsupported version '$VERSION': 1.8.7 (Debian) or 1.16.0-1.16.3 (the last MPL-2.0 releases)" ;;
esac

out=$CACHE/$VERSION
bin=$out/consul
stamp=$(sha256sum < "${BASH_SOURCE[0]}" | cut -c1-16)
if [ -x "$bin" ] && [ "$(cat "$out/recipe" 2>/dev/null)" = "$stamp" ] \
   && [ "$(first_line "$bin")" = "Consul v$VERSION" ]; then
  echo "$bin"; exit 0
fi
[ -x "$GO" ] || die "go not found on the host"

mod=github.com/hashicorp/consul
export GOTOOLCHAIN=local GOWORK=off GOFLAGS='-mod=mod -buildvcs=false' CGO_ENABLED=0
say "go mod download $mod@v$VERSION"
info=$("$GO" mod download -json "$mod@v$VERSION") || die "go mod download $mod@v$VERSION failed"
dir=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$info")
commit=$(sed -n 's/^\t\t"Hash": "\(.*\)",*$/\1/p' <<<"$info")
# the .info file is one line of JSON: {"Version":"v1.16.3","Time":"2023-...Z",...}
date=$(grep -o '"Time":"[^"]*"' "$(sed -n 's/^\t"Info": "\(.*\)",$/\1/p' <<<"$info")" | cut -d'"' -f4 || true)
[ -d "$dir" ] || die "no module directory in: $info"
head -n 3 "$dir/LICENSE" | grep -q 'Mozilla Public License' || die "$mod@v$VERSION is not MPL-2.0"

src=$CACHE/src-$VERSION
rm -rf "$src"; mkdir -p "$CACHE"
cp -R "$dir" "$src"; chmod -R u+w "$src"
# The replace block points at the nested modules' directories, which a module zip does not build
# from (go.sum lacks their own requirements); the proxy serves them at the required versions.
(cd "$src" && for p in api envoyextensions proto-public sdk troubleshoot; do
   "$GO" mod edit -dropreplace="$mod/$p"; done) || die "go mod edit failed"
grep -q '=> \./' "$src/go.mod" && die "go.mod still has a local replace: $(grep '=> \./' "$src/go.mod")"
say "go build $mod@v$VERSION (CGO_ENABLED=0, commit ${commit:-?})"
mkdir -p "$out"
(cd "$src" && "$GO" build -trimpath -o "$out/consul.new" \
   -ldflags "-s -w -X $mod/version.GitCommit=${commit:0:8} -X $mod/version.BuildDate=${date:-1970-01-01T00:00:01Z}" .) >&2 \
  || die "go build of $mod@v$VERSION failed"
rm -rf "$src"
v=$(first_line "$out/consul.new")
[ "$v" = "Consul v$VERSION" ] || die "the built binary says '$v', expected 'Consul v$VERSION'"
mv "$out/consul.new" "$bin"
echo "$stamp" > "$out/recipe"
say "built $bin ($v, $(du -m "$bin" | cut -f1) MB)"
echo "$bin"

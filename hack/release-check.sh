#!/usr/bin/env bash
# Checks the release packaging without publishing anything and without docker:
#   1. goreleaser check, then a snapshot release of the version krew.yaml names
#      (goreleaser release --snapshot --clean --skip=docker,publish);
#   2. krew.yaml must equal the manifest goreleaser generated, apart from the sha256 values
#      (the real ones exist only once the release archives do), and its shortDescription must fit
#      krew's 50 characters;
#   3. a copy of krew.yaml with the local archives' sha256 passes krew's manifest validation and
#      installs on every platform it lists with `kubectl krew install --manifest --archive`, each in
#      a sandbox KREW_ROOT, LICENSE and kubectl_complete-workqueue included;
#   4. on this machine's platform, through the plugin krew installed: `kubectl workqueue version`
#      prints that version, and `kubectl __complete workqueue ...` completes with the archive's
#      kubectl_complete-workqueue and with the one `kubectl workqueue completion-shim` writes into
#      krew's bin; the agent archive's binary prints the version too.
#
# Usage: hack/release-check.sh [--host-only | --tools-only]
#   --host-only   build and install only this machine's archives (plugin and agent) instead of every
#                 platform's: the same checks on one platform in a fifth of the time. The test command
#                 uses it; a release should be checked without it (`make release-check`).
#   --tools-only  install goreleaser and krew when missing, and stop.
# Environment:
#   RELEASE_TOOLS_DIR  where goreleaser and krew are installed when missing
#                      (default: ~/.cache/kubectl-workqueue/release-tools)
# Leaves dist/ with the snapshot's archives. Needs go, kubectl and git; never contacts a cluster.
set -euo pipefail

readonly GORELEASER_MODULE=github.com/goreleaser/goreleaser/v2
readonly GORELEASER_VERSION=v2.15.1
readonly KREW_MODULE=sigs.k8s.io/krew
readonly KREW_VERSION=v0.4.3
readonly PLUGIN_NAME=workqueue
# krew-index refuses a longer shortDescription.
readonly MAX_SHORT_DESCRIPTION=50

mode=all
case ${1:-} in
"") ;;
--host-only) mode=host ;;
--tools-only) mode=tools ;;
*)
	printf 'release-check: unknown argument %s; usage: hack/release-check.sh [--host-only | --tools-only]\n' "$1" >&2
	exit 2
	;;
esac

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

tools_dir=${RELEASE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-workqueue/release-tools}
work_dir=$(mktemp -d "${TMPDIR:-/tmp}/release-check.XXXXXX")
trap 'rm -rf "$work_dir"' EXIT

log() { printf '==> %s\n' "$*" >&2; }
fail() {
	printf 'release-check: %s\n' "$*" >&2
	exit 1
}

# module_version BINARY prints the version of the main module a Go binary was built from.
module_version() {
	go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3 }'
}

# ensure_tool NAME PACKAGE VERSION installs PACKAGE@VERSION as tools_dir/NAME unless it is there.
# Builds are niced: they are heavy and often share the machine with other work.
ensure_tool() {
	local name=$1 package=$2 version=$3
	if [[ $(module_version "$tools_dir/$name") == "$version" ]]; then
		return
	fi
	log "installing $package@$version into $tools_dir"
	GOBIN="$tools_dir" CGO_ENABLED=0 nice -n 19 go install "$package@$version"
	# go install names a binary after the last path element that is not a major version (/v2).
	local command=${package##*/}
	if [[ $command =~ ^v[0-9]+$ ]]; then
		command=${package%/*}
		command=${command##*/}
	fi
	if [[ $command != "$name" ]]; then
		mv "$tools_dir/$command" "$tools_dir/$name"
	fi
}

install_tools() {
	mkdir -p "$tools_dir"
	ensure_tool goreleaser "$GORELEASER_MODULE" "$GORELEASER_VERSION"
	# kubectl finds plugins by file name, so krew must be called kubectl-krew on PATH.
	ensure_tool kubectl-krew "$KREW_MODULE/cmd/krew" "$KREW_VERSION"
	ensure_tool validate-krew-manifest "$KREW_MODULE/cmd/validate-krew-manifest" "$KREW_VERSION"
	export PATH="$tools_dir:$PATH"
}

# manifest_field FILE KEY prints the first "KEY: value" of FILE, for the flat keys of krew.yaml.
manifest_field() {
	sed -n "s/^[[:space:]]*$2:[[:space:]]*//p" "$1" | head -n 1
}

# with_local_sha256 MANIFEST CHECKSUMS rewrites every sha256 of MANIFEST to the checksum that
# CHECKSUMS (goreleaser's checksums.txt) lists for the archive named at the end of the uri above it.
with_local_sha256() {
	awk -v checksums="$2" '
		BEGIN {
			while ((getline line < checksums) > 0) {
				split(line, f, /[[:space:]]+/)
				sum[f[2]] = f[1]
			}
		}
		$1 == "uri:" { archive = $2; sub(/.*\//, "", archive) }
		$1 == "sha256:" {
			if (!(archive in sum)) { print "no local archive " archive > "/dev/stderr"; exit 1 }
			sub(/sha256:.*/, "sha256: " sum[archive])
		}
		{ print }
	' "$1"
}

# only_platform OS ARCH filters a krew manifest down to the platform entry of OS/ARCH.
only_platform() {
	awk -v os="$1" -v arch="$2" '
		function flush() {
			if (item != "" && item ~ ("\n *os: " os "\n") && item ~ ("\n *arch: " arch "\n")) printf "%s", item
			item = ""
		}
		/^  platforms:$/ { print; inside = 1; next }
		inside && /^    - / { flush(); item = $0 "\n"; next }
		inside && /^      / { item = item $0 "\n"; next }
		inside { flush(); inside = 0 }
		{ print }
		END { flush() }
	'
}

# host_config writes a goreleaser config that builds only this machine's platform, for --host-only.
host_config() {
	local config=$1
	sed -e "s/^    goos: \[linux, darwin, windows\]$/    goos: [$host_os]/" \
		-e "s/^    goarch: \[amd64, arm64\]$/    goarch: [$host_arch]/" .goreleaser.yaml >"$config"
	# Fails rather than silently building every platform when .goreleaser.yaml's lists change.
	if ! grep -q "^    goos: \[$host_os\]$" "$config" || [[ $(grep -c "^    goarch: \[$host_arch\]$" "$config") != 2 ]]; then
		fail "--host-only: .goreleaser.yaml's goos/goarch lists are not the ones this script narrows; update host_config"
	fi
}

for command in go git kubectl tar; do
	command -v "$command" >/dev/null || fail "$command is not on PATH"
done
install_tools
log "goreleaser $GORELEASER_VERSION, krew $KREW_VERSION"
[[ $mode != tools ]] || exit 0

host_os=$(go env GOHOSTOS)
host_arch=$(go env GOHOSTARCH)

[[ -f krew.yaml ]] || fail "krew.yaml is missing"
version=$(manifest_field krew.yaml version)
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "krew.yaml: spec.version '$version' is not vX.Y.Z"
[[ $(manifest_field krew.yaml name) == "$PLUGIN_NAME" ]] || fail "krew.yaml: metadata.name must be $PLUGIN_NAME"

short_description=$(manifest_field krew.yaml shortDescription)
((${#short_description} <= MAX_SHORT_DESCRIPTION)) ||
	fail "krew.yaml: shortDescription has ${#short_description} characters, krew allows $MAX_SHORT_DESCRIPTION"

log "goreleaser check"
goreleaser check

config=.goreleaser.yaml
krew_manifest=krew.yaml
if [[ $mode == host ]]; then
	config=$work_dir/goreleaser-host.yaml
	host_config "$config"
	krew_manifest=$work_dir/krew-host.yaml
	only_platform "$host_os" "$host_arch" <krew.yaml >"$krew_manifest"
	log "snapshot release of $version for $host_os/$host_arch only (no docker, nothing published)"
else
	log "snapshot release of $version for every platform (no docker, nothing published)"
fi
RELEASE_CHECK_VERSION=${version#v} nice -n 19 goreleaser release --config "$config" --snapshot --clean --skip=docker,publish

generated=dist/krew/$PLUGIN_NAME.yaml
[[ -f $generated ]] || fail "goreleaser wrote no $generated"

log "krew.yaml against goreleaser's $generated (sha256 aside)"
# Comment lines aside too: goreleaser heads its file with "generated, do not edit", krew.yaml with
# where its sha256 values come from.
mask_sha256() { sed -e '/^#/d' -e 's/sha256: .*/sha256: <archive sha256>/' "$1"; }
if ! diff -u --label krew.yaml --label "$generated" <(mask_sha256 "$krew_manifest") <(mask_sha256 "$generated") >"$work_dir/krew.diff"; then
	cat "$work_dir/krew.diff" >&2
	fail "krew.yaml has drifted from what .goreleaser.yaml generates; update one of them (diff above)"
fi

# krew-index wants the file named after the plugin, so the manifest is checked under that name.
manifest=$work_dir/$PLUGIN_NAME.yaml
with_local_sha256 <(sed '/^#/d' "$krew_manifest") dist/checksums.txt >"$manifest"
cmp -s "$manifest" <(sed '/^#/d' "$generated") || fail "krew.yaml with the local sha256 differs from $generated"

log "krew manifest validation (structure, name, platform selectors)"
validate-krew-manifest -manifest "$manifest" -skip-install

platforms=$(awk '$1 == "uri:" { uri = $2 } $1 == "os:" { os = $2 } $1 == "arch:" { print os, $2, uri }' "$manifest")
[[ -n $platforms ]] || fail "no platforms in $manifest"
host_root=
while read -r os arch uri; do
	archive=dist/${uri##*/}
	[[ -f $archive ]] || fail "$os/$arch: $archive is missing"
	krew_root=$work_dir/krew-$os-$arch
	log "kubectl krew install for $os/$arch from $archive"
	if ! KREW_ROOT=$krew_root KREW_OS=$os KREW_ARCH=$arch \
		kubectl krew install --manifest="$manifest" --archive="$archive" </dev/null >"$work_dir/krew.log" 2>&1; then
		cat "$work_dir/krew.log" >&2
		fail "$os/$arch: kubectl krew install failed (output above)"
	fi
	installed=$(find "$krew_root/store/$PLUGIN_NAME/$version" -type f | sed 's|.*/||' | sort | tr '\n' ' ')
	[[ " $installed" == *" LICENSE "* ]] || fail "$os/$arch: no LICENSE installed (found: $installed)"
	[[ " $installed" == *" kubectl_complete-workqueue "* ]] ||
		fail "$os/$arch: no kubectl_complete-workqueue installed (found: $installed)"
	[[ -e $krew_root/bin/kubectl-$PLUGIN_NAME || -e $krew_root/bin/kubectl-$PLUGIN_NAME.exe ]] ||
		fail "$os/$arch: krew linked no kubectl-$PLUGIN_NAME"
	if [[ $os == "$host_os" && $arch == "$host_arch" ]]; then
		host_root=$krew_root
	fi
done <<<"$platforms"

[[ -n $host_root ]] || fail "krew.yaml has no platform for this machine ($host_os/$host_arch)"
want="kubectl-workqueue $version $host_os/$host_arch"
log "kubectl workqueue version through the plugin krew installed"
plugin_path=$(PATH="$host_root/bin:$PATH" command -v kubectl-$PLUGIN_NAME)
[[ $plugin_path == "$host_root/bin/kubectl-$PLUGIN_NAME" ]] || fail "kubectl-$PLUGIN_NAME resolves to $plugin_path, not krew's"
got=$(PATH="$host_root/bin:$PATH" kubectl workqueue version)
[[ $got == "$want" ]] || fail "kubectl workqueue version printed '$got', want '$want'"
log "  $got"

# completes_subcommands DIR... asks kubectl to complete `kubectl workqueue <TAB>` with DIRs first on
# PATH, and fails unless the plugin's commands come back. kubectl runs kubectl_complete-workqueue.
completes_subcommands() {
	local path_dirs
	path_dirs=$(
		IFS=:
		echo "$*"
	)
	local words
	words=$(PATH="$path_dirs:$PATH" KUBECONFIG=$work_dir/no-kubeconfig kubectl __complete workqueue '' 2>"$work_dir/complete.err") || {
		cat "$work_dir/complete.err" >&2
		fail "kubectl __complete workqueue '' failed (output above)"
	}
	for want in fill run status; do
		grep -q "^$want"$'\t' <<<"$words" || fail "kubectl __complete workqueue '' did not offer $want; it printed: $words"
	done
}
store_dir=$(dirname "$(readlink -f "$host_root/bin/kubectl-$PLUGIN_NAME")")
log "completion through the archive's kubectl_complete-workqueue ($store_dir)"
completes_subcommands "$store_dir" "$host_root/bin"
log "completion through the shim that completion-shim writes into krew's bin"
PATH="$host_root/bin:$PATH" kubectl workqueue completion-shim >&2
[[ -x $host_root/bin/kubectl_complete-$PLUGIN_NAME ]] || fail "completion-shim wrote no $host_root/bin/kubectl_complete-$PLUGIN_NAME"
completes_subcommands "$host_root/bin"

if [[ $host_os == linux ]]; then
	agent_archive=dist/workqueue-agent_${version}_linux_${host_arch}.tar.gz
	log "agent archive $agent_archive"
	[[ -f $agent_archive ]] || fail "$agent_archive is missing"
	contents=$(tar -tzf "$agent_archive" | sort | tr '\n' ' ')
	[[ $contents == "LICENSE workqueue-agent " ]] || fail "$agent_archive holds '$contents', want LICENSE and workqueue-agent"
	tar -xzf "$agent_archive" -C "$work_dir" workqueue-agent
	got=$("$work_dir/workqueue-agent" version)
	[[ $got == "$version" ]] || fail "workqueue-agent version printed '$got', want '$version'"
	log "  workqueue-agent $got"
fi

log "OK: release packaging of $version checks out (docker image not built: needs docker buildx)"

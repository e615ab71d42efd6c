# shellcheck shell=bash
# Sourced by the scripts in hack/: the Go toolchain on PATH, the cache folder and the Debian
# mirror, so that each script finds them the same way.

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi

# Everything built once and kept between runs (cluster parts, root filesystems).
# shellcheck disable=SC2034 # used by the scripts that source this file
WORKQUEUE_CACHE_ROOT=${WORKQUEUE_CACHE_DIR:-$HOME/.cache/kubectl-workqueue}

# The Debian mirror for debootstrap: WORKQUEUE_DEBIAN_MIRROR, else the first one in the apt sources.
debian_mirror() {
	if [[ -n ${WORKQUEUE_DEBIAN_MIRROR:-} ]]; then
		echo "$WORKQUEUE_DEBIAN_MIRROR"
		return
	fi
	local uri
	uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list \
		/etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
		grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ') || true
	echo "${uri:-http://deb.debian.org/debian}"
}

# apt-get install of what is missing; apt's own lock makes concurrent callers wait, not fail.
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >/dev/null
}

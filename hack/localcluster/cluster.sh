#!/usr/bin/env bash
# A real single-node Kubernetes cluster for end-to-end tests, built from
# source and Debian packages, with no docker engine and no registry.
#
#   cluster.sh up            start (or reuse) the cluster; prints the admin kubeconfig path last
#   cluster.sh down          stop everything up started and leave the machine as found
#   cluster.sh kubeconfig    print the admin kubeconfig path if the cluster is up
#   cluster.sh kubectl-path  print the path of the kubectl built with the cluster
#   cluster.sh load-agent    build ./cmd/workqueue-agent into localhost/workqueue/agent:e2e and import it
#   cluster.sh status        say which components run
#   cluster.sh build         only build and cache the binaries and images
#
# Logs go to stderr; stdout carries only the answer (a path). Needs root and Linux.
# Environment:
#   WORKQUEUE_CACHE_DIR    cache root (default ~/.cache/kubectl-workqueue); binaries, rootfs and
#                          image tarballs live in <root>/localcluster/<version>/
#   WORKQUEUE_CLUSTER_DIR  state directory (default /var/tmp/wq-cluster); keep it short, the
#                          containerd socket path must stay under ~100 characters
#   WORKQUEUE_DEBIAN_MIRROR  Debian mirror for debootstrap (default: the first from the apt sources)
set -euo pipefail

readonly K8S_VERSION=v1.35.4
readonly COREDNS_VERSION=v1.14.7
readonly SERVICE_CIDR=10.96.0.0/16
readonly POD_CIDR=10.244.0.0/16
readonly NODE_POD_CIDR=10.244.0.0/24
readonly DNS_IP=10.96.0.10
readonly NODE_NAME=wq-node
readonly CLUSTER_DOMAIN=cluster.local
# Every TCP port a component listens on; `up` refuses to start if one is taken.
readonly PORTS=(2379 2380 6443 10248 10249 10250 10256 10257 10259)
# Pods must never pull; any image a test needs is built and imported here.
readonly IMG_PAUSE=localhost/workqueue/pause:1
readonly IMG_COREDNS=localhost/workqueue/coredns:${COREDNS_VERSION}
readonly IMG_RABBITMQ=localhost/workqueue/rabbitmq:3.10.8
readonly IMG_RABBITMQ4=localhost/workqueue/rabbitmq:4.0.5
readonly IMG_WORKER=localhost/workqueue/seed-worker:1
readonly IMG_BUSYBOX=localhost/workqueue/busybox:1
readonly IMG_AGENT=localhost/workqueue/agent:e2e
# busybox with the agent in it, as a user's image built with the agent copied in (run --agent-path).
readonly IMG_BUSYBOX_AGENT=localhost/workqueue/busybox-agent:e2e
readonly BUSYBOX_AGENT_PATH=/usr/local/bin/workqueue-agent
readonly APT_PACKAGES=(etcd-server containerd runc containernetworking-plugins iptables debootstrap
	busybox-static conntrack iproute2 amqp-tools)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The Kubernetes objects that up applies, as files; see render_manifest.
MANIFESTS=$HERE/manifests
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=hack/lib.sh
source "$REPO/hack/lib.sh"
CACHE=${WORKQUEUE_CACHE_DIR:-$HOME/.cache/kubectl-workqueue}/localcluster/$K8S_VERSION
STATE=${WORKQUEUE_CLUSTER_DIR:-/var/tmp/wq-cluster}
BIN=$CACHE/bin
IMAGES=$CACHE/images
ROOTFS=$CACHE/rootfs
RUN=$STATE/run
LOGS=$STATE/logs
PKI=$STATE/pki
KCFG=$STATE/kubeconfig
CONF=$STATE/conf
BASE=$STATE/baseline
CTRD_SOCK=$STATE/containerd/containerd.sock
ADMIN_KUBECONFIG=$KCFG/admin.conf
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

log() { printf '%s cluster.sh: %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# ---------------------------------------------------------------- processes

# Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat),
# stored with the PID so that a reused PID is never mistaken for ours.
proc_start_time() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	local -a fields
	read -r -a fields <<<"$stat"
	echo "${fields[19]}"
}

# Whether PID runs and is the very process recorded (zombies count as gone:
# this machine's PID 1 reaps slowly).
proc_is() {
	local pid=$1 start=$2 stat
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]] || return 1
	[[ $(proc_start_time "$pid") == "$start" ]]
}

start_component() {
	local name=$1
	shift
	log "starting $name"
	# fd 9 holds the harness lock; a component must not keep it.
	setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 9<&- &
	local pid=$!
	local start=""
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		start=$(proc_start_time "$pid") && break
		sleep 0.1
	done
	[[ -n $start ]] || die "$name exited at once; see $LOGS/$name.log"
	echo "$pid $start" >"$RUN/$name.pid"
}

# Component environment: containerd gets a dead proxy so that no pull can
# ever reach a registry, even by mistake.
start_containerd() {
	start_component containerd env -i PATH="$PATH" HOME=/root \
		HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
		http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy= \
		containerd --config "$CONF/containerd.toml"
}

component_running() {
	local file=$RUN/$1.pid pid start
	[[ -f $file ]] || return 1
	read -r pid start <"$file"
	proc_is "$pid" "$start"
}

# SIGTERM, then SIGKILL after a grace period (kube-apiserver sometimes hangs
# on shutdown).
stop_component() {
	local name=$1 grace=${2:-8} file=$RUN/$1.pid pid start
	[[ -f $file ]] || return 0
	read -r pid start <"$file"
	if proc_is "$pid" "$start"; then
		log "stopping $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + grace))
		while proc_is "$pid" "$start" && ((SECONDS < deadline)); do sleep 0.2; done
		if proc_is "$pid" "$start"; then
			log "$name did not stop in ${grace}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			while proc_is "$pid" "$start"; do sleep 0.2; done
		fi
	fi
	rm -f "$file"
}

wait_for() {
	local what=$1 timeout=$2
	shift 2
	local deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
		sleep 0.5
	done
}

# ---------------------------------------------------------------- prerequisites

require_root_linux() {
	[[ $(uname -s) == Linux ]] || die "the local cluster needs Linux"
	((EUID == 0)) || die "the local cluster needs root (containerd, kubelet, iptables)"
}

# Installs the Debian packages the cluster needs, without letting their
# services start (etcd and containerd would take our ports and sockets).
ensure_packages() {
	local missing=() pkg
	for pkg in "${APT_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return 0
	command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
	log "installing ${missing[*]}"
	local policy=/usr/sbin/policy-rc.d added_policy=""
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
	fi
	local rc=0
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}"; } >&2 || rc=$?
	[[ -z $added_policy ]] || rm -f "$policy"
	((rc == 0)) || die "apt-get install ${missing[*]} failed"
}

go_bin() {
	if command -v go >/dev/null; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		echo /usr/local/go/bin/go
	else
		die "the Go toolchain is needed to build the cluster components"
	fi
}


# ---------------------------------------------------------------- building (cached)

ldflags() {
	local flags="-s -w" pkg
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=35"
		flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$flags"
}

# The Kubernetes components and kubectl in one `go build` (shared packages are
# compiled once), then the harness's own small programs.
build_components() {
	local go
	go=$(go_bin)
	local k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubeadm kubectl)
	local need=0 b
	for b in "${k8s_bins[@]}"; do [[ -x $BIN/$b ]] || need=1; done
	if ((need)); then
		log "building Kubernetes $K8S_VERSION components (cold: about 12 minutes on 2 cores)"
		local tmp=$BIN/.k8s.tmp pkgs=()
		rm -rf "$tmp" && mkdir -p "$tmp"
		for b in "${k8s_bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
		(cd "$HERE" && CGO_ENABLED=0 "$go" build -trimpath -buildvcs=false -ldflags "$(ldflags)" -o "$tmp/" "${pkgs[@]}") ||
			die "building the Kubernetes components failed"
		mv "$tmp"/* "$BIN/" && rmdir "$tmp"
	fi
	if [[ ! -x $BIN/coredns ]]; then
		log "building CoreDNS $COREDNS_VERSION (cold: about 4 minutes)"
		(cd "$HERE/coredns" && CGO_ENABLED=0 "$go" build -trimpath -buildvcs=false -ldflags "-s -w" -o "$BIN/coredns.tmp" .) ||
			die "building CoreDNS failed"
		mv "$BIN/coredns.tmp" "$BIN/coredns"
	fi
	build_tools
}

# The harness's own programs are small; rebuild them when their source changes.
build_tools() {
	local go prog dir
	go=$(go_bin)
	mkdir -p "$BIN"
	for prog in pause cricleanup mkimage; do
		dir=$HERE/$prog
		if [[ ! -x $BIN/$prog ]] || [[ -n $(find "$dir" -newer "$BIN/$prog" -print -quit) ]]; then
			log "building $prog"
			(cd "$dir" && CGO_ENABLED=0 "$go" build -trimpath -buildvcs=false -ldflags "-s -w" -o "$BIN/$prog.tmp" .) ||
				die "building $prog failed"
			mv "$BIN/$prog.tmp" "$BIN/$prog"
		fi
	done
}

# debootstrap a Debian bookworm minbase rootfs with extra packages, once.
build_rootfs() {
	local name=$1 include=$2 dir=$ROOTFS/$1
	[[ -d $dir ]] && return 0
	local mirror
	mirror=$(debian_mirror)
	log "debootstrap $name rootfs from $mirror (about 3 minutes)"
	rm -rf "$dir.partial"
	if ! debootstrap --variant=minbase --include="$include" bookworm "$dir.partial" "$mirror" \
		>"$ROOTFS/$name.debootstrap.log" 2>&1; then
		umount_under "$dir.partial"
		die "debootstrap $name failed; see $ROOTFS/$name.debootstrap.log"
	fi
	umount_under "$dir.partial"
	# Images never run apt; drop what only costs import time.
	rm -rf "$dir.partial"/var/cache/apt/archives/*.deb "$dir.partial"/var/lib/apt/lists/* \
		"$dir.partial"/usr/share/doc/* "$dir.partial"/usr/share/man/* "$dir.partial"/usr/share/info/* \
		"$dir.partial"/var/log/*.log "$dir.partial"/var/cache/debconf/*-old
	mv "$dir.partial" "$dir"
}

# Writes image tarball $1 with mkimage unless it is newer than every input.
make_image() {
	local out=$1
	shift
	local inputs=() args=("$@") a
	for a in "${args[@]}"; do
		case $a in
		*:/*) inputs+=("${a%%:*}") ;;
		/*) [[ -e $a ]] && inputs+=("$a") ;;
		esac
	done
	if [[ -f $out ]]; then
		local stale=0 i
		for i in "${inputs[@]}" "$BIN/mkimage"; do [[ $i -nt $out ]] && stale=1; done
		((stale)) || return 0
	fi
	log "building image $(basename "$out" .tar)"
	"$BIN/mkimage" -out "$out" "${args[@]}" || die "building image $out failed"
}

# Writes stdin to file $1 only when it differs, so that an unchanged file keeps the image built
# from it up to date.
write_if_changed() {
	local tmp=$1.tmp
	cat >"$tmp"
	if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

image_user() { # uid:gid of a user in a rootfs
	local ids
	ids=$(awk -F: -v u="$2" '$1 == u { print $3 ":" $4 }' "$1/etc/passwd")
	[[ -n $ids ]] || die "no user $2 in $1/etc/passwd"
	echo "$ids"
}

build_images() {
	mkdir -p "$IMAGES"
	make_image "$IMAGES/pause.tar" -tag "$IMG_PAUSE" -file "$BIN/pause:/pause" -entrypoint '["/pause"]'
	make_image "$IMAGES/coredns.tar" -tag "$IMG_COREDNS" -file "$BIN/coredns:/coredns" \
		-entrypoint '["/coredns"]'
	build_busybox_rootfs
	make_image "$IMAGES/busybox.tar" -tag "$IMG_BUSYBOX" -rootfs "$ROOTFS/busybox" -cmd '["sh"]'

	local rmq=$ROOTFS/rabbitmq
	if [[ ! -f $IMAGES/rabbitmq.tar ]]; then
		# Debian's defaults would refuse guest from other pods and name the node
		# after the pod's hostname, which changes on every restart.
		printf 'loopback_users = none\nlisteners.tcp.default = 5672\n' >"$rmq/etc/rabbitmq/rabbitmq.conf"
		printf 'NODENAME=rabbit@localhost\n' >"$rmq/etc/rabbitmq/rabbitmq-env.conf"
		printf '#!/bin/sh\n# Foreground RabbitMQ, logging to stdout.\nexec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"\n' \
			>"$rmq/usr/local/bin/rabbitmq-entrypoint"
		chmod 755 "$rmq/usr/local/bin/rabbitmq-entrypoint"
	fi
	# `broker install` runs RabbitMQ as uid 999, the official image's, which Debian's rabbitmq
	# user is not here; 3.10 writes its upgrade log under /var/log/rabbitmq even when logging to
	# stdout. Touching the root rebuilds an image cached before this.
	if [[ $(stat -c %a "$rmq/var/log/rabbitmq") != 1777 ]]; then
		chmod 1777 "$rmq/var/log/rabbitmq"
		touch "$rmq"
	fi
	make_image "$IMAGES/rabbitmq.tar" -tag "$IMG_RABBITMQ" -rootfs "$rmq" \
		-entrypoint '["/usr/local/bin/rabbitmq-entrypoint"]' -user "$(image_user "$rmq" rabbitmq)" \
		-env HOME=/var/lib/rabbitmq -env RABBITMQ_LOGS=- -env RABBITMQ_SASL_LOGS=- -env LANG=C.UTF-8

	# RabbitMQ 4.0.5 from Debian trixie, the same root the integration tests' 4.0 broker runs in
	# (hack/rabbitmq.sh), configured like the 3.10.8 image above through files laid over it.
	local rmq4 conf4=$IMAGES/rabbitmq4-conf
	rmq4=$("$REPO/hack/rabbitmq.sh" rootfs4)
	mkdir -p "$conf4"
	printf 'loopback_users = none\nlisteners.tcp.default = 5672\n' | write_if_changed "$conf4/rabbitmq.conf"
	printf 'NODENAME=rabbit@localhost\n' | write_if_changed "$conf4/rabbitmq-env.conf"
	printf '#!/bin/sh\n# Foreground RabbitMQ, logging to stdout.\nexec /usr/lib/rabbitmq/bin/rabbitmq-server "$@"\n' |
		write_if_changed "$conf4/rabbitmq-entrypoint"
	# User rabbitmq is 999:999 here, as in the official image, whose uid `broker install` runs
	# the broker as; Debian's rabbitmqctl runs only as root or as that user.
	sed -E 's/^rabbitmq:x:[0-9]+:[0-9]+:/rabbitmq:x:999:999:/' "$rmq4/etc/passwd" | write_if_changed "$conf4/passwd"
	sed -E 's/^rabbitmq:x:[0-9]+:/rabbitmq:x:999:/' "$rmq4/etc/group" | write_if_changed "$conf4/group"
	make_image "$IMAGES/rabbitmq4.tar" -tag "$IMG_RABBITMQ4" -rootfs "$rmq4" \
		-file "$conf4/passwd:/etc/passwd:0644" -file "$conf4/group:/etc/group:0644" \
		-file "$conf4/rabbitmq.conf:/etc/rabbitmq/rabbitmq.conf:0644" \
		-file "$conf4/rabbitmq-env.conf:/etc/rabbitmq/rabbitmq-env.conf:0644" \
		-file "$conf4/rabbitmq-entrypoint:/usr/local/bin/rabbitmq-entrypoint:0755" \
		-entrypoint '["/usr/local/bin/rabbitmq-entrypoint"]' -user 999:999 \
		-env HOME=/var/lib/rabbitmq -env RABBITMQ_LOGS=- -env RABBITMQ_SASL_LOGS=- -env LANG=C.UTF-8

	# shellcheck disable=SC2016 # the container's shell expands $BROKER_URL and $QUEUE
	make_image "$IMAGES/seed-worker.tar" -tag "$IMG_WORKER" -rootfs "$ROOTFS/seed-worker" \
		-file "$HERE/images/worker.py:/worker.py:0755" \
		-cmd '["/bin/sh","-c","/usr/bin/amqp-consume --url=$BROKER_URL -q $QUEUE -c 1 /worker.py"]'
}

# busybox-static with its applets as symlinks, plus the few /etc files tools expect.
build_busybox_rootfs() {
	local dir=$ROOTFS/busybox
	[[ -d $dir && ! /bin/busybox -nt $dir/bin/busybox ]] && return 0
	rm -rf "$dir.partial"
	mkdir -p "$dir.partial"/{bin,etc,tmp,root}
	chmod 1777 "$dir.partial/tmp"
	cp /bin/busybox "$dir.partial/bin/busybox"
	local applet
	for applet in $(/bin/busybox --list); do
		[[ $applet == busybox ]] || ln -s busybox "$dir.partial/bin/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
		>"$dir.partial/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir.partial/etc/group"
	rm -rf "$dir" && mv "$dir.partial" "$dir"
}

# Everything slow runs at once: the Go builds and the two debootstraps.
build_all() {
	mkdir -p "$BIN" "$ROOTFS" "$IMAGES"
	local pids=() failed=0 p
	build_components &
	pids+=($!)
	build_rootfs rabbitmq rabbitmq-server &
	pids+=($!)
	build_rootfs seed-worker amqp-tools,python3 &
	pids+=($!)
	"$REPO/hack/rabbitmq.sh" rootfs4 >/dev/null &
	pids+=($!)
	for p in "${pids[@]}"; do wait "$p" || failed=1; done
	((failed == 0)) || die "building the cluster's parts failed (see above)"
	build_images
}

# ---------------------------------------------------------------- images

import_image() {
	ctr --address "$CTRD_SOCK" -n k8s.io images import "$1" >/dev/null 2>>"$LOGS/import.log" ||
		die "importing $1 into containerd failed; see $LOGS/import.log"
}

# Imports the image tarballs, or with "changed" only those rebuilt since
# the last import (a running cluster picks up an edited worker.py).
import_images() {
	local marker=$RUN/images.imported pids=() failed=0 p img
	for img in pause coredns busybox rabbitmq rabbitmq4 seed-worker; do
		[[ ${1:-} == changed && -f $marker && ! $IMAGES/$img.tar -nt $marker ]] && continue
		log "importing image $img"
		import_image "$IMAGES/$img.tar" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || failed=1; done
	((failed == 0)) || die "importing images failed"
	touch "$marker"
}

load_agent() {
	if [[ ! -d $REPO/cmd/workqueue-agent ]]; then
		log "load-agent: $REPO/cmd/workqueue-agent does not exist yet; skipping the agent image"
		return 0
	fi
	local go
	go=$(go_bin)
	mkdir -p "$IMAGES/agent"
	log "building the agent image $IMG_AGENT"
	(cd "$REPO" && CGO_ENABLED=0 "$go" build -trimpath -buildvcs=false -o "$IMAGES/agent/workqueue-agent" ./cmd/workqueue-agent) ||
		die "building ./cmd/workqueue-agent failed"
	"$BIN/mkimage" -out "$IMAGES/agent.tar" -tag "$IMG_AGENT" \
		-file "$IMAGES/agent/workqueue-agent:/workqueue-agent" -entrypoint '["/workqueue-agent"]' -user 65532:65532 ||
		die "building the agent image failed"
	build_busybox_rootfs
	"$BIN/mkimage" -out "$IMAGES/busybox-agent.tar" -tag "$IMG_BUSYBOX_AGENT" -rootfs "$ROOTFS/busybox" \
		-file "$IMAGES/agent/workqueue-agent:$BUSYBOX_AGENT_PATH" -cmd '["sh"]' ||
		die "building the busybox image with the agent failed"
	if [[ -S $CTRD_SOCK ]] && component_running containerd; then
		import_image "$IMAGES/agent.tar"
		import_image "$IMAGES/busybox-agent.tar"
		log "imported $IMG_AGENT and $IMG_BUSYBOX_AGENT"
	else
		log "containerd is not running; $IMG_AGENT and $IMG_BUSYBOX_AGENT will be imported by the next 'up'"
	fi
}

# ---------------------------------------------------------------- host network

uplink() { ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}'; }

node_ip() {
	local dev ip=""
	dev=$(uplink)
	[[ -n $dev ]] && ip=$(ip -4 -o addr show dev "$dev" scope global | awk '{split($4, a, "/"); print a[1]; exit}')
	[[ -n $ip ]] || ip=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]; exit}')
	[[ -n $ip ]] || die "no global IPv4 address for the node"
	echo "$ip"
}

# Records what this machine looked like before the first `up`, so `down`
# can put back exactly that.
record_baseline() {
	[[ -f $BASE/done ]] && return 0
	mkdir -p "$BASE"
	local path
	: >"$BASE/created-paths"
	for path in /var/lib/cni /var/lib/kubelet /var/log/pods /var/log/containers /run/containerd /run/netns \
		/etc/cni /opt/cni; do
		[[ -e $path ]] || echo "$path" >>"$BASE/created-paths"
	done
	ls /run/netns 2>/dev/null >"$BASE/netns" || true
	: >"$BASE/sysctl"
	local key
	for key in net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables \
		vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys \
		kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet net.ipv4.vs.conntrack \
		net.netfilter.nf_conntrack_max; do
		local value
		value=$(sysctl -n "$key" 2>/dev/null) && printf '%s=%s\n' "$key" "$value" >>"$BASE/sysctl"
	done
	ip link show cni0 >/dev/null 2>&1 && touch "$BASE/cni0-existed"
	local dir
	: >"$BASE/cgroups"
	for dir in /sys/fs/cgroup/*/; do
		[[ -d ${dir}kubepods ]] || echo "${dir}kubepods" >>"$BASE/cgroups"
	done
	[[ -d /sys/fs/cgroup/kubepods ]] || echo /sys/fs/cgroup/kubepods >>"$BASE/cgroups"
	for t in filter nat mangle raw; do
		{ iptables-save -t $t 2>/dev/null || true; } | awk '/^:/ {print $1}' | sed "s/^:/$t /" >>"$BASE/chains4"
		{ ip6tables-save -t $t 2>/dev/null || true; } | awk '/^:/ {print $1}' | sed "s/^:/$t /" >>"$BASE/chains6"
	done
	touch "$BASE/done"
}

# No packet from a pod may leave this machine: blackhole the cluster ranges
# and drop anything forwarded out of the uplink, before any pod starts. The
# mangle table is used because kube-proxy never touches it.
network_guard_on() {
	local cidr
	for cidr in "$SERVICE_CIDR" "$POD_CIDR"; do
		if ! ip route show type blackhole | grep -q "^blackhole $cidr"; then
			ip route add blackhole "$cidr" || die "cannot add the blackhole route for $cidr"
			echo "$cidr" >>"$BASE/routes-added"
		fi
	done
	local dev
	dev=$(uplink)
	if [[ -n $dev ]]; then
		if ! iptables -t mangle -C FORWARD -o "$dev" -j DROP 2>/dev/null; then
			iptables -t mangle -I FORWARD 1 -o "$dev" -j DROP || die "cannot add the FORWARD drop for $dev"
			echo "$dev" >>"$BASE/drop4-added"
		fi
		if ! ip6tables -t mangle -C FORWARD -o "$dev" -j DROP 2>/dev/null; then
			ip6tables -t mangle -I FORWARD 1 -o "$dev" -j DROP || die "cannot add the IPv6 FORWARD drop for $dev"
			echo "$dev" >>"$BASE/drop6-added"
		fi
		log "network guard on: blackholes for $SERVICE_CIDR $POD_CIDR, forwarded traffic out of $dev dropped"
	else
		log "network guard on: blackholes for $SERVICE_CIDR $POD_CIDR (no default route, nothing to drop)"
	fi
	# Same-bridge Service traffic (a pod talking to CoreDNS through its
	# Service IP) must pass through iptables to be un-NATed.
	if [[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
		if modprobe br_netfilter 2>/dev/null; then
			touch "$BASE/br_netfilter-loaded"
		else
			log "warning: br_netfilter is not available; Service traffic between pods may fail"
		fi
	fi
	if [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
		sysctl -qw net.bridge.bridge-nf-call-iptables=1
	fi
	sysctl -qw net.ipv4.ip_forward=1
}

network_guard_off() {
	local cidr dev
	if [[ -f $BASE/routes-added ]]; then
		while read -r cidr; do ip route del blackhole "$cidr" 2>/dev/null || true; done <"$BASE/routes-added"
		rm -f "$BASE/routes-added"
	fi
	if [[ -f $BASE/drop4-added ]]; then
		while read -r dev; do iptables -t mangle -D FORWARD -o "$dev" -j DROP 2>/dev/null || true; done <"$BASE/drop4-added"
		rm -f "$BASE/drop4-added"
	fi
	if [[ -f $BASE/drop6-added ]]; then
		while read -r dev; do ip6tables -t mangle -D FORWARD -o "$dev" -j DROP 2>/dev/null || true; done <"$BASE/drop6-added"
		rm -f "$BASE/drop6-added"
	fi
}

# Removes the KUBE-* and CNI-* chains that kubelet, kube-proxy and the CNI
# plugins created (and the jumps into them), leaving every other rule alone.
remove_cluster_chains() {
	local family=$1 save=$2 cmd=$3 baseline=$BASE/chains$1 t
	for t in filter nat mangle raw; do
		local dump
		dump=$($save -t $t 2>/dev/null) || continue
		local chains=() chain
		while read -r chain; do
			grep -qx "$t $chain" "$baseline" 2>/dev/null || chains+=("$chain")
		done < <(printf '%s\n' "$dump" | awk '/^:(KUBE-|CNI-)/ {print substr($1, 2)}')
		((${#chains[@]} == 0)) && continue
		local pattern
		pattern=$(printf '%s|' "${chains[@]}")
		pattern="-j (${pattern%|})( |\$)"
		# Delete the jumps into our chains, from any chain, one rule at a time.
		local rule
		while read -r rule; do
			eval "$cmd -t $t -D ${rule#-A }" 2>/dev/null || true
		done < <(printf '%s\n' "$dump" | grep '^-A ' | grep -E -- "$pattern" || true)
		for chain in "${chains[@]}"; do $cmd -t $t -F "$chain" 2>/dev/null || true; done
		for chain in "${chains[@]}"; do $cmd -t $t -X "$chain" 2>/dev/null || true; done
	done
	: "$family"
}

# ---------------------------------------------------------------- configuration

write_configs() {
	local ip=$1
	mkdir -p "$CONF" "$PKI" "$KCFG" "$RUN" "$LOGS" "$STATE/etcd" "$STATE/containerd" "$STATE/cni/net.d" \
		"$STATE/kubelet"
	cat >"$CONF/kubeadm.yaml" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $ip
  bindPort: 6443
nodeRegistration:
  name: $NODE_NAME
  criSocket: unix://$CTRD_SOCK
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $K8S_VERSION
clusterName: wq-e2e
controlPlaneEndpoint: 127.0.0.1:6443
certificatesDir: $PKI
networking:
  serviceSubnet: $SERVICE_CIDR
  podSubnet: $POD_CIDR
  dnsDomain: $CLUSTER_DOMAIN
apiServer:
  certSANs: [127.0.0.1, localhost, $ip]
etcd:
  external:
    endpoints: [http://127.0.0.1:2379]
EOF

	# Pod Security "baseline" everywhere: no hostNetwork, hostPID or privileged
	# pods, whose traffic would bypass the FORWARD drop.
	cat >"$CONF/admission.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: baseline
      enforce-version: latest
      warn: baseline
      warn-version: latest
    exemptions:
      usernames: []
      runtimeClasses: []
      namespaces: []
EOF

	cat >"$CONF/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CTRD_SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMG_PAUSE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE: without this, runc cannot set the pause
  # container's oom_score_adj and every pod fails to start.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$STATE/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
EOF

	cat >"$STATE/cni/net.d/10-wq.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "wq",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "${NODE_POD_CIDR%.0/24}.1"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

	echo "nameserver $DNS_IP" >"$CONF/resolv.conf"
	cat >"$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CTRD_SOCK
address: $ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
clusterDNS: [$DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $CONF/resolv.conf
failSwapOn: false
# The kubelet tunes a few kernel sysctls; cluster.sh down puts them back.
protectKernelDefaults: false
# Local images cannot be pulled again: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
serializeImagePulls: false
rotateCertificates: false
EOF

	cat >"$CONF/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection:
  kubeconfig: $KCFG/kube-proxy.conf
iptables:
  # Leave net.ipv4.conf.all.route_localnet alone.
  localhostNodePorts: false
conntrack:
  # Leave the machine's conntrack sysctls alone.
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

write_pki() {
	[[ -f $KCFG/kube-proxy.conf ]] && return 0
	log "writing PKI and kubeconfigs"
	local kubeadm=$BIN/kubeadm out
	out=$("$kubeadm" init phase certs all --config "$CONF/kubeadm.yaml" 2>&1) || die "kubeadm certs: $out"
	out=$("$kubeadm" init phase kubeconfig all --config "$CONF/kubeadm.yaml" --kubeconfig-dir "$KCFG" 2>&1) ||
		die "kubeadm kubeconfig: $out"
	"$kubeadm" kubeconfig user --config "$CONF/kubeadm.yaml" --client-name system:kube-proxy \
		>"$KCFG/kube-proxy.conf.tmp" 2>>"$LOGS/kubeadm.log" || die "kubeadm kubeconfig user for kube-proxy failed"
	mv "$KCFG/kube-proxy.conf.tmp" "$KCFG/kube-proxy.conf"
	chmod 600 "$KCFG"/*.conf
}

# ---------------------------------------------------------------- components

# Prints the manifest file manifests/FILE with each placeholder @@NAME@@ replaced by the value of
# the shell variable NAME, for each NAME given; dies if a placeholder is left.
render_manifest() { # FILE NAME...
	local file=$MANIFESTS/$1 text name
	shift
	text=$(<"$file")
	for name in "$@"; do
		# The quoted replacement is taken literally (no & or \ handling).
		text=${text//"@@$name@@"/"${!name}"}
	done
	if [[ $text =~ @@[A-Za-z0-9_]+@@ ]]; then
		die "$file: no value given for ${BASH_REMATCH[0]}"
	fi
	printf '%s\n' "$text"
}

kubectl_admin() { "$BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
kubectl_super() { "$BIN/kubectl" --kubeconfig "$KCFG/super-admin.conf" "$@"; }

# Plain HTTP over bash's /dev/tcp: curl is not among the packages we install.
etcd_healthy() {
	local reply
	reply=$(timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2379 && printf "GET /health HTTP/1.0\r\n\r\n" >&3 && cat <&3') &&
		[[ $reply == *'"health":"true"'* ]]
}
apiserver_ready() { [[ $(kubectl_super get --raw /readyz --request-timeout=2s 2>/dev/null) == ok ]]; }

start_control_plane() {
	local ip=$1
	start_component etcd etcd --name wq --data-dir "$STATE/etcd" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster wq=http://127.0.0.1:2380 --initial-cluster-state new
	wait_for etcd 30 etcd_healthy

	start_component kube-apiserver "$BIN/kube-apiserver" \
		--advertise-address="$ip" --secure-port=6443 --allow-privileged=false \
		--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
		--admission-control-config-file="$CONF/admission.yaml" \
		--client-ca-file="$PKI/ca.crt" --etcd-servers=http://127.0.0.1:2379 \
		--kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
		--kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
		--kubelet-preferred-address-types=InternalIP \
		--proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
		--requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
		--requestheader-extra-headers-prefix=X-Remote-Extra- --requestheader-group-headers=X-Remote-Group \
		--requestheader-username-headers=X-Remote-User \
		--service-account-issuer=https://kubernetes.default.svc.$CLUSTER_DOMAIN \
		--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
		--endpoint-reconciler-type=lease --profiling=false
	wait_for kube-apiserver 60 apiserver_ready

	# kubeadm >= 1.29 puts admin.conf's user in kubeadm:cluster-admins, which
	# only `kubeadm init` binds; bind it with the super-admin credentials.
	kubectl_super create clusterrolebinding kubeadm:cluster-admins --clusterrole=cluster-admin \
		--group=kubeadm:cluster-admins >/dev/null 2>&1 ||
		kubectl_super get clusterrolebinding kubeadm:cluster-admins >/dev/null ||
		die "cannot bind kubeadm:cluster-admins to cluster-admin"

	start_component kube-controller-manager "$BIN/kube-controller-manager" \
		--kubeconfig="$KCFG/controller-manager.conf" --authentication-kubeconfig="$KCFG/controller-manager.conf" \
		--authorization-kubeconfig="$KCFG/controller-manager.conf" --bind-address=127.0.0.1 \
		--client-ca-file="$PKI/ca.crt" --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
		--cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
		--root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
		--use-service-account-credentials=true --controllers='*,bootstrapsigner,tokencleaner' \
		--allocate-node-cidrs=true --cluster-cidr="$POD_CIDR" --node-cidr-mask-size=24 \
		--service-cluster-ip-range="$SERVICE_CIDR" --cluster-name=wq-e2e --leader-elect=false --profiling=false
	start_component kube-scheduler "$BIN/kube-scheduler" \
		--kubeconfig="$KCFG/scheduler.conf" --authentication-kubeconfig="$KCFG/scheduler.conf" \
		--authorization-kubeconfig="$KCFG/scheduler.conf" --bind-address=127.0.0.1 --leader-elect=false \
		--profiling=false
	# Their health shows in what follows: the node gets a pod CIDR and CoreDNS
	# gets scheduled.
}

start_node() {
	local ip=$1
	start_containerd
	wait_for containerd 30 ctr --address "$CTRD_SOCK" version
	import_images
	start_component kubelet "$BIN/kubelet" --config="$CONF/kubelet.yaml" --kubeconfig="$KCFG/kubelet.conf" \
		--root-dir="$STATE/kubelet" --cert-dir="$STATE/kubelet/pki" --hostname-override="$NODE_NAME" \
		--node-ip="$ip" -v=1
	start_component kube-proxy "$BIN/kube-proxy" --config="$CONF/kube-proxy.yaml"
	wait_for "node $NODE_NAME Ready" 90 node_ready
}

node_ready() {
	[[ $(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

# A policy on top of Pod Security: even a namespace relaxed by label cannot
# run a hostNetwork pod, whose traffic would skip the FORWARD drop.
apply_policies() {
	kubectl_admin apply -f "$MANIFESTS/no-host-network.yaml" >/dev/null
}

deploy_dns() {
	log "deploying CoreDNS"
	local manifest
	manifest=$(render_manifest coredns.yaml CLUSTER_DOMAIN IMG_COREDNS DNS_IP)
	kubectl_admin apply -f - >/dev/null <<<"$manifest"
	wait_for "CoreDNS ready" 120 kubectl_admin -n kube-system rollout status deployment/coredns --timeout=2s
}

# The issue's self-check: a pod resolves a Service name through cluster DNS.
dns_self_check() {
	local pod=wq-dns-check-$$
	kubectl_admin -n kube-system delete pod "$pod" --ignore-not-found >/dev/null 2>&1 || true
	kubectl_admin -n kube-system apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $pod
spec:
  restartPolicy: Never
  containers:
  - name: check
    image: $IMG_BUSYBOX
    imagePullPolicy: Never
    command: [sh, -c, "for i in 1 2 3 4 5 6 7 8 9 10; do nslookup kubernetes.default.svc.$CLUSTER_DOMAIN && exit 0; sleep 1; done; exit 1"]
EOF
	local deadline=$((SECONDS + 60)) phase=""
	while ((SECONDS < deadline)); do
		phase=$(kubectl_admin -n kube-system get pod "$pod" -o jsonpath='{.status.phase}' 2>/dev/null || true)
		[[ $phase == Succeeded || $phase == Failed ]] && break
		sleep 0.5
	done
	local output
	output=$(kubectl_admin -n kube-system logs "$pod" 2>&1 || true)
	kubectl_admin -n kube-system delete pod "$pod" --wait=false >/dev/null 2>&1 || true
	[[ $phase == Succeeded ]] || die "self-check failed: a pod could not resolve kubernetes.default (phase '$phase'): $output"
	log "self-check passed: a pod resolved kubernetes.default.svc.$CLUSTER_DOMAIN"
}

# ---------------------------------------------------------------- commands

readonly COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

all_running() {
	local c
	for c in "${COMPONENTS[@]}"; do component_running "$c" || return 1; done
}

any_running() {
	local c
	for c in "${COMPONENTS[@]}"; do component_running "$c" && return 0; done
	return 1
}

cluster_healthy() {
	all_running && apiserver_ready && node_ready &&
		[[ $(kubectl_admin -n kube-system get deployment coredns -o jsonpath='{.status.readyReplicas}' 2>/dev/null) == 1 ]]
}

check_ports() {
	local port held=()
	for port in "${PORTS[@]}"; do
		ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && held+=("$port")
	done
	((${#held[@]} == 0)) || die "ports ${held[*]} are already in use (another cluster, or a stale one?); refusing to start"
}

cmd_up() {
	require_root_linux
	if [[ -f $RUN/up.done ]] && cluster_healthy; then
		log "reusing the running cluster"
		build_tools
		build_images
		import_images changed
		load_agent
		echo "$ADMIN_KUBECONFIG"
		return 0
	fi
	if any_running || [[ -d $STATE ]]; then
		log "found a stopped or unhealthy cluster in $STATE; cleaning it up first"
		cmd_down
	fi
	check_ports
	ensure_packages
	local started=$SECONDS
	build_all
	log "parts ready after $((SECONDS - started))s"

	local ip
	ip=$(node_ip)
	mkdir -p "$STATE" "$RUN" "$LOGS"
	record_baseline
	network_guard_on
	write_configs "$ip"
	write_pki
	start_control_plane "$ip"
	apply_policies
	start_node "$ip"
	deploy_dns
	dns_self_check
	load_agent
	touch "$RUN/up.done"
	log "cluster up in $((SECONDS - started))s; kubectl: $BIN/kubectl"
	echo "$ADMIN_KUBECONFIG"
}

# Unmounts every mount point under a path, deepest first.
umount_under() {
	local root=$1 target
	while read -r target; do
		umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
	done < <(awk -v r="$root" '$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
}

# Container processes survive their containerd; kill any whose shim served our socket.
kill_leftover_shims() {
	local proc pid
	for proc in /proc/[0-9]*; do
		pid=${proc#/proc/}
		{ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "-address $CTRD_SOCK " || continue
		log "killing leftover containerd shim $pid and its containers"
		local child
		for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill -KILL "$child" 2>/dev/null || true; done
		kill -KILL "$pid" 2>/dev/null || true
	done
}

cmd_down() {
	require_root_linux
	if [[ ! -d $STATE ]]; then
		log "no cluster state in $STATE; nothing to do"
		return 0
	fi
	rm -f "$RUN/up.done"
	# Controllers first so nothing re-creates pods, then the kubelet, then the
	# pods themselves through the CRI (which also frees their network).
	stop_component kube-controller-manager
	stop_component kube-scheduler
	stop_component kubelet
	if component_running containerd && [[ -x $BIN/cricleanup ]]; then
		"$BIN/cricleanup" -endpoint "unix://$CTRD_SOCK" -timeout 60s || log "warning: CRI cleanup incomplete"
	fi
	stop_component containerd
	kill_leftover_shims
	stop_component kube-proxy
	stop_component kube-apiserver 5
	stop_component etcd

	if [[ -x $BIN/kube-proxy ]]; then
		"$BIN/kube-proxy" --cleanup >>"$LOGS/kube-proxy-cleanup.log" 2>&1 || true
	fi
	[[ -d $BASE ]] || mkdir -p "$BASE"
	remove_cluster_chains 4 iptables-save iptables
	remove_cluster_chains 6 ip6tables-save ip6tables

	# Network namespaces the CRI left behind (it makes them as /run/netns/cni-*).
	local ns_path ns
	for ns_path in /run/netns/cni-*; do
		[[ -e $ns_path ]] || continue
		ns=${ns_path#/run/netns/}
		grep -qx "$ns" "$BASE/netns" 2>/dev/null && continue
		umount "/run/netns/$ns" 2>/dev/null || umount -l "/run/netns/$ns" 2>/dev/null || true
		rm -f "/run/netns/$ns"
	done
	umount_under "$STATE"
	umount_under /run/containerd
	umount_under /var/lib/kubelet
	if [[ ! -f $BASE/cni0-existed ]] && ip link show cni0 >/dev/null 2>&1; then
		ip link del cni0 || true
	fi
	network_guard_off

	local line
	if [[ -f $BASE/sysctl ]]; then
		while read -r line; do sysctl -qw "$line" 2>/dev/null || true; done <"$BASE/sysctl"
	fi
	[[ -f $BASE/br_netfilter-loaded ]] && { modprobe -r br_netfilter 2>/dev/null || true; }
	local dir
	if [[ -f $BASE/cgroups ]]; then
		while read -r dir; do
			if [[ -d $dir ]]; then find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
		done <"$BASE/cgroups"
	fi
	local path
	if [[ -f $BASE/created-paths ]]; then
		while read -r path; do
			umount_under "$path"
			rm -rf "$path"
		done <"$BASE/created-paths"
	fi
	rm -rf "$STATE"
	log "cluster down; the machine is as before 'up'"
}

cmd_kubeconfig() {
	if ! [[ -f $RUN/up.done && -f $ADMIN_KUBECONFIG ]] || ! all_running; then
		die "the cluster is not up (run: $0 up)"
	fi
	echo "$ADMIN_KUBECONFIG"
}

cmd_kubectl_path() {
	[[ -x $BIN/kubectl ]] || die "kubectl is not built yet (run: $0 up)"
	echo "$BIN/kubectl"
}

cmd_status() {
	local c
	for c in "${COMPONENTS[@]}"; do
		if component_running "$c"; then log "$c: running"; else log "$c: stopped"; fi
	done
}

# One up/down/load-agent/build at a time on the machine, whichever checkout
# runs it: every checkout shares the state directory, so the lock sits beside
# it (not in it: down removes the directory).
take_lock() {
	exec 9>"$STATE.lock"
	if ! flock -n 9; then
		log "another cluster.sh up/down/load-agent is running; waiting for it"
		flock 9
	fi
}

main() {
	case ${1:-} in
	up | down | load-agent | build) take_lock ;;
	esac
	case ${1:-} in
	up) cmd_up ;;
	down) cmd_down ;;
	kubeconfig) cmd_kubeconfig ;;
	kubectl-path) cmd_kubectl_path ;;
	load-agent)
		require_root_linux
		build_tools
		load_agent
		;;
	status) cmd_status ;;
	build)
		# Only build and cache the parts (binaries, rootfs, images): CI can run
		# this in a cached step.
		require_root_linux
		ensure_packages
		build_all
		;;
	*)
		echo "usage: $0 up|down|kubeconfig|kubectl-path|load-agent|status|build" >&2
		exit 2
		;;
	esac
}

main "$@"

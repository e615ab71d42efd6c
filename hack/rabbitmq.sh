#!/usr/bin/env bash
# Starts (or reuses) the two local RabbitMQ brokers that the integration tests and benchmarks talk
# to, and amqp-tools as independent peers. Installs what is missing with apt, so a fresh machine
# needs nothing else.
#
#   3.10: Debian bookworm's rabbitmq-server on 127.0.0.1:5672 with the stock guest account.
#   4.0:  Debian trixie's rabbitmq-server (it needs trixie's libc, so it runs in a debootstrap root,
#         built once and cached) on 127.0.0.1:5674, its own epmd port 4370 and node r4@localhost,
#         so it never meets the 3.10 broker. It starts empty every time, with user workqueue (not
#         guest), so tests cannot lean on either broker's leftovers or on guest:guest, and with a
#         consumer timeout of 15 s instead of 30 minutes (`url 4` does not say so: tests that
#         need it read it from WORKQUEUE_TEST_CONSUMER_TIMEOUT, see `consumer-timeout 4`).
#
#   hack/rabbitmq.sh start [3|4]   install if needed, start if not running, wait until it accepts
#                                  (both brokers when no version is given)
#   hack/rabbitmq.sh stop [3|4]    stop it
#   hack/rabbitmq.sh url [3|4]     print the AMQP URL of that broker (default 3)
#   hack/rabbitmq.sh consumer-timeout 4   print the 4.0 broker's global consumer timeout
#   hack/rabbitmq.sh rootfs4       build the RabbitMQ 4 root filesystem if needed and print its path
#                                  (hack/localcluster makes the cluster's RabbitMQ 4 image from it)
set -euo pipefail
# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly URL3="amqp://guest:guest@127.0.0.1:5672"
readonly PORT4=5674 EPMD_PORT4=4370 DIST_PORT4=25674 NODE4=r4@localhost
readonly USER4=workqueue PASSWORD4=rabbit4-test-password
readonly URL4="amqp://$USER4:$PASSWORD4@127.0.0.1:$PORT4"
ROOTFS4=$WORKQUEUE_CACHE_ROOT/rabbitmq4/rootfs
STATE4=${WORKQUEUE_RABBITMQ4_DIR:-/var/tmp/wq-rabbitmq4}
# A short global consumer timeout, checked every second rather than every minute, so that the
# tests of long items see in seconds what a default broker does after 30 minutes.
readonly CONSUMER_TIMEOUT4_MS=15000
readonly ERL_ARGS4="-rabbit consumer_timeout $CONSUMER_TIMEOUT4_MS -rabbit channel_tick_interval 1000"

log() { printf 'rabbitmq.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# ---------------------------------------------------------------- 3.10, the host's own

install3() {
	local missing=()
	command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
	command -v amqp-consume >/dev/null || missing+=(amqp-tools)
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		apt_install "${missing[@]}"
	fi
}

running3() { rabbitmqctl -q status >/dev/null 2>&1; }

start3() {
	install3
	if ! running3; then
		log "starting rabbitmq-server 3.10"
		# Debian's init script works without systemd; fall back to a detached server.
		service rabbitmq-server start >/dev/null 2>&1 || rabbitmq-server -detached
	fi
	timeout 120 rabbitmqctl -q await_startup
}

stop3() {
	running3 || return 0
	service rabbitmq-server stop >/dev/null 2>&1 || rabbitmqctl -q stop
}

# ---------------------------------------------------------------- 4.0, in a trixie root

# The root is made once: debootstrap takes a few minutes. hack/localcluster may ask for it at
# the same time as a test run; the lock makes the second caller wait for the first.
rootfs4() {
	[[ -x $ROOTFS4/usr/lib/rabbitmq/bin/rabbitmq-server ]] && return 0
	mkdir -p "$(dirname "$ROOTFS4")"
	exec 8>"$ROOTFS4.lock"
	flock 8
	[[ -x $ROOTFS4/usr/lib/rabbitmq/bin/rabbitmq-server ]] && return 0
	command -v debootstrap >/dev/null || apt_install debootstrap
	local mirror partial=$ROOTFS4.partial
	mirror=$(debian_mirror)
	log "debootstrap Debian trixie with rabbitmq-server into $ROOTFS4 from $mirror (a few minutes, once)"
	rm -rf "$partial"
	if ! debootstrap --variant=minbase --include=rabbitmq-server trixie "$partial" "$mirror" \
		>"$ROOTFS4.debootstrap.log" 2>&1; then
		die "debootstrap of the RabbitMQ 4 root failed; see $ROOTFS4.debootstrap.log"
	fi
	# Nothing here ever runs apt; drop what only costs image import time.
	rm -rf "$partial"/var/cache/apt/archives/*.deb "$partial"/var/lib/apt/lists/* \
		"$partial"/usr/share/doc/* "$partial"/usr/share/man/* "$partial"/usr/share/info/* \
		"$partial"/var/log/*.log "$partial"/var/lib/rabbitmq/mnesia
	mv "$partial" "$ROOTFS4"
}

pid4() {
	local pid
	[[ -f $STATE4/pid ]] || return 1
	pid=$(cat "$STATE4/pid")
	kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

# Whether the broker accepts TCP connections: RabbitMQ opens its listener last, after the
# default user exists.
listening4() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT4") 2>/dev/null; }

start4() {
	rootfs4
	if pid4 >/dev/null && listening4; then
		return 0
	fi
	stop4
	log "starting rabbitmq-server 4.0 on 127.0.0.1:$PORT4"
	# A fresh home (data, Erlang cookie) every start: the first user comes from
	# RABBITMQ_DEFAULT_USER/PASS only on an empty data directory, and no test sees another run's
	# queues. It lives outside the root, which hack/localcluster packs into an image.
	rm -rf "$STATE4"
	mkdir -p "$STATE4/home"
	chown "$(awk -F: '$1 == "rabbitmq" { print $3 ":" $4 }' "$ROOTFS4/etc/passwd")" "$STATE4/home"
	local data=/var/lib/rabbitmq/mnesia
	# A private mount namespace keeps /proc and the home mounted for the broker alone, and gone
	# with it. The single quotes are meant: the inner sh expands its own positional parameters.
	# shellcheck disable=SC2016
	setsid unshare --mount --propagation private -- sh -c '
		mount -t proc proc "$1/proc" || exit 1
		mount --bind "${10}" "$1/var/lib/rabbitmq" || exit 1
		exec chroot --userspec=rabbitmq:rabbitmq "$1" env -i \
			PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/rabbitmq LANG=C.UTF-8 \
			RABBITMQ_NODENAME="$2" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$3" \
			RABBITMQ_DIST_PORT="$4" ERL_EPMD_PORT="$5" ERL_EPMD_ADDRESS=127.0.0.1 \
			RABBITMQ_DEFAULT_USER="$6" RABBITMQ_DEFAULT_PASS="$7" \
			RABBITMQ_LOGS=- RABBITMQ_MNESIA_BASE="$8" \
			RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$9" \
			/usr/lib/rabbitmq/bin/rabbitmq-server' \
		sh "$ROOTFS4" "$NODE4" "$PORT4" "$DIST_PORT4" "$EPMD_PORT4" "$USER4" "$PASSWORD4" "$data" "$ERL_ARGS4" "$STATE4/home" \
		</dev/null >"$STATE4/rabbitmq.log" 2>&1 8>&- &
	echo $! >"$STATE4/pid"
	local _
	for _ in $(seq 1 240); do
		listening4 && return 0
		pid4 >/dev/null || die "rabbitmq-server 4.0 exited; see $STATE4/rabbitmq.log"
		sleep 0.5
	done
	die "rabbitmq-server 4.0 did not listen on $PORT4 within 120 s; see $STATE4/rabbitmq.log"
}

stop4() {
	local pid
	if pid=$(pid4); then
		# SIGTERM makes RabbitMQ shut down cleanly; its child processes go with it.
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 60); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	# The node started its own epmd on EPMD_PORT4; it outlives the node.
	if [[ -x $ROOTFS4/usr/bin/epmd ]]; then
		ERL_EPMD_PORT=$EPMD_PORT4 chroot "$ROOTFS4" /usr/bin/epmd -kill >/dev/null 2>&1 || true
	fi
	rm -f "$STATE4/pid"
}

# ---------------------------------------------------------------- commands

cmd=${1:-}
version=${2:-}
case "$cmd:$version" in
start:) start3 && start4 ;;
start:3) start3 ;;
start:4) start4 ;;
stop:) stop3 && stop4 ;;
stop:3) stop3 ;;
stop:4) stop4 ;;
url: | url:3) echo "$URL3" ;;
url:4) echo "$URL4" ;;
consumer-timeout:4) echo "${CONSUMER_TIMEOUT4_MS}ms" ;;
rootfs4:) rootfs4 && echo "$ROOTFS4" ;;
*)
	echo "usage: $0 start|stop|url [3|4], or $0 rootfs4" >&2
	exit 2
	;;
esac

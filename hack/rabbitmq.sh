#!/usr/bin/env bash
# Starts (or reuses) the local RabbitMQ that the integration tests and benchmarks talk to:
# Debian's rabbitmq-server on 127.0.0.1:5672 with the stock guest account, and amqp-tools as
# independent peers. Installs both with apt when missing, so a fresh machine needs nothing else.
#
#   hack/rabbitmq.sh start   install if needed, start if not running, wait until it accepts
#   hack/rabbitmq.sh stop    stop it
#   hack/rabbitmq.sh url     print the AMQP URL the tests use
set -euo pipefail

url="amqp://guest:guest@127.0.0.1:5672"

install_if_missing() {
  local missing=()
  command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
  command -v amqp-consume >/dev/null || missing+=(amqp-tools)
  if ((${#missing[@]})); then
    echo "rabbitmq.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

running() {
  rabbitmqctl -q status >/dev/null 2>&1
}

case "${1:-}" in
  start)
    install_if_missing
    if ! running; then
      echo "rabbitmq.sh: starting rabbitmq-server" >&2
      # Debian's init script works without systemd; fall back to a detached server.
      service rabbitmq-server start >/dev/null 2>&1 || rabbitmq-server -detached
    fi
    timeout 120 rabbitmqctl -q await_startup
    ;;
  stop)
    running || exit 0
    service rabbitmq-server stop >/dev/null 2>&1 || rabbitmqctl -q stop
    ;;
  url)
    echo "$url"
    ;;
  *)
    echo "usage: $0 start|stop|url" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Debian packages the helper and its tests drive for real: logrotate (the --logrotate_path check and fallback),
# s6 (the benchmark's peer), rsyslog + gnutls and systemd-journald (real receivers), openssl (test certificates),
# GNU time (benchmark peak RSS); strace (the daemon never opens a sandbox path); prometheus and promtool (the
# daemon's metrics, scraped for real); kcat (librdkafka's mock Kafka cluster, a real Kafka protocol peer for the kafka sink); python3, make and g++ for node-gyp, which `npm ci` runs to build the shim and the two
# native addons. Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  logrotate s6 rsyslog rsyslog-gnutls systemd openssl time util-linux procps python3 make g++ strace prometheus kcat >/dev/null

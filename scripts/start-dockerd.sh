#!/usr/bin/env bash
# Start a Docker engine for the container tests when none answers (Debian's docker.io, as
# root): no bridge and no iptables rules (containers use the host network, bound to
# 127.0.0.1). Idempotent: exits 0 at once when an engine already answers. The engine is
# left running (a system daemon, like the engine of a CI machine); its PID is in
# /var/run/prodready-dockerd.pid and its log in /tmp/prodready-dockerd.log.
set -euo pipefail
sock=/var/run/docker.sock
# Two test workers may get here at once: one starts the engine, the other waits for it.
exec 9>/tmp/prodready-dockerd.lock
flock 9
answers() { [ -S "$sock" ] && docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
answers && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "start-dockerd.sh: no Docker engine answers at $sock and only root can start dockerd" >&2
  exit 1
fi
command -v dockerd >/dev/null 2>&1 || { echo "start-dockerd.sh: dockerd is not installed (apt-get install docker.io)" >&2; exit 1; }
log=/tmp/prodready-dockerd.log
nohup dockerd --bridge=none --iptables=false --ip6tables=false >"$log" 2>&1 &
echo $! >/var/run/prodready-dockerd.pid
for _ in $(seq 1 150); do
  answers && exit 0
  kill -0 "$(cat /var/run/prodready-dockerd.pid)" 2>/dev/null || break
  sleep 0.2
done
echo "start-dockerd.sh: dockerd did not answer within 30 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1

#!/bin/sh
# A tiny service for the container tests: busybox httpd on 127.0.0.1:$PORT serving
# /health and /cgi-bin/slow?SECONDS. Its behaviour is set per image by build args (and
# can be overridden by env):
#   SECRET_POLICY=require   exits 1 at start when JWT_SECRET is missing
#   SECRET_POLICY=fallback  starts anyway with a built-in dev secret (the defect)
#   SECRET_POLICY=exit0     exits 0 when JWT_SECRET is missing (a refusal the deploy misses)
#   SECRET_POLICY=crash     exits 2 at start, secret or not (a broken image)
#   SHUTDOWN=drain          on SIGTERM closes the listener, waits for in-flight requests, exits 0
#   SHUTDOWN=die            on SIGTERM exits 143 at once, cutting in-flight requests (the defect)
: "${PORT:=8080}"
# LOG_SECRET=1: the app logs its secret at start (a leak the evidence must mask).
[ "$LOG_SECRET" = 1 ] && echo "config: JWT_SECRET=$JWT_SECRET" >&2
if [ "$SECRET_POLICY" = crash ]; then
  echo "fatal: cannot open /data/app.db" >&2
  exit 2
fi
if [ -z "$JWT_SECRET" ]; then
  if [ "$SECRET_POLICY" = exit0 ]; then
    echo "JWT_SECRET is not set; nothing to do" >&2
    exit 0
  elif [ "$SECRET_POLICY" = fallback ]; then
    JWT_SECRET=fallback-secret-for-dev
    echo "JWT_SECRET is not set: using the development default" >&2
  else
    echo "fatal: JWT_SECRET is required" >&2
    exit 1
  fi
fi
mkdir -p /tmp/inflight
httpd -f -p "127.0.0.1:$PORT" -h /www &
pid=$!
drain() {
  kill -TERM "$pid"  # the listener closes: new connections are refused
  echo "SIGTERM: draining $(ls /tmp/inflight | wc -l) request(s)" >&2
  while [ -n "$(ls /tmp/inflight)" ]; do sleep 0.05; done
  echo "drained, exiting 0" >&2
  exit 0
}
die() {
  echo "SIGTERM: exiting now" >&2
  exit 143
}
if [ "$SHUTDOWN" = die ]; then trap die TERM; else trap drain TERM; fi
echo "listening on 127.0.0.1:$PORT as uid $(id -u)" >&2
wait "$pid"

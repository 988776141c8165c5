#!/usr/bin/env bash
# System packages the test suite starts as real servers (Debian/Ubuntu; run as root or
# with sudo available): nginx (TLS termination, redirects, HSTS) and the openssl tool
# (SHA-1/MD5-signed test certificates, which the cryptography library refuses to make).
# Python packages come from `pip install -e '.[test]'`.
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# node and npm: Express serving its development error page (tests/targets/frameworks/express;
# the test fixture runs `npm install` there when node_modules is missing).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
# redis-server and PostgreSQL (initdb/pg_ctl): the network.* checks against real servers
# (tests/targets/dbservers.py); dnsmasq: the DNS server of the dns.* tests (tests/targets/dnsserver.py).
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
# memcached: network.memcached_requires_auth against a real server (tests/checks/test_network.py).
command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] || need+=(memcached)
# mariadb-server (mariadbd, mariadb-install-db): network.mysql_offers_tls against real servers
# (tests/targets/mariadb.py).
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
# chromium: the HTML scorecard opened in a real headless browser (tests/report/test_html_browser.py).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# docker.io: the container checks' Docker engine (started by scripts/start-dockerd.sh);
# busybox-static: the root filesystem of the test images (tests/targets/images);
# postgresql-client: pg_restore/psql for backup.restore (its tests start a local server).
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || need+=(busybox-static)
command -v pg_restore >/dev/null 2>&1 || need+=(postgresql-client)
# wrk: the peer the latency check's p95 is compared with (tests/checks/test_perf.py).
command -v wrk >/dev/null 2>&1 || need+=(wrk)
# tmux: the progress line as a person's terminal renders it (tests/test_docs_site.py).
command -v tmux >/dev/null 2>&1 || need+=(tmux)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: ${need[*]}"

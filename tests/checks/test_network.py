"""network.*: each check fails on a real server with the defect and passes on one without.

Real servers only (tests/targets/dbservers.py): redis-server open, with requirepass, and in
protected mode without a password (reached through a relay from 127.0.0.3, because Redis
serves 127.0.0.1 itself); PostgreSQL clusters made by initdb and started by pg_ctl with
ssl off and trust, with ssl on but plain 'host' lines, and with 'hostssl' lines only.
Garbage, silent and closed ports are raw loopback sockets. Nothing is mocked.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from pytest_prodready import assertions
from pytest_prodready.checking import Result, run_check
from pytest_prodready.checks.network import FAMILY
from pytest_prodready.config import DEFAULTS, Settings
from pytest_prodready.exceptions import CheckFailure
from pytest_prodready.target import Target
from tests.targets.dbservers import (
    HBA_HOSTSSL_ONLY,
    HBA_PLAINTEXT_SCRAM,
    HBA_PLAINTEXT_TRUST,
    Postgres,
    Redis,
    Relay,
    pg_template,
    run_postgres_set,
    run_redis,
)
from tests.targets.webapp import serve
from tests.targets.wireservers import run_memcached, serve_elasticsearch, serve_mongodb
from tests.tls_servers import Served, answer_plain_http, never_answer, serve_raw

BASE_URL = "https://app.example.test"  # never contacted: these checks speak TCP only
REDIS_PASSWORD = "s3cret-redis-pass"


def target(timeout_s: float = 3.0, **network: Any) -> Target:
    values = {**DEFAULTS, "base_url": BASE_URL, "timeout_s": timeout_s, "network": network}
    return Target(Settings(values=values, secrets={}, sources={}))


def free_closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def listening() -> Iterator[int]:
    """An open loopback port (accepts and holds connections)."""
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def redis() -> Iterator[dict[str, Redis | Relay]]:
    with ExitStack() as stack:
        protected = stack.enter_context(run_redis(protected_mode=True))
        relay = Relay((protected.host, protected.port), source="127.0.0.3")
        stack.callback(relay.close)
        yield {"open": stack.enter_context(run_redis()),
               "password": stack.enter_context(run_redis(password=REDIS_PASSWORD)),
               "protected": protected, "remote_to_protected": relay}


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, Postgres]]:
    with ExitStack() as stack:
        base, user = stack.enter_context(pg_template())
        yield stack.enter_context(run_postgres_set(base, user, (
            ("trust_no_tls", HBA_PLAINTEXT_TRUST, False),
            ("tls_offered_plain_allowed", HBA_PLAINTEXT_SCRAM, True),
            ("hostssl_only", HBA_HOSTSSL_ONLY, True))))


@pytest.fixture(scope="module")
def garbage() -> Iterator[Served]:
    with serve_raw(answer_plain_http) as served:
        yield served


@pytest.fixture(scope="module")
def silent() -> Iterator[Served]:
    with serve_raw(never_answer) as served:
        yield served


def _facts(result: Result) -> list[dict[str, Any]]:
    return result.evidence()


# -- network.ports_closed -------------------------------------------------------------------------
def test_ports_closed_passes_when_every_port_refuses() -> None:
    ports = [free_closed_port() for _ in range(3)]
    result = run_check("network.ports_closed", target(host="127.0.0.1", closed_ports=ports),
                       "127.0.0.1")
    assert result.outcome == "passed", result.detail
    assert result.message == "none of 3 ports on 127.0.0.1 accepts a TCP connection (3 refused)"
    assert [f["tcp"]["state"] for f in _facts(result)] == ["refused"] * 3


def test_ports_closed_fails_on_an_open_port_naming_it(listening: int, redis: dict[str, Any]) -> None:
    closed = free_closed_port()
    redis_port = redis["open"].port
    result = run_check("network.ports_closed",
                       target(host="127.0.0.1", closed_ports=[closed, listening, redis_port]),
                       "127.0.0.1")
    assert result.outcome == "failed"
    assert result.message == (f"2 of 3 ports on 127.0.0.1 accept TCP connections: {listening}, "
                              f"{redis_port}")
    assert f"* TCP 127.0.0.1:{listening}: open" in result.detail
    assert f"* TCP 127.0.0.1:{closed}: refused" in result.detail


@pytest.fixture(scope="module")
def filtered() -> Iterator[list[int]]:
    """Ports that drop SYNs, like a firewall: listeners with a full accept queue (backlog 0,
    one connection already waiting), so a connect gets no answer at all."""
    with ExitStack() as stack:
        ports = []
        for _ in range(4):
            listener = stack.enter_context(socket.create_server(("127.0.0.1", 0), backlog=0))
            stack.enter_context(socket.create_connection(listener.getsockname()))
            ports.append(listener.getsockname()[1])
        yield ports


def test_ports_are_probed_concurrently_and_each_is_charged(filtered: list[int]) -> None:
    """Four ports that never answer cost about one (1 s) timeout, not four; a port that gives
    no answer counts as not reachable; each connection is charged to the run's budget."""
    closed = free_closed_port()
    probe = target(timeout_s=1.0, host="127.0.0.1", closed_ports=[*filtered, closed])
    started = time.monotonic()
    result = run_check("network.ports_closed", probe, "127.0.0.1")
    assert time.monotonic() - started < 3.5  # sequentially it would be at least 4 s
    assert result.outcome == "passed", result.detail
    assert result.message == ("none of 5 ports on 127.0.0.1 accepts a TCP connection (1 refused, "
                              "4 gave no answer within 1s or were unreachable)")
    assert probe.budget.spent == 5


def test_ports_closed_unresolvable_host_cannot_judge() -> None:
    result = run_check("network.ports_closed", target(host="no-such-host.invalid", closed_ports=[6379]),
                       "no-such-host.invalid")
    assert result.outcome == "error"
    assert result.message.startswith("cannot judge: no-such-host.invalid does not resolve")


def test_the_family_allowlists_its_hosts() -> None:
    probe = target(host="db-host.internal", redis=["cache.internal:6379"], postgres=["[::1]:5432"])
    assert set(FAMILY.hosts(probe.settings)) == {"db-host.internal", "cache.internal", "::1"}
    assert {"db-host.internal", "cache.internal", "::1"} <= probe.allowed_hosts


def test_default_ports_are_the_database_and_cache_ports() -> None:
    result = run_check("network.ports_closed", target(host="127.0.0.1"), "127.0.0.1")
    assert [f["tcp"]["port"] for f in _facts(result)] == [5432, 6379, 3306, 27017, 9200, 11211]


# -- network.redis_requires_auth -----------------------------------------------------------------
def _redis(endpoint: str, timeout_s: float = 3.0) -> Result:
    return run_check("network.redis_requires_auth", target(timeout_s, redis=[endpoint]), endpoint)


def test_redis_without_password_fails_on_pong(redis: dict[str, Any]) -> None:
    result = _redis(redis["open"].endpoint)
    assert result.outcome == "failed"
    assert result.message == (f"{redis['open'].endpoint} answered +PONG to an anonymous PING: anyone "
                              "who reaches it can read and write every key")
    assert "* answered '+PONG\\r\\n'" in result.detail


def test_redis_with_requirepass_passes_on_noauth(redis: dict[str, Any]) -> None:
    result = _redis(redis["password"].endpoint)
    assert result.outcome == "passed", result.detail
    assert "answered an anonymous PING with '-NOAUTH Authentication required.'" in result.message
    assert REDIS_PASSWORD not in str(result.evidence())


def test_redis_protected_mode_passes_on_denied_and_says_so(redis: dict[str, Any]) -> None:
    """A client from another address (127.0.0.3, via the relay) is refused by protected mode."""
    result = _redis(redis["remote_to_protected"].endpoint)
    assert result.outcome == "passed", result.detail
    assert "refused the anonymous connection with DENIED: protected mode is on" in result.message
    assert "-DENIED Redis is running in protected mode" in str(result.evidence())


def test_redis_protected_mode_serves_loopback_so_it_fails_from_there(redis: dict[str, Any]) -> None:
    """The same server asked from 127.0.0.1 answers PONG: protected mode is no password."""
    assert _redis(redis["protected"].endpoint).outcome == "failed"


def test_redis_garbage_silence_and_refusal_cannot_judge(garbage: Served, silent: Served) -> None:
    answer = _redis(f"127.0.0.1:{garbage.port}")
    assert answer.outcome == "error"
    assert "answered 'HTTP/1.1 400 Bad Request" in answer.message
    assert "not a Redis answer" in answer.message
    started = time.monotonic()
    quiet = _redis(f"127.0.0.1:{silent.port}", timeout_s=1.0)
    assert time.monotonic() - started < 2
    assert quiet.outcome == "error" and "no answer within the timeout" in quiet.message
    closed = _redis(f"127.0.0.1:{free_closed_port()}")
    assert closed.outcome == "error" and "connection refused" in closed.message


# -- network.postgres_requires_tls ---------------------------------------------------------------
def _pg(endpoint: str, timeout_s: float = 3.0) -> Result:
    return run_check("network.postgres_requires_tls", target(timeout_s, postgres=[endpoint]), endpoint)


def test_postgres_without_tls_accepting_trust_fails(postgres: dict[str, Postgres]) -> None:
    server = postgres["trust_no_tls"]
    result = _pg(server.endpoint)
    assert result.outcome == "failed"
    assert result.message == (f"{server.endpoint} does not offer TLS at all (SSLRequest answered 'N') "
                              "but accepted a plain-text startup and asked for no password at all "
                              "(trust): queries and data cross the network unencrypted")
    assert "* postgres " + server.endpoint + ": sent SSLRequest" in result.detail


def test_postgres_offering_tls_but_allowing_plaintext_fails(postgres: dict[str, Postgres]) -> None:
    server = postgres["tls_offered_plain_allowed"]
    result = _pg(server.endpoint)
    assert result.outcome == "failed"
    assert "offers TLS (SSLRequest answered 'S') but accepted a plain-text startup and asked for " \
           "SCRAM (SASL)" in result.message


def test_postgres_hostssl_only_passes(postgres: dict[str, Postgres]) -> None:
    server = postgres["hostssl_only"]
    result = _pg(server.endpoint)
    assert result.outcome == "passed", result.detail
    assert result.message.startswith(f"{server.endpoint} offers TLS (SSLRequest answered 'S') and "
                                      "refused a plain-text startup for user 'prodready' before "
                                      "authentication: no pg_hba.conf entry for host")
    sent = [f["wire"]["sent"] for f in _facts(result)]
    assert sent == ["SSLRequest", "StartupMessage user=prodready database=prodready, without TLS"]


def test_postgres_garbage_and_silence_cannot_judge(garbage: Served, silent: Served) -> None:
    answer = _pg(f"127.0.0.1:{garbage.port}")
    assert answer.outcome == "error"
    assert "to an SSLRequest: not PostgreSQL" in answer.message
    started = time.monotonic()
    quiet = _pg(f"127.0.0.1:{silent.port}", timeout_s=1.0)
    assert time.monotonic() - started < 2
    assert quiet.outcome == "error" and "no answer within the timeout" in quiet.message


# -- QA helpers ---------------------------------------------------------------------------------
def test_assertion_helpers(redis: dict[str, Any], postgres: dict[str, Postgres], listening: int) -> None:
    probe = target()
    assertions.assert_ports_closed(probe, "127.0.0.1", free_closed_port())
    with pytest.raises(CheckFailure, match="accept TCP connections"):
        assertions.assert_ports_closed(probe, "127.0.0.1", listening)
    assertions.assert_redis_requires_auth(probe, redis["password"].endpoint)
    with pytest.raises(CheckFailure, match=r"\+PONG"):
        assertions.assert_redis_requires_auth(probe, redis["open"].endpoint)
    assertions.assert_postgres_requires_tls(probe, postgres["hostssl_only"].endpoint)
    with pytest.raises(CheckFailure, match="accepted a plain-text startup"):
        assertions.assert_postgres_requires_tls(probe, postgres["trust_no_tls"].endpoint)


# -- network.memcached_requires_auth (a real memcached) ----------------------------------------
@pytest.fixture(scope="module")
def memcached() -> Iterator[dict[str, str]]:
    with run_memcached() as open_, run_memcached(auth=True) as auth:
        yield {"open": open_, "auth": auth}


def _wire(check_id: str, key: str, endpoint: str, timeout_s: float = 3.0) -> Result:
    return run_check(check_id, target(timeout_s, **{key: [endpoint]}), endpoint)


def test_memcached_open_fails_on_stat_lines(memcached: dict[str, str]) -> None:
    result = _wire("network.memcached_requires_auth", "memcached", memcached["open"])
    assert result.outcome == "failed"
    assert result.message.startswith(f"{memcached['open']} answered 'stats' without authentication "
                                     "(memcached 1.6")
    assert "items cached): anyone who reaches it can read, overwrite and flush every key" in result.message
    assert "* answered 'STAT pid " in result.detail


def test_memcached_with_authentication_passes(memcached: dict[str, str]) -> None:
    result = _wire("network.memcached_requires_auth", "memcached", memcached["auth"])
    assert result.outcome == "passed", result.detail
    assert result.message == (f"{memcached['auth']} answered 'stats' with 'CLIENT_ERROR "
                              "unauthenticated': authentication is required")


def test_memcached_garbage_silence_and_refusal_cannot_judge(garbage: Served, silent: Served) -> None:
    answer = _wire("network.memcached_requires_auth", "memcached", f"127.0.0.1:{garbage.port}")
    assert answer.outcome == "error" and "not a memcached answer" in answer.message
    started = time.monotonic()
    quiet = _wire("network.memcached_requires_auth", "memcached", f"127.0.0.1:{silent.port}", 1.0)
    assert time.monotonic() - started < 2
    assert quiet.outcome == "error" and "no answer within the timeout" in quiet.message
    closed = _wire("network.memcached_requires_auth", "memcached", f"127.0.0.1:{free_closed_port()}")
    assert closed.outcome == "error" and "connection refused" in closed.message


# -- network.elasticsearch_requires_auth (a reproduction of Elasticsearch 8.13's GET /) --------
def test_elasticsearch_without_security_fails_on_its_banner() -> None:
    with serve_elasticsearch(security=False) as endpoint:
        result = _wire("network.elasticsearch_requires_auth", "elasticsearch", endpoint)
    assert result.outcome == "failed"
    assert result.message == (f"{endpoint} answered GET / without credentials (plain HTTP) with "
                              "cluster 'docker-cluster' (Elasticsearch 8.13.0): its indices can be read and "
                              "written by anyone who reaches it")
    assert "You Know, for Search" in result.detail


def test_elasticsearch_with_security_passes_on_401() -> None:
    with serve_elasticsearch(security=True) as endpoint:
        result = _wire("network.elasticsearch_requires_auth", "elasticsearch", endpoint)
    assert result.outcome == "passed", result.detail
    assert result.message.startswith(f"{endpoint} answered GET / without credentials (plain HTTP) "
                                     "with 401 (Basic realm=\"security\" charset=\"UTF-8\", ApiKey)")


def test_elasticsearch_ordinary_web_server_cannot_judge(garbage: Served) -> None:
    """A 400 from something else is neither the banner nor a 401; so is a 200 of another app."""
    answer = _wire("network.elasticsearch_requires_auth", "elasticsearch", f"127.0.0.1:{garbage.port}")
    assert answer.outcome == "error" and "neither the cluster's banner nor a 401" in answer.message
    with serve() as webapp:
        endpoint = webapp.url.removeprefix("http://")
        other = _wire("network.elasticsearch_requires_auth", "elasticsearch", endpoint)
    assert other.outcome == "error" and "neither the cluster's banner nor a 401" in other.message


# -- network.mongodb_requires_auth (a reproduction of mongod 7.0's OP_MSG answers) -------------
def test_mongodb_without_access_control_fails_listing_its_databases() -> None:
    with serve_mongodb(authorization=False) as mongo:
        result = _wire("network.mongodb_requires_auth", "mongodb", mongo.endpoint)
    assert result.outcome == "failed"
    assert result.message == (f"{mongo.endpoint} listed its 4 databases (admin, config, local, shop) "
                              "to an unauthenticated client: anyone who reaches it can read and "
                              "write them")
    assert len(mongo.requests) == 1


def test_mongodb_with_access_control_passes_on_unauthorized() -> None:
    with serve_mongodb(authorization=True) as mongo:
        result = _wire("network.mongodb_requires_auth", "mongodb", mongo.endpoint)
    assert result.outcome == "passed", result.detail
    assert result.message == (f"{mongo.endpoint} refused listDatabases without authentication: code "
                              "13 Unauthorized (Command listDatabases requires authentication)")


def test_mongodb_garbage_and_silence_cannot_judge(garbage: Served, silent: Served) -> None:
    answer = _wire("network.mongodb_requires_auth", "mongodb", f"127.0.0.1:{garbage.port}")
    assert answer.outcome == "error" and "not a MongoDB 3.6+ reply" in answer.message
    started = time.monotonic()
    quiet = _wire("network.mongodb_requires_auth", "mongodb", f"127.0.0.1:{silent.port}", 1.0)
    assert time.monotonic() - started < 2
    assert quiet.outcome == "error" and "no answer within the timeout" in quiet.message


def test_the_new_endpoints_join_the_allowlist() -> None:
    probe = target(memcached=["mc.internal:11211"], elasticsearch=["es.internal:9200"],
                   mongodb=["mongo.internal:27017"])
    assert set(FAMILY.hosts(probe.settings)) == {"mc.internal", "es.internal", "mongo.internal"}


@pytest.mark.parametrize("security", [False, True])
def test_elasticsearch_tls_only_port_is_asked_again_over_tls(security: bool) -> None:
    """Elasticsearch 8's default: TLS on 9200 drops a plain-text request; the check asks again
    over TLS (a second guarded connection) and judges that answer."""
    with serve_elasticsearch(security=security, tls=True) as endpoint:
        probe = target(elasticsearch=[endpoint])
        result = run_check("network.elasticsearch_requires_auth", probe, endpoint)
    assert result.outcome == ("passed" if security else "failed"), result.detail
    assert result.message.startswith(f"{endpoint} answered GET / without credentials (HTTPS) with "
                                     + ("401" if security else "cluster 'docker-cluster'"))
    assert [f["wire"]["sent"] for f in _facts(result)] == [
        "GET / without credentials, plain HTTP", "GET / without credentials, HTTPS"]


# -- network.mysql_offers_tls (a real MariaDB: ssl off, ssl on, this host not granted) --------
@pytest.fixture(scope="module")
def mariadb() -> Iterator[dict[str, str]]:
    from tests.targets.mariadb import mariadb_binaries, run_mariadb_set

    if mariadb_binaries() is None:
        pytest.skip("mariadb-server is not installed here (scripts/install-test-deps.sh installs it)")
    with run_mariadb_set() as running:
        yield {role: db.endpoint for role, db in running.items()}


def _mysql_reply(payload: bytes) -> Any:
    def behaviour(conn: socket.socket) -> None:
        conn.sendall(payload)
        time.sleep(0.2)
        conn.close()
    return behaviour


def test_mysql_without_tls_fails_naming_the_version(mariadb: dict[str, str]) -> None:
    result = _wire("network.mysql_offers_tls", "mysql", mariadb["plain"])
    assert result.outcome == "failed", result.detail
    assert result.message.startswith(f"{mariadb['plain']} (server 10.")
    assert "MariaDB" in result.message and "5.5.5-" not in result.message
    assert result.message.endswith("answers from the network without TLS support (no CLIENT_SSL "
                                   "in its handshake): logins and queries cross the network in "
                                   "clear text")
    assert "CLIENT_SSL not set" in result.detail


def test_mysql_offering_tls_passes(mariadb: dict[str, str]) -> None:
    result = _wire("network.mysql_offers_tls", "mysql", mariadb["tls"])
    assert result.outcome == "passed", result.detail
    assert result.message.endswith("offers TLS (CLIENT_SSL); whether it requires TLS is not "
                                   "visible before a login")
    notes = [f["wire"]["notes"] for f in result.evidence() if "wire" in f]
    assert any("CLIENT_SSL set" in n for ns in notes for n in ns)


def test_mysql_host_not_allowed_passes_on_its_err_greeting(mariadb: dict[str, str]) -> None:
    result = _wire("network.mysql_offers_tls", "mysql", mariadb["refusing"])
    assert result.outcome == "passed", result.detail
    assert result.message == (f"{mariadb['refusing']} refuses this host before any login (error "
                              "1130: Host '127.0.0.1' is not allowed to connect to this MariaDB "
                              "server)")


def test_mysql_other_err_greeting_cannot_judge_and_its_sql_state_is_read() -> None:
    """An early error that is not about this host (1040, with a '#08004' SQL state marker as
    some servers send it) says nothing about TLS; replayed by a raw socket."""
    payload = bytes([0xFF]) + (1040).to_bytes(2, "little") + b"#08004Too many connections"
    packet = len(payload).to_bytes(3, "little") + b"\x00" + payload
    with serve_raw(_mysql_reply(packet)) as served:
        result = _wire("network.mysql_offers_tls", "mysql", f"127.0.0.1:{served.port}")
    assert result.outcome == "error", result.detail
    assert result.message == (f"cannot judge: 127.0.0.1:{served.port} answered error 1040 "
                              "before any handshake "
                              "(Too many connections): it does not say whether TLS is offered")


def test_mysql_garbage_silence_and_refusal_cannot_judge(silent: Served) -> None:
    with serve_raw(_mysql_reply(b"SSH-2.0-OpenSSH_9.2\r\n")) as served:
        junk = _wire("network.mysql_offers_tls", "mysql", f"127.0.0.1:{served.port}", 1.0)
    assert junk.outcome == "error"
    assert "not a MySQL/MariaDB greeting" in junk.message
    started = time.monotonic()
    quiet = _wire("network.mysql_offers_tls", "mysql", f"127.0.0.1:{silent.port}", 1.0)
    assert quiet.outcome == "error" and time.monotonic() - started < 3
    assert "no answer within the timeout" in quiet.message
    closed = _wire("network.mysql_offers_tls", "mysql", f"127.0.0.1:{free_closed_port()}")
    assert closed.outcome == "error" and "connection refused" in closed.message


def test_mysql_endpoints_join_the_allowlist_and_the_helper(mariadb: dict[str, str]) -> None:
    assert set(FAMILY.hosts(target(mysql=["db.internal:3306"]).settings)) == {"db.internal"}
    assertions.assert_mysql_offers_tls(target(), mariadb["tls"])
    with pytest.raises(CheckFailure, match="without TLS support"):
        assertions.assert_mysql_offers_tls(target(), mariadb["plain"])

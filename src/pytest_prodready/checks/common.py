"""Probes and subject lists shared by several families (one request, many judges)."""

from __future__ import annotations

from pytest_prodready.config import Settings
from pytest_prodready.target import Probe

# A path no real application serves: the soft-404 baseline, and the errors.* probe.
NOT_FOUND_PATH = "/prodready-nonexistent-3f9c1a7e"
UNKNOWN_ORIGIN = "https://prodready-unknown-origin.example"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def page_probe(settings: Settings) -> Probe:
    """The target's page: one GET feeding headers.*, cookies, and the preflight."""
    return Probe.get(str(settings.get("page", "/")))


def not_found_probe() -> Probe:
    return Probe.get(NOT_FOUND_PATH)


def anonymous_probe(endpoint: str) -> Probe:
    """An endpoint called with no credentials (not even a credential header given in
    `request_headers`: Probe.anonymous); state-changing methods get an empty JSON body.

    Redirects are not followed: a 302 to a login page is the answer we judge.
    """
    method = endpoint.partition(" ")[0]
    if method in BODY_METHODS:
        return Probe.endpoint(endpoint, {"Content-Type": "application/json"}, body=b"{}",
                              follow_redirects=False, anonymous=True)
    return Probe.endpoint(endpoint, follow_redirects=False, anonymous=True)


def protected(settings: Settings) -> list[str]:
    return list(settings.get("protected", []))


def protected_get_paths(settings: Settings) -> list[str]:
    return [e.partition(" ")[2] for e in protected(settings) if e.startswith("GET ")]


def health_paths(settings: Settings) -> list[str]:
    return list(settings.get("health", []))


def base_probes(settings: Settings) -> list[Probe]:
    """The ordinary responses of a run: the page, health, anonymous protected calls, a 404."""
    probes = [page_probe(settings), not_found_probe()]
    probes += [Probe.get(p) for p in health_paths(settings)]
    probes += [anonymous_probe(e) for e in protected(settings)]
    return probes

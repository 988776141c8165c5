"""Scorecard records as plugin.py `_record` builds them, for the report tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed

from pytest_prodready.report.scorecard import Scorecard

SCHEMA_PATH = Path(__file__).parents[2] / "src" / "pytest_prodready" / "report" / "report.schema.json"


def exchange(url: str = "https://staging.example.com/api/agents", *, status: int | None = 200,
             headers: list[list[str]] | None = None, body: str = "",
             request_headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An evidence item shaped like evidence.Exchange.to_dict()."""
    return {
        "request": {"method": "GET", "url": url, "headers": request_headers or {}},
        "response": {"status": status, "reason": "OK" if status else "", "headers": headers or [],
                     "body_excerpt": body, "elapsed_ms": 3.0, "error": "" if status else "refused",
                     "redirects": [], "note": "", "truncated": False},
    }


def tls_fact(endpoint: str = "staging.example.com:443", subject: str = "CN=staging") -> dict[str, Any]:
    """An evidence item shaped like tlsprobe's handshake to_dict()."""
    return {"tls": {"endpoint": endpoint, "server_name": "staging.example.com", "offered": "TLSv1.2+",
                    "protocol": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256", "error": None,
                    "error_kind": None, "verify_code": 0, "chain_sent": 2, "elapsed_ms": 4.0,
                    "note": None,
                    "certificate": {"subject": subject, "issuer": "CN=ca", "sans": ["DNS:staging"],
                                    "days_left": 10.0, "problems": []}}}


def rec(check_id: str, severity: str = "high", outcome: str = "passed", subject: str = "", *,
        message: str | None = None, remediation: str = "Fix it.", category: str | None = None,
        nodeid: str | None = None, waiver: dict[str, Any] | None = None,
        evidence: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": check_id,
        "nodeid": nodeid or (f"prodready::{check_id}[{subject}]" if subject else f"prodready::{check_id}"),
        "category": category or check_id.split(".", 1)[0],
        "severity": severity,
        "outcome": outcome,
        "message": message if message is not None else f"{check_id} {outcome}",
        "remediation": remediation,
        "subject": subject,
        "waiver": waiver,
        "duration_ms": 1.5,
        "evidence": evidence if evidence is not None else [],
    }


def card_of(records: list[dict[str, Any]], fail_on: str = "low", **kwargs: Any) -> Scorecard:
    return Scorecard(target="https://staging.example.com", fail_on=fail_on, records=records, **kwargs)


def validated(card: Scorecard) -> dict[str, Any]:
    """The card's JSON report as a reader loads it, validated against report.schema.json."""
    data: dict[str, Any] = json.loads(json.dumps(card.to_json(), default=str))
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(data)
    return data

"""The docs that are generated from code stay in step with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_prodready.catalogue import markdown_catalogue
from pytest_prodready.registry import all_checks

ROOT = Path(__file__).resolve().parents[1]


def test_catalogue_page_is_generated_from_the_registry() -> None:
    """docs/catalogue.md is exactly what `prodready catalogue` prints (regenerate it if not)."""
    page = (ROOT / "docs" / "catalogue.md").read_text(encoding="utf-8")
    assert page.strip() == markdown_catalogue().strip(), "run: prodready catalogue > docs/catalogue.md"


# Checks we added beyond PRODUCT.md's minimum catalogue (it invites extensions); listed
# here on purpose so that a misspelt contract id cannot slip in as an "extra".
EXTRA_CHECKS = frozenset({"tls.tls13_offered", "headers.hsts_include_subdomains",
                          "openapi.operations_require_auth", "network.memcached_requires_auth",
                          "network.elasticsearch_requires_auth", "network.mongodb_requires_auth",
                          "network.mysql_offers_tls", "dns.dnssec"})


def test_every_check_id_is_in_the_product_catalogue() -> None:
    """Built-in ids are the contract's ids (PRODUCT.md) or deliberate, listed extras."""
    product = (ROOT.parent / "shared" / "PRODUCT.md")
    if not product.exists():  # the shared folder sits beside the checkout in CI
        pytest.skip(f"the product contract {product} is not beside this checkout")
    text = product.read_text(encoding="utf-8")
    missing = [check_id for check_id in all_checks()
               if f"`{check_id}`" not in text and check_id not in EXTRA_CHECKS]
    assert not missing, f"ids not in PRODUCT.md: {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    """What a newcomer runs from the README is what CI runs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if "python -m pytest" in line)
    assert command.strip() in (ROOT / ".ci" / "run").read_text(encoding="utf-8")

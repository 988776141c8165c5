"""openapi.load_yaml: yaml.safe_load's result without its node graph (memory: docs/performance.md).

Compared with PyYAML's own safe_load on hand-written documents (anchors, aliases, merge keys,
int keys, timestamps, binary, explicit tags) and on documents hypothesis generates and
yaml.safe_dump writes, in block and flow style."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_prodready.openapi import SpecError, load_yaml, parse_document

DOCUMENTS = [
    """
openapi: 3.0.0
base: &b {x: 1, y: 2}
other:
  <<: *b
  y: 3
multi:
  <<: [{a: 1}, {a: 2, c: 3}]
  d: 4
paths:
  /a:
    get:
      responses:
        200: {description: ok}
        "404": {description: no}
when: 2024-01-01
stamp: 2001-12-14t21:59:43.10-05:00
flt: 1.5
inf: .inf
nul: ~
yes_: yes
octal: 0o17
lst: [1, two, 3.0, *b]
seq_anchor: &s [1, 2]
again: *s
bin: !!binary aGVsbG8=
str: !!str 123
folded: >
  a
  b
literal: |
  keep
  lines
""",
    "a: 1", "- 1\n- 2", "", "x: [1, {y: z}]\n", "just a scalar", "--- \nk: v\n...\n",
    "? complex key\n: value\n", "a: &x\nb: *x\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_same_result_as_safe_load(text: str) -> None:
    assert load_yaml(text) == yaml.safe_load(text)


@pytest.mark.parametrize(("text", "fragment"), [
    ("a: !!python/object:os.system x", "could not determine a constructor"),
    ("---\na: 1\n---\nb: 2", "single document"),
    ("? {a: 1}\n: x", "unhashable"),
    ("a: *nope", "undefined alias"),
    ("a: [1", "while parsing a flow sequence"),
    ("a:\n  <<: 5\n", "merge key"),
])
def test_refuses_what_safe_load_refuses(text: str, fragment: str) -> None:
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(text)
    with pytest.raises(SpecError, match=fragment):
        load_yaml(text)


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                    st.floats(allow_nan=False))
trees = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=5),
    st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), children, max_size=5)),
    max_leaves=40)


@settings(max_examples=150, deadline=None)
@given(trees, st.booleans())
def test_generated_documents(tree: Any, flow: bool) -> None:
    text = yaml.safe_dump(tree, default_flow_style=flow, allow_unicode=True)
    # Against safe_load, not the tree: PyYAML's own round trip changes a few characters (NEL).
    assert load_yaml(text) == yaml.safe_load(text)


def test_parse_document_takes_yaml_specs() -> None:
    doc = parse_document(b"openapi: 3.0.3\npaths:\n  /x:\n    get: {}\n")
    assert doc["paths"] == {"/x": {"get": {}}}

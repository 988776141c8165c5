"""Is another caller's answer "substantially like" the owner's? Body comparison for authz.

A cross-tenant read is a finding only when it hands over the owner's data, not when it
answers 200 with an error body (a common way of refusing, and the main source of false
IDOR reports). So an answer counts as the owner's when it is very similar to the owner's
own body and carries none of the usual error phrases that the owner's body does not.

JSON bodies are compared as sets of leaves (path, value), so key order and whitespace do
not matter and `{"error": "not found"}` shares nothing with a conversation; other bodies
with difflib's ratio over a bounded prefix.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["ERROR_PHRASES", "Likeness", "error_phrases", "likeness", "similarity"]

# Phrases of refusals and errors, as frameworks and APIs word them.
ERROR_PHRASES = re.compile(
    r"\b(unauthori[sz]ed|unauthenticated|not authenticated|authentication required|"
    r"login required|please log ?in|forbidden|access denied|permission denied|"
    r"not permitted|not allowed|no access|insufficient (?:permissions?|scope|privileges)|"
    r"not found|does not exist|no such|invalid (?:token|credentials|session|signature)|"
    r"token (?:expired|invalid|missing)|expired token|missing token|"
    r"invalid_token|access_denied|not_found|unauthorized_client)\b",
    re.IGNORECASE)

MAX_CHARS = 64 * 1024  # bodies are compared on their first 64 KiB
MAX_LEAVES = 5000
TEXT_CHARS = 8 * 1024  # difflib is quadratic: text is compared on its first 8 KiB
DEFAULT_THRESHOLD = 0.9


def error_phrases(text: str) -> list[str]:
    """The distinct error phrases in `text`, lower-case, in order of appearance."""
    return list(dict.fromkeys(m.group(0).lower() for m in ERROR_PHRASES.finditer(text[:MAX_CHARS])))


def _leaves(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}")
    elif isinstance(node, list):
        # Positions are dropped: the same items in another order are the same data.
        for value in node:
            yield from _leaves(value, f"{path}[]")
        if not node:
            yield f"{path}=[]"
    else:
        yield f"{path}={json.dumps(node, sort_keys=True)}"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def similarity(a: str, b: str) -> float:
    """How alike two bodies are, from 0 (nothing shared) to 1 (the same)."""
    a, b = a[:MAX_CHARS], b[:MAX_CHARS]
    if a == b:
        return 1.0
    ja, jb = _json(a), _json(b)
    if isinstance(ja, (dict, list)) and isinstance(jb, (dict, list)):
        la, lb = _multiset(ja), _multiset(jb)
        shared = sum(min(n, lb.get(k, 0)) for k, n in la.items())
        total = max(sum(la.values()), sum(lb.values()))
        return shared / total if total else 1.0
    if not a.strip() or not b.strip():
        return 0.0
    matcher = difflib.SequenceMatcher(None, a[:TEXT_CHARS], b[:TEXT_CHARS])
    bound = matcher.quick_ratio()  # an upper bound of ratio(), much cheaper
    return bound if bound < 0.5 else matcher.ratio()


def _multiset(node: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i, leaf in enumerate(_leaves(node)):
        if i >= MAX_LEAVES:
            break
        counts[leaf] = counts.get(leaf, 0) + 1
    return counts


@dataclass(frozen=True)
class Likeness:
    """The comparison of another caller's body with the owner's."""

    score: float
    phrases: tuple[str, ...]  # error phrases in the other body that the owner's lacks
    threshold: float = DEFAULT_THRESHOLD

    @property
    def same_data(self) -> bool:
        """The other caller got the owner's data: very similar, and no error phrase."""
        return self.score >= self.threshold and not self.phrases

    def describe(self) -> str:
        text = f"{self.score:.0%} like the owner's body"
        if self.phrases:
            text += f", with error phrases ({', '.join(repr(p) for p in self.phrases[:3])})"
        return text


def likeness(owner: str, other: str, threshold: float = DEFAULT_THRESHOLD) -> Likeness:
    """Compare `other` with the owner's body (see Likeness.same_data)."""
    own = set(error_phrases(owner))
    phrases = tuple(p for p in error_phrases(other) if p not in own)
    return Likeness(similarity(owner, other), phrases, threshold)

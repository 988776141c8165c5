"""Recognising the debug and error pages of real frameworks in a response body.

Two parts:

- `normalise` turns a body into the text a person would read: HTML tags stripped (``<br>``
  and block elements become newlines), entities unescaped, typographic quotes and
  non-breaking spaces folded to ASCII, and JSON strings decoded, so a stack whose newlines
  are the two characters ``\\n`` (a JSON error body, a ``<script>`` data blob) reads as lines.
  Debug pages are HTML with typographic quotes (Django's "You\u2019re seeing this error") and
  ``<br> &nbsp; &nbsp;at`` (Express): a pattern written against the plain-text trace never
  matches them raw.
- `SIGNATURES`, checked in order, most specific first: each names the framework, the page,
  and the setting that turns it off. Every signature needs wording or structure that only
  that framework's debug output has, so an ordinary 404 or 500 page that says "error" (or a
  framework's own production error page) matches none of them.

Usable on its own: ``detect(body, content_type)`` returns a `Finding` or None.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["SIGNATURES", "Clue", "Finding", "Signature", "detect", "normalise"]

# How much of the matched line a finding quotes.
QUOTE_CHARS = 160

# -- normalising --------------------------------------------------------------------------
_STYLE = re.compile(r"<style\b[^>]*>[^<]*(?:<(?!/style\s*>)[^<]*)*(?:</style\s*>)?", re.IGNORECASE)
_COMMENT_MARK = re.compile(r"<!--|-->")
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)\b[^>]*>|<![A-Za-z][^>]*>")
_BLOCK = frozenset({
    "address", "article", "aside", "blockquote", "body", "dd", "details", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "head", "header", "hr", "html", "li", "main", "nav", "noscript", "ol", "p", "pre",
    "section", "summary", "table", "tbody", "textarea", "thead", "tfoot", "title", "tr", "ul"})
_CELL = frozenset({"td", "th"})
# The escapes of a JSON (or JavaScript) string. Decoded wherever they stand, which is linear
# on any input and needs no parse of where each string starts: for reading a page, a
# Windows path's "\\n" turning into a line break costs nothing, a stack left on one line does.
_ESCAPE = re.compile(r'\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})'
                     r'|u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_FOLD = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u00a0": " ", "\u2007": " ", "\u2009": " ", "\u202f": " ", "\u200a": " ",
    "\u2002": " ", "\u2003": " ", "\u200b": None, "\ufeff": None,
    "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2212": "-", "\u2026": "...",
})
_HTML_TYPES = ("html", "xml")


def _tag(match: re.Match[str]) -> str:
    name = (match.group(2) or "").lower()
    if name == "br" or name in _BLOCK:
        return "\n"
    if name in _CELL:
        return " "
    return ""


def strip_html(body: str) -> str:
    """HTML to text: styles dropped, comments and scripts kept as text, tags removed."""
    text = _STYLE.sub("", body)
    # Comments and scripts keep their text: frameworks put the plain trace there
    # (ASP.NET after </html>, Ignition around the page, data blobs in <script>).
    text = _COMMENT_MARK.sub("\n", text)
    text = _TAG.sub(_tag, text)
    return html.unescape(text)


def _unescape(match: re.Match[str]) -> str:
    high, low, single, simple = match.groups()
    if high:
        return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00))
    if single:
        code = int(single, 16)
        return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)  # no lone surrogates
    return _SIMPLE_ESCAPES[simple]


def decode_json_strings(text: str) -> str:
    """Decode JSON string escapes in text: '"Error: x\\n    at f"' reads as two lines."""
    return _ESCAPE.sub(_unescape, text) if "\\" in text else text


def _flatten_json(value: Any, key: str = "", out: list[str] | None = None) -> list[str]:
    out = [] if out is None else out
    if isinstance(value, dict):
        for name, item in value.items():
            _flatten_json(item, str(name), out)
    elif isinstance(value, list):
        if key:
            out.append(f"{key}:")
        for item in value:
            _flatten_json(item, key, out)
    else:
        out.append(f"{key}: {value}" if key else str(value))
    return out


def _parse_json(body: str) -> Any:
    stripped = body.lstrip()
    if stripped[:1] not in ("{", "["):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def is_html(body: str, content_type: str | None) -> bool:
    ctype = (content_type or "").lower()
    if ctype:
        return any(kind in ctype for kind in _HTML_TYPES)
    return body.lstrip()[:1] == "<"


def normalise(body: str, content_type: str | None = None) -> str:
    """The text of a response body as a reader sees it (see the module docstring).

    A JSON document becomes one 'key: value' line per scalar (strings decoded); HTML is
    stripped to text; anything else keeps its characters. All three get their embedded JSON
    escapes decoded, typographic quotes and odd spaces folded to ASCII, and '\\n' newlines.
    """
    document = _parse_json(body)
    if isinstance(document, (dict, list)):
        text = "\n".join(_flatten_json(document))  # its strings are decoded already
    else:
        text = decode_json_strings(strip_html(body) if is_html(body, content_type) else body)
    return text.translate(_FOLD).replace("\r\n", "\n").replace("\r", "\n")


# -- signatures ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Clue:
    """One regular expression, matched on the normalised text or on the raw body."""

    pattern: re.Pattern[str]
    raw: bool = False

    def search(self, text: str, raw: str) -> re.Match[str] | None:
        return self.pattern.search(raw if self.raw else text)


def phrase(words: str) -> str:
    """A regex for these words, whatever whitespace (newlines, indents) separates them."""
    return r"\s+".join(re.escape(word) for word in words.split())


def text(regex: str, flags: int = 0) -> Clue:
    return Clue(re.compile(regex, flags | re.MULTILINE))


def raw(regex: str, flags: int = 0) -> Clue:
    return Clue(re.compile(regex, flags), raw=True)


@dataclass(frozen=True)
class Signature:
    """A framework's debug or error page: it matches when every clue of one group does."""

    framework: str
    page: str
    groups: tuple[tuple[Clue, ...], ...]

    @property
    def label(self) -> str:
        return f"{self.framework} {self.page}".strip()

    def match(self, normalised: str, body: str) -> tuple[Clue, re.Match[str]] | None:
        """The first clue and its match, of the first group whose clues all match."""
        for group in self.groups:
            first = None
            for clue in group:
                found = clue.search(normalised, body)
                if found is None:
                    break
                first = first or (clue, found)
            else:
                if first is not None:
                    return first
        return None


def sig(framework: str, page: str, *groups: tuple[Clue, ...] | Clue) -> Signature:
    return Signature(framework, page, tuple(g if isinstance(g, tuple) else (g,) for g in groups))


@dataclass(frozen=True)
class Finding:
    signature: Signature
    quote: str  # the matched line, as read, bounded

    @property
    def label(self) -> str:
        return self.signature.label


# Building blocks shared by several signatures (all on normalised text). Line-anchored
# patterns use [ \t], never \s, for indentation: \s would also eat newlines, and a body of a
# million blank lines would then cost a million steps at each of its million line starts.
PY_TRACEBACK = r'Traceback \(most recent call last\):?[ \t]*\n[ \t]*File "[^"\n]+", line \d+'
JAVA_FRAME = (r"^[ \t]*at (?:[\w$.-]+/{1,2})?[\w$.<>]+\("
              r"(?:[\w$-]+\.(?:java|kt|scala|groovy|clj):\d+|Native Method|Unknown Source)\)")
NODE_FRAME = r"^[ \t]*at (?:(?:new |async )?[\w$.<>\[\] ]+ )?\(?(?:/|[A-Za-z]:\\|node:|file://)[^\n]*:\d+:\d+\)?$"
PHP_FILE = r"(?:[A-Za-z]:\\|/)[^\n]{0,500}?\.(?:php\d?|inc|phtml)"
PHP_LEVEL = (r"(?:Fatal error|Parse error|Warning|Notice|Deprecated|Recoverable fatal error|"
             r"Catchable fatal error|Strict Standards|User Error|User Warning)")
DJANGO_DEBUG = phrase("You're seeing this error because you have DEBUG = True in your Django settings file")

SIGNATURES: tuple[Signature, ...] = (
    # Django, DEBUG = True: technical_404.html, technical_500.html / .txt, default_urlconf.
    sig("Django", "technical 404 page (DEBUG = True)",
        (text(DJANGO_DEBUG), text(phrase("Django will display a standard 404 page") + "|"
                                  + phrase("Django tried these URL patterns")))),
    sig("Django", "technical 500 page (DEBUG = True)",
        (text(DJANGO_DEBUG), text(phrase("a standard page generated by the handler for this status code")
                                  + r"|Exception Value:|Traceback"))),
    sig("Django", "welcome page (DEBUG = True, no URLs configured)",
        text(phrase("You are seeing this page because DEBUG=True is in your settings file"))),
    # Werkzeug's DebuggedApplication (flask run --debug): traceback pages and the console.
    sig("Flask/Werkzeug", "interactive debugger (debug mode)",
        text(phrase("The debugger caught an exception in your WSGI application")),
        raw(r"// Werkzeug Debugger</title>"),
        (raw(r"\?__debugger__=yes&(?:amp;)?cmd=resource"), raw(r"\bSECRET\s*=\s*\""))),
    # Starlette's ServerErrorMiddleware(debug=True), also what FastAPI(debug=True) serves.
    sig("Starlette/FastAPI", "debug traceback page (debug=True)",
        (raw(r"<title>Starlette Debugger</title>"), text(r"^[ \t]*Traceback[ \t]*$"))),
    sig("Starlette/FastAPI", "debug traceback (debug=True, plain text)",
        (text(PY_TRACEBACK), text(r'^[ \t]*File "[^"\n]*[/\\]starlette[/\\][^"\n]*", line \d+'))),
    # Express: finalhandler writes err.stack as HTML unless NODE_ENV is production.
    sig("Express", "development error page (NODE_ENV is not production)",
        (text(NODE_FRAME), raw(r"<title>Error</title>"), raw(r"<br> &nbsp; &nbsp;at "))),
    # Rails: ActionDispatch::DebugExceptions (HTML layout, or the JSON/text of an API request).
    sig("Rails", "development exception page (consider_all_requests_local)",
        (raw(r"<title>Action Controller: Exception caught</title>"),),
        (text(r"Application Trace"), text(r"Framework Trace"), text(r"Full Trace"))),
    # Laravel with APP_DEBUG=true: Ignition (Laravel 6-10), the built-in renderer (11+).
    sig("Laravel", "Ignition error page (APP_DEBUG=true)",
        (raw(r"window\.ignite\("), raw(r'"stacktrace"\s*:\s*\['))),
    sig("Laravel", "exception page (APP_DEBUG=true)",
        (text(r"\bPHP \d+\.\d+[\w.-]* - Laravel \d+\.\d+"), text(r"vendor frames?\b"))),
    sig("Laravel", "5.0-5.4 exception page (Symfony Debug, APP_DEBUG=true)",
        (text(phrase("Whoops, looks like something went wrong.")), raw(r'class="traces list_exception"'))),
    sig("Whoops", "error page (PHP; Laravel 5.5-7 with APP_DEBUG=true)",
        (raw(r'<div class="Whoops container">'), raw(r'class="frame-file"'))),
    # Spring Boot with server.error.include-stacktrace=always (HTML Whitelabel, or the JSON).
    sig("Spring Boot", "Whitelabel error page with a stack trace (server.error.include-stacktrace)",
        (text(JAVA_FRAME), text(r"Whitelabel Error Page"), text(r"There was an unexpected error \(type="))),
    sig("Spring Boot", "error JSON with a stack trace (server.error.include-stacktrace)",
        (text(r"^trace: \S"), text(r"^path: /"), text(r"^status: \d{3}$"), text(JAVA_FRAME))),
    # ASP.NET: the yellow screen of death with details (customErrors Off, or local).
    sig("ASP.NET", "error page with exception details (customErrors mode Off)",
        (text(r"Server Error in '[^'\n]*' Application"), text(r"Exception Details:|Stack Trace:"))),
    sig("ASP.NET Core", "developer exception page (Development environment)",
        text(phrase("An unhandled exception occurred while processing the request.")),
        raw(r'class="rawExceptionStackTrace"')),
    # PHP itself with display_errors=On (html_errors gives <b>Warning</b>:  ... <b>on line</b>).
    sig("PHP", "error message (display_errors On)",
        text(rf"\b{PHP_LEVEL}[ \t]*:[ \t]+[^\n]{{0,1000}}? in {PHP_FILE}(?: on line \d+|:\d+)")),
    # Plain traces of the common stacks, whoever printed them.
    sig("", "Python traceback", text(PY_TRACEBACK)),
    sig("", "Java stack trace", (text(r"(?:Exception|Error|Throwable)\b[^\n]*\n" + JAVA_FRAME[1:]),)),
    sig("", "Node.js stack trace",
        text(r"(?:Error|Exception)\b[^\n]*(?:\n[ \t]+at [^\n]*){0,8}?\n" + NODE_FRAME[1:])),
    sig("", "PHP stack trace", text(r"^Stack trace:\n#0 ")),
    sig("", "Ruby backtrace", text(r"\.rb:\d+:in [`']")),
    sig("", "Go panic", text(r"goroutine \d+ \[running\]:|^panic: runtime error|http: panic serving")),
    sig("", ".NET exception", text(r"^[ \t]*at (?:System|Microsoft)\.[\w.`+<>]+\("),
        text(r"^[ \t]*at [\w.`+<>|]+\([^)\n]*\) in [^\n]+:line \d+")),
)


def _quote(normalised: str, body: str, match: re.Match[str], raw_match: bool) -> str:
    source = body if raw_match else normalised
    start = source.rfind("\n", 0, match.start()) + 1
    end = source.find("\n", max(match.end() - 1, match.start()))
    line = source[start:end if end != -1 else len(source)].strip()
    if raw_match:  # the text around the clue, else the clue's markup itself
        line = strip_html(line).strip() or match.group(0)
    line = " ".join(line.split())
    return line[:QUOTE_CHARS] + ("…" if len(line) > QUOTE_CHARS else "")


def detect(body: str, content_type: str | None = None,
           signatures: tuple[Signature, ...] = SIGNATURES) -> Finding | None:
    """The first signature the body matches, with the line that gave it away."""
    if not body:
        return None
    normalised = normalise(body, content_type)
    for signature in signatures:
        matched = signature.match(normalised, body)
        if matched is not None:
            clue, found = matched
            return Finding(signature, _quote(normalised, body, found, clue.raw))
    return None

"""Built-in check families. Adding a family: one module here, and its name in FAMILIES."""

FAMILIES: tuple[str, ...] = (
    "headers",
    "cookies",
    "cors",
    "auth",
    "exposure",
    "errors",
    "health",
    "metrics",
    "tls",
    "webhooks",
)

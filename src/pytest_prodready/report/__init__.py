"""The scorecard and its renderers (terminal, Markdown, JSON, HTML)."""

"""The embedded demo service for `prodready demo`."""

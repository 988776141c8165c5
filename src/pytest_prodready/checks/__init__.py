"""Built-in check families: one module each, declaring a FAMILY (see family.py).

The list of built-in families is family.BUILTIN; an installed package adds one through the
`pytest_prodready.families` entry-point group.
"""

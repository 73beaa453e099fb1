"""Fixtures of the private CA tests (mgattest.ca).

The keyless stack they start is built by tests/helpers/servers.py
(``private_keyless_stack``). No fixture is shared by several modules of this folder yet;
add here one that two modules would otherwise each define.
"""

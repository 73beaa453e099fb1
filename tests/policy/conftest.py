"""Fixtures of the policy engine tests (mgattest.policy).

Their facts (keys, attestations, log entries, model checks) are plain builders in
tests/helpers/policy_facts.py. No fixture is shared by several modules of this folder
yet; add here one that two modules would otherwise each define.
"""

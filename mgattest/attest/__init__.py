"""mgattest.attest"""

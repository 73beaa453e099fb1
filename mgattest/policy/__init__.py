"""mgattest.policy"""

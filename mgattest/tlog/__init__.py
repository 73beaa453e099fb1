"""mgattest.tlog"""

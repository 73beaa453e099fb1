"""mgattest.cli"""

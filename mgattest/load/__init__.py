"""mgattest.load"""

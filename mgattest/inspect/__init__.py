"""mgattest.inspect"""

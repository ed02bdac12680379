"""Load benchmarks for authsvc (``make bench``, i.e. ``python -m bench``); never run by pytest.

Everything here drives real ``authsvc serve`` processes through environment variables, so
the same benchmark measures whatever build is installed.
"""

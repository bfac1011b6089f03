"""The one compiled part: the rule presearch (monitor/rules/_presearch.c).

`optional`: without a C compiler the install still succeeds and the presearch runs in
Python (the same results, slower; docs/benchmarks.md).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "monitor.rules._presearch",
            sources=["monitor/rules/_presearch.c"],
            optional=True,
        )
    ]
)

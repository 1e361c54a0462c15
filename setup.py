"""Maps the repository's top-level folders under the single ``presence`` namespace."""

from setuptools import find_packages, setup

TOP = ["framework", "processors", "transports", "pipelines", "benchmarks", "service"]
subpackages = find_packages(".", include=[f"{t}" for t in TOP] + [f"{t}.*" for t in TOP])

setup(
    packages=["presence"] + [f"presence.{p}" for p in subpackages],
    package_dir={"presence": "."},
    package_data={
        "presence.pipelines": ["*.yaml", "personas/**/*"],
        "presence.transports": ["web/*", "web/**/*"],
        "presence.benchmarks": ["results/*"],
    },
    include_package_data=True,
)

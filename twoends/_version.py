"""The version of twoends, in a module of its own.

Anything inside the package that records or reports the version (calibration
files, exported models, the server, the CLI) imports it from here, never from
the package root: importing the root from inside the package would load all of
it, and made a package-level cycle. pyproject.toml reads it from here too.
"""

__version__ = "0.1.0"

"""tos-monitor: watch platforms' Terms of Service and privacy policies for government agencies.

The package reads like the nightly pipeline: watchlist -> fetch -> extract -> store -> changes/diff
-> flag -> report -> notify. Each stage is a plain function or small class over plain data; the
CLI (`monitor.cli`) is a thin layer over it.
"""

__version__ = "0.1.0"

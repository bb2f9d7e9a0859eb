"""ichfed: multi-site hematoma segmentation on head CT; the model travels, the data stays."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ichfed")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

"""The one place Gaggle's version is written: pyproject reads it, the facade re-exports it, and
modules inside the package import it from here rather than from the facade (which loads the
whole engine)."""

__version__ = "0.1.0"

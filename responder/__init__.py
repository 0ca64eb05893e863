"""aws-key-responder: contain a leaked AWS access key through a journaled playbook."""

from __future__ import annotations

from functools import cache


@cache
def package_version() -> str:
    """The installed version, read from the package metadata on first use only
    (importlib.metadata costs more than everything `respond --help` needs)."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("aws-key-responder")
    except PackageNotFoundError:  # pragma: no cover - a source tree without install
        return "0.0.0"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return package_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""aws-key-responder: contain a leaked AWS access key through a journaled playbook."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aws-key-responder")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

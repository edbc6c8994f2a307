"""Which exceptions are the user's to fix, and their one-line messages (the command line's error handling).

``hf-robustmed`` prints ``hf-robustmed: error: <one line>`` and exits with status 2 for the errors a user can fix
(bad input, a missing or unreadable file, a full or read-only disk, no network or offline mode, a missing optional
dependency) and keeps the traceback for everything else, which is a bug. ``HF_ROBUSTMED_DEBUG=1`` shows the
traceback of user errors too.
"""

from __future__ import annotations

import errno
import os
import zlib

DEBUG_ENV = "HF_ROBUSTMED_DEBUG"

# errno values of OSErrors about the user's files and disks (not bugs).
USER_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.EDQUOT,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENAMETOOLONG,
        errno.EMFILE,
    }
)

_OFFLINE_HINT = "unset HF_HUB_OFFLINE to reach the Hub, or put what is needed in the local Hugging Face cache first"
_NETWORK_HINT = (
    "check the network connection (for Hugging Face Hub files, HF_HUB_OFFLINE=1 works from the local cache only)"
)


def debug_requested() -> bool:
    """Whether ``HF_ROBUSTMED_DEBUG`` asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def one_line(text: str) -> str:
    """``text`` with its lines joined by single spaces."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def _hub_message(error: BaseException) -> str | None:
    """The message of a Hugging Face Hub or network error (connection, timeout), or ``None`` for other errors."""
    try:
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
    except ImportError:  # pragma: no cover - huggingface_hub is a core dependency
        return None
    if isinstance(error, OfflineModeIsEnabled):
        return f"the Hugging Face Hub is needed but offline mode is on (HF_HUB_OFFLINE=1): {_OFFLINE_HINT}"
    if isinstance(error, LocalEntryNotFoundError):
        return f"not in the local Hugging Face cache, and the Hub cannot be reached: {_NETWORK_HINT}"
    if isinstance(error, HfHubHTTPError):
        return f"Hugging Face Hub: {_first_line(str(error))}"
    transport = _transport_errors()
    if isinstance(error, transport) or isinstance(error, (ConnectionError, TimeoutError)):
        return f"cannot reach the network ({type(error).__name__}: {_first_line(str(error))}): {_NETWORK_HINT}"
    return None


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP clients' connection and timeout errors (httpx for huggingface_hub, requests for others)."""
    found: list[type[BaseException]] = []
    try:
        import httpx

        found.append(httpx.TransportError)
    except ImportError:
        pass
    try:
        import requests

        found += [requests.ConnectionError, requests.Timeout]
    except ImportError:
        pass
    return tuple(found)


def _os_message(error: OSError) -> str | None:
    if not isinstance(error, (FileNotFoundError, PermissionError)) and error.errno not in USER_ERRNOS:
        return None
    if error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    return one_line(str(error)) or type(error).__name__


def user_message(error: BaseException) -> str | None:
    """The one-line message of an error the user can fix, or ``None`` for a bug (keep its traceback).

    User errors: ``ValueError`` (bad input, corrupt data; our messages name the problem), ``ImportError`` (a
    missing optional dependency, naming its pip extra), Hugging Face Hub offline, connection and HTTP errors,
    ``zlib.error`` (corrupt compressed data), and ``OSError`` about the user's files (``FileNotFoundError``,
    ``PermissionError``, or errno ENOSPC, EROFS, EACCES and the like).
    """
    hub = _hub_message(error)
    if hub is not None:
        return hub
    if isinstance(error, (ValueError, ImportError)):
        return one_line(str(error)) or type(error).__name__
    if isinstance(error, zlib.error):
        return f"corrupt compressed data ({error})"
    if isinstance(error, OSError):
        return _os_message(error)
    return None

"""``copytrade config check``: check the environment each component would read, all at once.

Each component's own loader (``<package>/config.py``, ``Settings.from_env``) runs on the
environment under :func:`meshkit.settings.collect`, so every bad variable is named, not only
the first a start would stop at. The loaders are the services' own: what passes here is what
the component accepts at start (files named by ``TLS_*`` and ``ASSERTION_*`` are opened and
parsed too). A value is never printed when it is a secret: the loaders' messages never repeat
one, and any secret's value or URL password that still shows is masked as ``***``.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping, Sequence

from meshkit import service
from meshkit.settings import ConfigError, collect

Output = Callable[[str], None]

LOADERS = {
    "gateway": "gateway.config",
    "broker": "broker_svc.config",
    "engine": "engine_svc.config",
    "sync": "sync_svc.config",
    "recon": "recon_svc.config",
}
"""Each component and the module whose ``Settings.from_env`` reads its environment."""
COMPONENTS = tuple(LOADERS)
_SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSPHRASE|TOKEN|DATABASE_URL|TIMESCALE_URL")
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
_PASSWORD_PARAMETER = re.compile(r"(password=)[^&\s'\"]+", re.IGNORECASE)
_SHORTEST_MASKED = 4
"""A secret shorter than this is not searched for (it would mask ordinary words)."""
FILE_VARIABLES = frozenset(service.FILE_VARIABLES)
"""Variables that hold the path of a key, not the key: their values are shown."""


def _secret_values(environ: Mapping[str, str]) -> list[str]:
    values: list[str] = []
    for name, value in environ.items():
        if not _SECRET_NAME.search(name) or name in FILE_VARIABLES:
            continue
        for part in [value, *value.split(",")]:
            part = part.strip()
            if len(part) >= _SHORTEST_MASKED:
                values.append(part)
    return sorted(set(values), key=len, reverse=True)


def mask(message: str, environ: Mapping[str, str]) -> str:
    """Return ``message`` with secrets' values and URL credentials replaced by ``***``.

    A file path is kept: it is where a key lives, not the key.
    """
    for value in _secret_values(environ):
        message = message.replace(value, "***")
    message = _USERINFO.sub(lambda found: f"{found.group('scheme')}***@", message)
    return _PASSWORD_PARAMETER.sub(r"\g<1>***", message)


def problems(component: str, environ: Mapping[str, str]) -> list[ConfigError]:
    """Return every problem of ``component``'s environment (``[]`` when it would start)."""
    settings = importlib.import_module(LOADERS[component]).Settings
    return collect(settings.from_env, environ)


def check(
    components: Sequence[str] = COMPONENTS,
    environ: Mapping[str, str] = os.environ,
    out: Output = print,
) -> int:
    """Print each component's verdict and every bad variable; return 0 when all are good, else 1."""
    bad = 0
    for component in components:
        found = problems(component, environ)
        if not found:
            out(f"{component}: ok")
            continue
        bad += 1
        names = sorted({name for error in found for name in error.variables})
        out(
            f"{component}: {len(found)} problem(s)" + (f" with {', '.join(names)}" if names else "")
        )
        for error in found:
            out(f"  {mask(str(error), environ)}")
    if bad:
        out(f"{bad} of {len(components)} component(s) would not start with this environment")
    return 1 if bad else 0

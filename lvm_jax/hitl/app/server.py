"""Serving the app: loopback by default; exposing it takes an explicit address and origins.

No static routes are added: thumbnails travel as PNG data URLs inside the page, exports are
written server-side under the configured output folder with names the server makes. Panel's
`/components/<module>/...` resource route is narrowed to modules already imported under
`panel`, `bokeh` and `lvm_jax.hitl.app` (it would import any installed module named in a URL)
and needs the login when basic auth is on.

The password of basic auth comes from `LVM_JAX_BASIC_AUTH` or `--basic-auth-file` (a file
holding `USER:PASSWORD`), never from the command line, which every local user can read in the
process list (`--basic-auth USER:PASSWORD` still works, with a deprecation warning).
Before serving, the label store is opened, written once and locked (`lvm_jax.locks`): a store
that cannot be written stops the server with its path and the reason.
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
import secrets
import sys
from typing import Sequence

from lvm_jax import locks
from lvm_jax.errors import ConfigError, UserError
from lvm_jax.hitl.app.data import AppConfig, AppData

LOOPBACK = ("127.0.0.1", "localhost", "::1")
AUTH_ENV = "LVM_JAX_BASIC_AUTH"
COMPONENT_MODULES = ("panel", "bokeh", "lvm_jax.hitl.app")


def is_loopback(address: str) -> bool:
  if address == "localhost":
    return True
  try:
    return ipaddress.ip_address(address).is_loopback
  except ValueError:
    return False


def websocket_origins(address: str, port: int, allow_origin: Sequence[str] | None) -> list[str]:
  """The Host[:port] values browsers may open the websocket from.

  Raises:
    ValueError: a non-loopback `address` without `allow_origin` (exposing must be explicit).
  """
  if allow_origin:
    return list(allow_origin)
  if not is_loopback(address):
    raise ConfigError(f"serving on {address} exposes the app: name the allowed origins "
                     "with --allow-origin HOST[:PORT]")
  return [f"{host}:{port}" for host in ("127.0.0.1", "localhost")]


def parse_basic_auth(value: str | None) -> dict[str, str] | None:
  """"user:pass" -> {"user": "pass"}."""
  if not value:
    return None
  user, sep, password = value.strip().partition(":")
  if not sep or not user or not password:
    raise ConfigError("basic auth takes USER:PASSWORD (in the file or the environment variable)")
  return {user: password}


def basic_auth_secret(flag: str | None = None, file: str | os.PathLike | None = None,
                      environ=os.environ) -> str | None:
  """USER:PASSWORD from `file`, else `$LVM_JAX_BASIC_AUTH`, else the deprecated `flag`."""
  if file is not None:
    try:
      return pathlib.Path(file).read_text(encoding="utf-8").strip()
    except OSError as e:
      raise UserError(f"--basic-auth-file {file}: {e.strerror or e}") from e
  if environ.get(AUTH_ENV):
    return environ[AUTH_ENV]
  if flag:
    print(f"warning: --basic-auth puts the password in the process list; use "
          f"--basic-auth-file or ${AUTH_ENV} (the flag will be removed)", file=sys.stderr)
  return flag


def check_store(path: str | os.PathLike | None) -> None:
  """Opens the label store and commits one write; UserError with the path and the reason."""
  if path is None:
    return
  from lvm_jax.hitl.store import LabelStore, utc_now  # pylint: disable=g-import-not-at-top
  try:
    store = LabelStore(path)
    try:
      store.touch({"last_opened": utc_now()})
    finally:
      store.close()
  except Exception as e:  # sqlite3.Error, OSError: read-only, full, not a database, a folder
    raise UserError(f"the label store {os.fspath(path)} cannot be opened and written "
                    f"({type(e).__name__}: {e}); fix its folder or give another --store") from e


def component_handler():
  """Panel's component-resource handler, for already-imported app modules only, behind login."""
  import importlib  # pylint: disable=g-import-not-at-top
  from panel.io.server import (AuthenticatedStaticFileHandler,  # pylint: disable=g-import-not-at-top
                               ComponentResourceHandler)
  from tornado.web import HTTPError  # pylint: disable=g-import-not-at-top

  class RestrictedComponents(AuthenticatedStaticFileHandler, ComponentResourceHandler):

    def parse_url_path(self, path: str) -> str:
      module = path.split("/", 1)[0]
      allowed = any(module == m or module.startswith(m + ".") for m in COMPONENT_MODULES)
      if not allowed or module not in sys.modules:
        raise HTTPError(404, "Module not found")
      importlib.import_module(module)
      return super().parse_url_path(path)

  return RestrictedComponents


def serve(config: AppConfig, *, port: int = 5006, address: str = "127.0.0.1",
          allow_origin: Sequence[str] | None = None, basic_auth: str | None = None,
          start: bool = True, threaded: bool = False, data: AppData | None = None):
  """Loads the data once and serves one page per browser session (`ui.build_app`).

  `basic_auth`: "USER:PASSWORD" (see `basic_auth_secret` for where it should come from).
  Returns panel's server (or its thread when `threaded`); blocks when `start` and not threaded.
  Raises UserError (before serving) when the label store cannot be written or is locked.
  """
  import panel as pn  # pylint: disable=g-import-not-at-top
  from lvm_jax.hitl.app.ui import build_app  # pylint: disable=g-import-not-at-top
  origins = websocket_origins(address, port, allow_origin)
  auth = parse_basic_auth(basic_auth)
  check_store(config.store)
  lock = None
  if config.store is not None:
    lock = locks.acquire(f"{os.fspath(config.store)}.lock", f"label store {config.store}")
  try:
    data = data or AppData(config)
  except BaseException:
    if lock is not None:
      locks.release(lock)
    raise
  kwargs = {"extra_patterns": [(r"/components/(.*)", component_handler(), {})]}
  if auth:
    kwargs.update(basic_auth=auth, cookie_secret=secrets.token_hex(32))
  print(f"lvm-jax hitl: {data.n} objects; serving http://{address}:{port}/", flush=True)

  def page():  # panel calls a plain function once per browser session
    return build_app(data)

  try:
    server = pn.serve({"/": page}, port=port, address=address,
                      websocket_origin=origins, show=False, start=start, threaded=threaded,
                      title="lvm-jax HITL", verbose=False, **kwargs)
  except BaseException:
    if lock is not None:
      locks.release(lock)
    raise
  if lock is not None:
    if start and not threaded:
      locks.release(lock)  # the server has stopped
    else:
      import atexit  # pylint: disable=g-import-not-at-top
      atexit.register(locks.release, lock)
  return server

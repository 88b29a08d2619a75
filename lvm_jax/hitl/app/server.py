"""Serving the app: loopback by default; exposing it takes an explicit address and origins.

No static routes are added: thumbnails travel as PNG data URLs inside the page, exports are
written server-side under the configured output folder with names the server makes.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Sequence

from lvm_jax.hitl.app.data import AppConfig, AppData

LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
    raise ValueError(f"serving on {address} exposes the app: name the allowed origins "
                     "with --allow-origin HOST[:PORT]")
  return [f"{host}:{port}" for host in ("127.0.0.1", "localhost")]


def parse_basic_auth(value: str | None) -> dict[str, str] | None:
  """"user:pass" -> {"user": "pass"}."""
  if not value:
    return None
  user, sep, password = value.partition(":")
  if not sep or not user or not password:
    raise ValueError("--basic-auth takes USER:PASSWORD")
  return {user: password}


def serve(config: AppConfig, *, port: int = 5006, address: str = "127.0.0.1",
          allow_origin: Sequence[str] | None = None, basic_auth: str | None = None,
          start: bool = True, threaded: bool = False, data: AppData | None = None):
  """Loads the data once and serves one page per browser session (`ui.build_app`).

  Returns panel's server (or its thread when `threaded`); blocks when `start` and not threaded.
  """
  import panel as pn  # pylint: disable=g-import-not-at-top
  from lvm_jax.hitl.app.ui import build_app  # pylint: disable=g-import-not-at-top
  origins = websocket_origins(address, port, allow_origin)
  auth = parse_basic_auth(basic_auth)
  data = data or AppData(config)
  kwargs = {}
  if auth:
    kwargs.update(basic_auth=auth, cookie_secret=secrets.token_hex(32))
  print(f"lvm-jax hitl: {data.n} objects; serving http://{address}:{port}/", flush=True)

  def page():  # panel calls a plain function once per browser session
    return build_app(data)

  return pn.serve({"/": page}, port=port, address=address,
                  websocket_origin=origins, show=False, start=start, threaded=threaded,
                  title="lvm-jax HITL", verbose=False, **kwargs)

"""The labelling app on a failing store, and its exposure (password source, extra routes)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys

import pytest
from tornado.web import HTTPError

from lvm_jax.errors import UserError
from lvm_jax.hitl.app import grid, server

from ..hitl_app.conftest import SMALL, make_catalogue, write_export, write_images


@pytest.fixture(scope="module")
def small_app(tmp_path_factory):
  root = tmp_path_factory.mktemp("app")
  cat = make_catalogue(40, seed=4)
  return write_export(root / "export", cat), write_images(root / "s.h5", cat, 16)


def _config(small_app, store):
  from lvm_jax.hitl.app.data import AppConfig
  export, images = small_app
  return AppConfig(embeddings=export, images=images, store=store, out=store.parent / "out",
                   per_page=10, session=dict(SMALL))


@pytest.mark.parametrize("make_store", [
    lambda d: d / "missing_folder" / "labels.sqlite",            # cannot be created
    lambda d: (d / "a_folder").mkdir() or d / "a_folder",          # a directory
    lambda d: (d / "junk.sqlite").write_bytes(b"not sqlite" * 100) and d / "junk.sqlite",
])
def test_a_store_that_cannot_be_written_stops_the_server_at_start(small_app, tmp_path,
                                                                  make_store, capsys):
  store = make_store(tmp_path)
  with pytest.raises(UserError, match=rf"label store {store} cannot be opened and written"):
    server.serve(_config(small_app, store), start=False)
  assert "serving" not in capsys.readouterr().out


def test_a_card_shows_a_label_only_after_the_store_confirms(small_app, tmp_path, monkeypatch):
  from lvm_jax.hitl.app.data import AppData
  from lvm_jax.hitl.app.ui import HitlPage
  from lvm_jax.hitl.store import LabelStore
  page = HitlPage(AppData(_config(small_app, tmp_path / "labels.sqlite")), user="ana")
  first, second = [c["id"] for c in page.grid.content["cards"][:2]]

  async def click(object_id):
    await page._on_action(type("E", (), {"new": {"kind": "label", "id": object_id,
                                                  "value": "1", "nonce": 1}})())
  asyncio.run(click(first))
  labels = {c["id"]: c["label"] for c in page.grid.content["cards"]}
  assert labels[first] == "1"

  def full(self, rows):
    raise sqlite3.OperationalError("database or disk is full")
  monkeypatch.setattr(LabelStore, "append", full)
  asyncio.run(click(second))
  labels = {c["id"]: c["label"] for c in page.grid.content["cards"]}
  assert labels[second] == "" and labels[first] == "1"
  assert "disk is full" in page.status.object
  page.close()
  # The browser marks a clicked card as saving; only the server's data-label colours it.
  assert "dataset.label = b[2]" not in grid._BUILD and "dataset.label = labels" not in grid._RENDER


def test_password_comes_from_a_file_or_the_environment(tmp_path, capsys):
  secret = tmp_path / "auth"
  secret.write_text("ana:s3cret\n")
  assert server.basic_auth_secret(None, secret) == "ana:s3cret"
  assert server.basic_auth_secret(None, None, {server.AUTH_ENV: "bo:pw"}) == "bo:pw"
  assert server.parse_basic_auth(server.basic_auth_secret(None, secret)) == {"ana": "s3cret"}
  assert capsys.readouterr().err == ""
  assert server.basic_auth_secret("old:way", None, {}) == "old:way"  # still works, warned
  assert "process list" in capsys.readouterr().err
  with pytest.raises(UserError, match="basic-auth-file"):
    server.basic_auth_secret(None, tmp_path / "none")


def test_the_components_route_imports_no_module_named_in_a_url():
  handler = server.component_handler().__new__(server.component_handler())
  for module in ("antigravity", "this", "os", "lvm_jax.train"):
    with pytest.raises(HTTPError) as refused:
      handler.parse_url_path(f"{module}/Thing/_css/x.css")
    assert refused.value.status_code == 404
  assert "antigravity" not in sys.modules and "this" not in sys.modules

"""App logic without a browser: prompts, labelling, rounds, export, near-duplicates, CLI."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from lvm_jax import cli
from lvm_jax.hitl import Session
from lvm_jax.hitl.app import server, sky
from lvm_jax.hitl.app.data import AppConfig, AppData
from lvm_jax.hitl.app.state import AppState

from .conftest import SMALL


def _config(export, images, tmp_path, **kw):
  return AppConfig(embeddings=export, images=images, store=tmp_path / "labels.sqlite",
                   out=tmp_path / "out", seed=3, per_page=10, session=dict(SMALL), **kw)


@pytest.fixture(name="data")
def data_fixture(small_survey, tmp_path):
  export, images, _ = small_survey
  return AppData(_config(export, images, tmp_path, truth="truth"))


def test_duplicate_groups_join_close_pairs_only():
  ra = np.array([10.0, 10.0 + 1 / 3600, 10.0 + 10 / 3600, np.nan])
  dec = np.zeros(4)
  groups = sky.duplicate_groups(ra, dec, 2.0)
  np.testing.assert_array_equal(groups, [0, 0, 2, 3])
  assert sky.collapse([1, 2, 0, 3], groups) == [(1, [1, 0]), (2, [2]), (3, [3])]


def test_near_duplicates_shown_once_and_labelled_together(data):
  state = AppState(data, user="ana")
  dup = data.n - 3  # row 57 duplicates row 0
  assert data.groups[dup] == 0
  state.show_ids([data.keys[0], data.keys[5], data.keys[dup]])
  assert state.visible_ids() == [data.keys[0], data.keys[5]]
  assert state.cards()[0]["duplicates"] == [data.keys[dup]]
  labelled = state.label(data.keys[0], "1")
  assert labelled == [data.keys[0], data.keys[dup]]
  assert state.labels() == {data.keys[0]: "1", data.keys[dup]: "1"}


def test_random_prompts_are_seeded_and_skip_labelled(data):
  a, b = AppState(data), AppState(data)
  assert a.visible_ids() == b.visible_ids() and len(a.visible_ids()) == 10
  a.label(a.visible_ids()[0], 0)
  assert a.visible_ids()[0] not in a.show_random()


def test_prompts_by_position_and_ids(data):
  state = AppState(data)
  ra, dec = data.catalogue.ra[7], data.catalogue.dec[7]
  assert state.show_position(ra, dec, 10)[0] == data.keys[7]
  state.show_ids([data.keys[4], "nope"])
  assert state.visible_ids() == [data.keys[4]] and "nope" in state.message


def test_label_undo_round_and_parity_with_session(data, small_survey, tmp_path):
  export, _, cat = small_survey
  state = AppState(data, user="ana")
  shown = state.visible_ids()
  labels = ["1" if cat["truth"][data.row[k]] else "0" for k in shown]
  labels[0], labels[1] = "1", "0"
  for k, v in zip(shown, labels):
    state.label(k, v)
  state.label(shown[2], "unsure")
  assert state.undo() == [shown[2]]
  assert state.labels()[shown[2]] == labels[2]
  ids = state.next_round()
  assert state.mode == "round" and state.visible_ids() == [str(i) for i in ids]
  assert not set(map(str, ids)) & set(shown)
  assert {c["route"] for c in state.cards()} == {"recommended"}
  # The notebook API on the same Parquet file, seed and labels recommends the same objects.
  ref = Session(str(export / "embeddings" / "part-00000.parquet"), seed=3, **SMALL)
  for k, v in zip(shown, labels):
    ref.label(k, v)
  np.testing.assert_array_equal(ref.next_round(), ids)
  assert state.metrics()["labelled"] == 10 and "aupr" in state.metrics()


def test_reopened_store_shows_the_open_round(data):
  first = AppState(data, user="ana")
  for k in first.visible_ids()[:4]:
    first.label(k, 1 if k.endswith(("1", "3", "5")) else 0)
  ids = first.next_round()
  first.session.close()
  again = AppState(data, user="bob")
  assert again.mode == "round" and again.visible_ids() == [str(i) for i in ids]


def test_export_writes_clicked_labels_into_out_folder(data, tmp_path):
  state = AppState(data, user="ana/../x")
  shown = state.visible_ids()
  state.label(shown[0], "1")
  state.label(shown[1], "0")
  state.label(shown[2], "u")
  path = state.export("parquet")
  assert path.parent == tmp_path / "out" and ".." not in path.name
  t = pq.read_table(path).to_pydict()
  assert dict(zip(t["id"], t["label"])) == {shown[0]: 1, shown[1]: 0, shown[2]: -1}
  assert state.export("csv").suffix == ".csv"


def test_more_like_this_uses_cosine_knn(data):
  state = AppState(data)
  key = data.keys[10]
  ids = state.show_similar(key, 5)
  emb = data.catalogue.embeddings
  unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
  sims = unit @ unit[10]
  sims[10] = -np.inf
  expect = [data.keys[r] for r in np.argsort(-sims)[:6]]
  assert key not in ids and set(ids) <= set(expect) and ids[0] == expect[0]


def test_cards_hold_thumbnail_link_and_values(data):
  card = AppState(data).cards()[0]
  assert card["src"].startswith("data:image/png;base64,")
  assert card["url"].startswith(sky.VIEWER + "?ra=")
  assert {"ra", "dec", "mask_flags", "truth"} <= set(card["values"])


def test_exposing_needs_explicit_origins():
  assert server.websocket_origins("127.0.0.1", 5006, None) == ["127.0.0.1:5006",
                                                               "localhost:5006"]
  with pytest.raises(ValueError, match="allow-origin"):
    server.websocket_origins("0.0.0.0", 5006, None)
  assert server.websocket_origins("0.0.0.0", 80, ["lab.example:80"]) == ["lab.example:80"]
  assert server.parse_basic_auth("ana:pw") == {"ana": "pw"}
  with pytest.raises(ValueError):
    server.parse_basic_auth("ana")


def test_per_page_bounds(tmp_path):
  with pytest.raises(ValueError):
    AppConfig(embeddings=tmp_path, per_page=5)


def test_cli_parses_hitl(tmp_path):
  args = cli.build_parser().parse_args(
      ["hitl", "--embeddings", str(tmp_path), "--images", "x.h5", "--port", "0",
       "--basic-auth", "a:b", "--per-page", "30", "--hidden", "8"])
  from lvm_jax.hitl.commands import config_from_args
  config = config_from_args(args)
  assert config.per_page == 30 and config.session["hidden"] == 8
  assert args.address == "127.0.0.1"

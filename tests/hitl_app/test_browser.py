"""The app in a real browser: Debian's chromium driven by Playwright (sync API).

Labels 5 positives and 5 negatives (buttons and keys mixed) plus one unsure, runs a round,
and checks the ids shown against `Session.next_round()` of the notebook API on the same
file, labels and seed; then exports and checks the file holds what was clicked. An ingested
JPEG set is served with its original JPEGs as thumbnails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pyarrow.parquet as pq
import pytest

from lvm_jax.hitl import LabelStore, Session

from .conftest import SMALL

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SEED = 4
TIMEOUT_MS = 30_000

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not os.path.exists(CHROMIUM):
  pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium", allow_module_level=True)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@contextlib.contextmanager
def _server(args: list[str], port: int, log_path, timeout: float = 60.0):
  """`lvm-jax hitl ARGS` in a subprocess until it answers on `port`; killed on exit."""
  log = open(log_path, "w", encoding="utf-8")
  proc = subprocess.Popen([sys.executable, "-m", "lvm_jax.cli", "hitl", *args, "--port", str(port)],
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
  try:
    deadline = time.monotonic() + timeout
    while True:
      if proc.poll() is not None:
        raise RuntimeError(f"server exited: {open(log_path, encoding='utf-8').read()}")
      try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/liveness_missing", timeout=1)
      except urllib.error.HTTPError:
        break  # the server answers (404)
      except OSError:
        if time.monotonic() > deadline:
          raise TimeoutError(open(log_path, encoding="utf-8").read())
        time.sleep(0.3)
    yield proc
  finally:
    with contextlib.suppress(ProcessLookupError):
      os.killpg(proc.pid, signal.SIGTERM)
    try:
      proc.wait(10)
    except subprocess.TimeoutExpired:
      os.killpg(proc.pid, signal.SIGKILL)
      proc.wait(5)
    log.close()


@contextlib.contextmanager
def _app_page(port: int):
  """A chromium page on the app at `port`, once its prompt grid is drawn."""
  with sync_api.sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
      page = browser.new_page(viewport={"width": 1400, "height": 1000})
      page.set_default_timeout(TIMEOUT_MS)
      page.goto(f"http://127.0.0.1:{port}/")
      page.wait_for_selector('.lvm-grid[data-mode="prompts"] .lvm-card')
      yield page
    finally:
      browser.close()


def _card(page, object_id: str, label: str = ""):
  selector = f'.lvm-card[data-id="{object_id}"]'
  return page.locator(selector + (f'[data-label="{label}"]' if label else ""))


@pytest.mark.timeout(120)
def test_label_round_export_in_browser(survey, tmp_path):
  export, images, _ = survey
  port = _free_port()
  store, out = tmp_path / "labels.sqlite", tmp_path / "out"
  args = ["--embeddings", str(export), "--images", str(images), "--store", str(store),
          "--out", str(out), "--seed", str(SEED), "--per-page", "20",
          "--hidden", str(SMALL["hidden"]), "--fast-dims", str(SMALL["fast_dims"]),
          "--steps", str(SMALL["steps"]), "--per-round", str(SMALL["per_round"])]
  with _server(args, port, tmp_path / "server.log"), _app_page(port) as page:
    ids = [c.get_attribute("data-id") for c in page.locator(".lvm-card").all()]
    assert len(ids) == 20
    clicked: list[tuple[str, str]] = []

    def done(object_id, label):
      clicked.append((object_id, label))
      _card(page, object_id, label).wait_for()
      # The server has it once the status line names it.
      page.locator(".lvm-status", has_text=f"labelled {object_id}").wait_for()

    # Mouse: 3 positives, 3 negatives.
    for i, (cls, label) in enumerate([("yes", "1")] * 3 + [("no", "0")] * 3):
      _card(page, ids[i]).locator(f".lvm-{cls}").click()
      done(ids[i], label)
    # Keyboard: focus card 6 by clicking its thumbnail, then 1 1 0 0, space, u.
    _card(page, ids[6]).locator(".lvm-thumb").click()
    for i, key, label in [(6, "1", "1"), (7, "1", "1"), (8, "0", "0"), (9, "0", "0")]:
      page.keyboard.press(key)
      done(ids[i], label)
    page.keyboard.press("ArrowRight")  # focus 10 -> 11
    page.keyboard.press("ArrowLeft")   # -> 10
    page.keyboard.press(" ")           # -> 11
    page.keyboard.press("u")
    done(ids[11], "unsure")

    page.get_by_role("button", name="Next round").click()
    page.wait_for_selector('.lvm-grid[data-mode="round"][data-round="2"] .lvm-card',
                           timeout=60_000)
    shown = [c.get_attribute("data-id") for c in page.locator(".lvm-card").all()]

    page.get_by_role("button", name="Export for paper").click()
    page.locator(".lvm-status", has_text="exported").wait_for()

  # The round the app ran is the one the store records.
  with contextlib.closing(LabelStore(store)) as log:
    rounds = [e for e in log.events() if e.kind == "round"]
  assert [r.payload["ids"] for r in rounds] == [shown]
  # The notebook API: same file, seed and labels -> the same recommendations.
  ref = Session(str(export / "embeddings" / "part-00000.parquet"), seed=SEED, **SMALL)
  for object_id, label in clicked:
    ref.label(object_id, label)
  np.testing.assert_array_equal(ref.next_round(), np.array(shown))
  assert len(shown) == SMALL["per_round"]
  assert not set(shown) & {k for k, _ in clicked}
  # The export holds what was clicked.
  files = list(out.iterdir())
  assert len(files) == 1 and files[0].suffix == ".parquet"
  t = pq.read_table(files[0]).to_pydict()
  code = {"1": 1, "0": 0, "unsure": -1}
  assert dict(zip(t["id"], t["label"])) == {k: code[v] for k, v in clicked}
  assert sum(v == "1" for _, v in clicked) == 5 and sum(v == "0" for _, v in clicked) == 5


@pytest.mark.timeout(90)
def test_basic_auth_and_no_file_routes(small_survey, tmp_path):
  export, images, _ = small_survey
  port = _free_port()
  args = ["--embeddings", str(export), "--images", str(images), "--basic-auth", "ana:secret",
          "--hidden", "8", "--fast-dims", "4", "--steps", "2", "--per-page", "10"]
  opener = urllib.request.build_opener(_NoRedirect)
  with _server(args, port, tmp_path / "server.log"):
    base = f"http://127.0.0.1:{port}"
    with pytest.raises(urllib.error.HTTPError) as redirect:
      opener.open(base + "/", timeout=10)
    assert redirect.value.code == 302 and "login" in redirect.value.headers["Location"]
    for path in (f"/{images.name}", f"/static/{images}", "/static/../../etc/passwd"):
      with pytest.raises(urllib.error.HTTPError) as missing:
        opener.open(base + path, timeout=10)
      assert missing.value.code in (302, 403, 404), path


@pytest.mark.timeout(120)
def test_an_ingested_jpeg_set_shows_its_original_jpegs(tmp_path):
  """`lvm-jax ingest` of JPEGs, then the app over it: each card's thumbnail is the JPEG file."""
  import base64
  import csv

  import cv2
  from PIL import Image

  from lvm_jax.ingest import builder

  from .conftest import make_catalogue, write_export
  folder = tmp_path / "jpegs"
  (folder / "img").mkdir(parents=True)
  rng = np.random.default_rng(0)
  cat = make_catalogue(n=12)
  with (folder / "labels.csv").open("w", newline="") as f:
    rows = csv.writer(f)
    rows.writerow(["id", "file", "class_name"])
    for k, object_id in enumerate(cat["ids"]):
      rgb = np.clip(rng.normal(60, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
      Image.fromarray(rgb).save(folder / "img" / f"{k}.jpg", quality=95)
      rows.writerow([object_id, f"img/{k}.jpg", "ab"[k % 2]])
  survey = tmp_path / "survey"
  builder.ingest(folder, folder / "labels.csv", survey,
                 builder.IngestOptions(label_column="class_name", fractions=()))
  export = write_export(tmp_path / "export", cat)
  port = _free_port()
  args = ["--embeddings", str(export), "--images", str(survey), "--per-page", "10",
          "--hidden", "8", "--fast-dims", "4", "--steps", "2"]
  with _server(args, port, tmp_path / "server.log"), _app_page(port) as page:
    shown = {c.get_attribute("data-id"): c.locator(".lvm-thumb").get_attribute("src")
             for c in page.locator(".lvm-card").all()}
  assert len(shown) == 10 and set(shown) <= set(cat["ids"])
  for object_id, src in shown.items():
    k = cat["ids"].index(object_id)
    png = base64.b64decode(src.split(",", 1)[1])
    pixels = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(pixels, np.asarray(Image.open(folder / "img" / f"{k}.jpg")))


class _NoRedirect(urllib.request.HTTPRedirectHandler):

  def redirect_request(self, *args, **kwargs):
    return None

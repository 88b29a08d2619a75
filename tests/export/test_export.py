"""`export_survey` end to end on a tiny checkpoint: rows, rejects, layouts, resume, formats."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pyarrow.parquet as pq
import pytest

from lvm_jax.export import ExportSettings, export_survey, read_embeddings, read_metadata
from lvm_jax.export import survey



def _embeddings(table) -> np.ndarray:
  col = table.column("embedding").combine_chunks()
  return col.flatten().to_numpy().reshape(len(table), col.type.list_size)


def test_every_good_galaxy_once_in_source_order(export_8, spec):
  out, summary = export_8
  N_GALAXIES, BAD, SPLIT = spec["n"], spec["bad"], spec["split"]
  table = read_embeddings(out)
  good = [i for i in range(N_GALAXIES) if i not in BAD]
  files = [os.path.basename(f) for f in table.column("source_file").to_pylist()]
  rows = [(SPLIT if f == "survey_b.h5" else 0) + i
          for f, i in zip(files, table.column("source_index").to_pylist())]
  assert rows == good
  assert len(set(table.column("id").to_pylist())) == len(good)
  assert summary["rows"] == len(good) and summary["rejects"] == len(BAD)
  assert np.isfinite(_embeddings(table)).all()
  assert table.column("box").to_pylist()[0] == [0, 0, 72, 72]
  assert table.column("flux").type.list_size == 3


def test_bad_images_are_rejected_with_their_reason(export_8, spec):
  out, summary = export_8
  BAD = spec["bad"]
  rejects = pq.read_table(out / "rejects.parquet").to_pylist()
  first_row = {"survey_a.h5": 0, "survey_b.h5": spec["split"]}
  rows = {first_row[os.path.basename(r["source_file"])] + r["source_index"]: r["reason"]
          for r in rejects}
  assert rows == BAD
  assert summary["reject_reasons"] == {reason: 1 for reason in BAD.values()}


def test_embeddings_equal_the_model_on_the_same_inputs(export_8, tiny, survey_dir):
  from lvm_jax.data.hdf5_source import SslLegacySurveySource
  from lvm_jax.data.preprocess import Preprocessing
  _, module, params = tiny
  table = read_embeddings(export_8[0]).slice(0, 8)
  source = SslLegacySurveySource(sorted(survey_dir.glob("*.h5")))
  images = np.stack([Preprocessing(mode="resize", out_size=64).apply(source[i]["image"])[0]
                     for i in table.column("source_index").to_pylist()])
  expected = jax.jit(lambda p, x: module.apply({"params": p}, x, method="encode")["embedding"])(
      params, images)
  np.testing.assert_allclose(_embeddings(table), np.asarray(expected), atol=2e-5, rtol=1e-5)


def test_one_device_equals_eight(export_8, checkpoint_dir, survey_dir, tmp_path, spec):
  settings = ExportSettings(**spec["settings"], carry=("z_phot_median", "flux"))
  export_survey(checkpoint_dir, survey_dir, tmp_path, settings, devices=jax.devices()[:1],
                progress=False)
  one, eight = read_embeddings(tmp_path), read_embeddings(export_8[0])
  assert one.column("id").to_pylist() == eight.column("id").to_pylist()
  np.testing.assert_allclose(_embeddings(one), _embeddings(eight), atol=2e-5, rtol=1e-5)
  assert read_metadata(tmp_path)["embedding"] == read_metadata(export_8[0])["embedding"]


def _cli_export(checkpoint_dir, survey_dir, out, env):
  cmd = [sys.executable, "-m", "lvm_jax.cli", "export", "--checkpoint", str(checkpoint_dir),
         "--data", str(survey_dir), "--out", str(out), "--batch", "8", "--chunk-size", "16",
         "--compute-dtype", "float32", "--workers", "2", "--carry", "z_phot_median,flux",
         "--no-progress"]
  return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_sigkill_then_rerun_equals_an_uninterrupted_run(export_8, checkpoint_dir, survey_dir,
                                                        tmp_path, spec):
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             JAX_COMPILATION_CACHE_DIR=os.path.join(repo, ".jax_cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5")
  crash = int(np.random.default_rng().integers(1, 4))  # chunks 1..3 of 3
  killed = _cli_export(checkpoint_dir, survey_dir, tmp_path,
                       dict(env, **{survey.CRASH_ENV: str(crash)}))
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  manifest = json.loads((tmp_path / "manifest.json").read_text())  # saved before chunk 0
  assert sorted(int(k) for k in manifest["done"]) == list(range(crash - 1))
  assert not manifest["complete"]
  # The rerun, in this process: same settings, same 8-device layout as the killed run.
  settings = ExportSettings(**spec["settings"], carry=("z_phot_median", "flux"))
  summary = export_survey(checkpoint_dir, survey_dir, tmp_path, settings, progress=False)
  assert summary["images_this_run"] == spec["n"] - 16 * (crash - 1)
  again, reference = read_embeddings(tmp_path), read_embeddings(export_8[0])
  assert again.drop_columns(["embedding"]).equals(reference.drop_columns(["embedding"]))
  # Chunks before the crash were embedded by the killed subprocess, whose XLA:CPU executable
  # may round differently from this process's (thread pool, cache): equal to float32 rounding.
  np.testing.assert_allclose(_embeddings(again), _embeddings(reference), rtol=1e-5, atol=1e-5,
                             err_msg=f"killed at chunk {crash}")


def test_other_settings_on_the_same_output_are_refused(export_8, checkpoint_dir, survey_dir,
                                                      spec):
  settings = ExportSettings(**dict(spec["settings"], batch=16), carry=("z_phot_median", "flux"))
  with pytest.raises(ValueError, match="other settings"):
    export_survey(checkpoint_dir, survey_dir, export_8[0], settings, progress=False)


def test_display_rgb_images_are_refused_for_a_flux_model(checkpoint_dir, tmp_path, spec):
  from lvm_jax.data.galaxy10 import ImageKindError, write_galaxy10
  images = np.random.default_rng(0).integers(0, 255, (4, 72, 72, 3), dtype=np.uint8)
  path = write_galaxy10(tmp_path / "g10.h5", images, np.arange(4), np.zeros(4), np.zeros(4))
  with pytest.raises(ImageKindError):
    export_survey(checkpoint_dir, path, tmp_path / "out", ExportSettings(**spec["settings"]),
                  progress=False)


def test_metadata_records_model_checkpoint_and_preprocessing(export_8, checkpoint_dir):
  md = read_metadata(export_8[0])
  assert md["checkpoint"] == {"path": str(checkpoint_dir.resolve()), "step": 3}
  assert md["preprocessing"]["mode"] == "resize" and md["preprocessing"]["out_size"] == 64
  assert md["embedding"]["kind"] == "mean" and md["embedding"]["dim"] == 256
  assert md["model"]["embed_dim"] == 32 and md["git_sha"]


def test_fits_and_votable_copies_open_with_astropy(export_8):
  from astropy.table import Table
  out, _ = export_8
  n = read_embeddings(out).num_rows
  fits_table = Table.read(out / "embeddings.fits")
  assert len(fits_table) == n and fits_table["embedding"].shape == (n, 256)
  assert str(fits_table["ra"].unit) == "deg" and fits_table.meta["CKPTSTEP"] == 3
  vot = Table.read(out / "embeddings.vot")
  assert len(vot) == n and vot["box"].shape == (n, 4)


def test_decoder_multiscale_float16(checkpoint_dir, survey_dir, tiny, tmp_path, spec):
  _, module, params = tiny
  settings = ExportSettings(**dict(spec["settings"], chunk_size=64), embedding="multiscale",
                            dtype="float16", decoder=True)
  export_survey(checkpoint_dir, survey_dir, tmp_path, settings, progress=False)
  table = read_embeddings(tmp_path)
  images = jax.ShapeDtypeStruct((1, 64, 64, 3), np.float32)
  features = jax.eval_shape(lambda x: module.apply({"params": params}, x, method="encode"),
                            images)["features"]
  assert str(table.schema.field("embedding").type.value_type) == "halffloat"
  assert table.schema.field("embedding").type.list_size == sum(f.shape[-1] for f in features)
  mse = table.column("recon_mse").to_numpy()
  assert mse.shape == (spec["n"] - len(spec["bad"]),) and (mse > 0).all()
  assert read_metadata(tmp_path)["decoder"] is True


def test_names_that_moved_out_of_survey_stay_importable():
  from lvm_jax.export import chunks, records, settings
  assert survey.ExportSettings is settings.ExportSettings
  assert survey.check_text is records.check_text and survey._Preparer is records.Preparer
  assert survey._ChunkWriter is chunks.ChunkWriter and survey._rounds is chunks.rounds
  assert survey.REJECTS_PARTS == chunks.REJECTS_PARTS == ".rejects"

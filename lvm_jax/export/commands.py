"""`lvm-jax export`, `lvm-jax export-hats`, `lvm-jax search` and `lvm-jax crossmatch`."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from lvm_jax import config as config_lib
from lvm_jax.arguments import non_negative_int, positive_int
from lvm_jax import extras
from lvm_jax.export import cluster
from lvm_jax.export import options


def register(subparsers) -> None:
  p = subparsers.add_parser(
      "export", help="embed every galaxy of a survey source into resumable Parquet chunks",
      description="Encoder-only inference sharded over all devices. Writes OUT/embeddings/"
                  "part-*.parquet, OUT/rejects.parquet and OUT/manifest.json (schema: "
                  "lvm_jax.export.schema). Rerun the same command to resume after a crash.")
  p.add_argument("--checkpoint", required=True, type=pathlib.Path, help="Orbax checkpoint dir")
  p.add_argument("--data", required=True, type=pathlib.Path,
                 help="HDF5 file or folder (ssl layout), FITS folder, or pre-cropped "
                      "ArrayRecord dir")
  p.add_argument("--out", required=True, type=pathlib.Path, help="output directory")
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default latest)")
  p.add_argument("--decoder", action="store_true", default=None,
                 help="also run the decoder and store recon_mse")
  p.add_argument("--embedding", choices=options.EMBEDDINGS, default=None)
  p.add_argument("--dtype", choices=options.EMBEDDING_DTYPE_NAMES, default=None,
                 help="stored embedding dtype")
  p.add_argument("--compute-dtype", choices=("bfloat16", "float32"), default=None,
                 help="network compute dtype (default bfloat16)")
  p.add_argument("--carry", default=None, help="comma-separated catalogue columns to copy")
  p.add_argument("--batch", type=positive_int, default=None, help="global batch (multiple of devices)")
  p.add_argument("--chunk-size", type=positive_int, default=None, help="records per part file")
  p.add_argument("--workers", type=non_negative_int, default=None, help="host threads for reading")
  p.add_argument("--format", dest="formats", default=None,
                 help="extra copies when complete: fits, votable or fits,votable (a HATS "
                      "catalogue: lvm-jax export-hats OUT OUT_hats)")
  p.add_argument("--allow-display-rgb", "--allow-kind-mismatch", action="store_true",
                 default=None, help="embed images of another kind than the checkpoint's "
                                    "(e.g. display RGB with a flux model) anyway")
  p.add_argument("--allow-nonfloat-images", action="store_true", default=None,
                 dest="allow_nonfloat",
                 help="embed ssl HDF5 images stored as integers or float16 as flux anyway")
  p.add_argument("--no-fallback", action="store_true",
                 help="stop if the newest checkpoint step fails its digests (default: use the "
                      "newest intact step)")
  p.add_argument("--overwrite", action="store_true", help="discard an export with other settings")
  p.add_argument("--no-progress", action="store_true", help="no progress bar")
  p.set_defaults(func=run_export)
  config_lib.add_config_argument(p, default="export", example="export:cpu")

  h = subparsers.add_parser(
      "export-hats", help="write an export as a HATS catalogue (HEALPix partitions, margin)",
      description="Runs hats-import's pipeline on Dask over the export's part files: HEALPix "
                  "partitions, a margin cache, provenance in lvm_jax_export.json (layout: "
                  "lvm_jax.export.hats_catalogue). Rerun to resume an interrupted write.")
  h.add_argument("export", type=pathlib.Path, help="export directory (OUT of lvm-jax export)")
  h.add_argument("out", type=pathlib.Path, help="the HATS collection to write")
  h.add_argument("--margin", type=float, default=10.0,
                 help="margin cache width, arcsec (default 10; crossmatch radii up to it)")
  h.add_argument("--highest-order", type=int, default=10,
                 help="finest HEALPix order of a partition (default 10)")
  h.add_argument("--max-rows", type=int, default=None,
                 help="rows per partition at most (default: ~256 MiB of embeddings)")
  h.add_argument("--skip-unplaced", action="store_true",
                 help="write the rows with a sky position and list the others in "
                      "OUT/unplaced.parquet (default: refuse an export with such rows)")
  h.add_argument("--overwrite", action="store_true", help="replace an existing catalogue")
  cluster.add_arguments(h)
  h.set_defaults(func=run_export_hats)

  s = subparsers.add_parser("search", help="cosine k-NN of an object in an export",
                            description="Finds the object nearest to RA, DEC (or --id) and "
                                        "prints its k most similar galaxies.")
  s.add_argument("--embeddings", required=True, type=pathlib.Path,
                 help="export directory or its HATS catalogue")
  s.add_argument("--ra", type=float, help="deg, ICRS")
  s.add_argument("--dec", type=float, help="deg, ICRS")
  s.add_argument("--id", dest="object_id", help="search by exported id instead of position")
  s.add_argument("-k", type=positive_int, default=16, help="number of neighbours (default 16)")
  s.add_argument("--images", type=pathlib.Path, default=None,
                 help="the survey source, for a PNG mosaic of the neighbours")
  s.add_argument("--png", type=pathlib.Path, default=pathlib.Path("neighbours.png"))
  s.add_argument("--approximate", action="store_true",
                 help="answer from a faiss IVF index built on the fly (needs faiss-cpu: "
                      "pip install 'lvm-jax[ann]') instead of the exact scan")
  s.add_argument("--nprobe", type=int, default=16,
                 help="with --approximate: inverted lists scanned per query (default 16; "
                      "nlist scans all and is exact)")
  s.add_argument("--nlist", type=int, default=None,
                 help="with --approximate: inverted lists (default round(4 sqrt(N)))")
  s.set_defaults(func=run_search)

  c = subparsers.add_parser("crossmatch", help="join a catalogue to an export on the sky (LSDB)",
                            description="Nearest exported galaxy per catalogue row within "
                                        "--radius arcsec, with LSDB on Dask; writes .parquet, "
                                        ".csv, .fits or a folder (a HATS catalogue).")
  c.add_argument("--embeddings", required=True, type=pathlib.Path,
                 help="HATS catalogue of an export (export-hats), or an export directory")
  c.add_argument("--catalogue", required=True, type=pathlib.Path,
                 help="HATS catalogue, or .csv / .parquet / .fits table with ra, dec (deg)")
  c.add_argument("--radius", type=float, default=1.0, help="match radius, arcsec (default 1)")
  c.add_argument("--neighbours", type=int, default=1,
                 help="matches kept per catalogue row, nearest first (default 1)")
  c.add_argument("--out", required=True, type=pathlib.Path)
  c.add_argument("--work-dir", type=pathlib.Path, default=None,
                 help="where converted inputs go (default: a temporary folder)")
  cluster.add_arguments(c)
  c.set_defaults(func=run_crossmatch)


def settings_from_args(args: argparse.Namespace):
  from lvm_jax.export.survey import ExportSettings
  fields = config_lib.config_from_args(args).to_dict()
  flags = {"batch": args.batch, "chunk_size": args.chunk_size, "embedding": args.embedding,
           "dtype": args.dtype, "compute_dtype": args.compute_dtype, "decoder": args.decoder,
           "workers": args.workers, "allow_display_rgb": args.allow_display_rgb,
           "allow_nonfloat": args.allow_nonfloat,
           "carry": args.carry and [c for c in args.carry.split(",") if c],
           "formats": args.formats and [f for f in args.formats.split(",") if f]}
  fields.update({k: v for k, v in flags.items() if v is not None})
  for key in ("carry", "formats"):
    fields[key] = tuple(fields.get(key) or ())
  fields["overwrite"] = args.overwrite
  fields["fallback"] = not args.no_fallback
  return ExportSettings(**fields)


def run_export(args: argparse.Namespace) -> int:
  extras.require("data", command="export")
  from lvm_jax.data.galaxy10 import ImageKindError
  from lvm_jax.export import survey
  settings = settings_from_args(args)
  try:
    summary = survey.export_survey(args.checkpoint, args.data, args.out, settings,
                                   step=args.step, progress=not args.no_progress)
  except ImageKindError as e:
    print(f"refused: {e}", file=sys.stderr)
    return 2
  if summary:
    print(json.dumps(summary, indent=1))
  return 0


def run_search(args: argparse.Namespace) -> int:
  extras.require("data", command="search")
  from lvm_jax.export import search
  if args.object_id is None and (args.ra is None or args.dec is None):
    raise SystemExit("give --ra and --dec, or --id")
  index = search.EmbeddingIndex.from_export(args.embeddings)
  if args.approximate:
    try:
      index.build_approximate(nlist=args.nlist, nprobe=args.nprobe)
    except (ImportError, ValueError) as e:
      print(f"--approximate on {args.embeddings}: {e}", file=sys.stderr)
      return 2
  print(f"backend: {index.backend(args.approximate)}")
  if args.object_id is not None:
    anchor = {"id": args.object_id}
    i = index.position(args.object_id)
    anchor.update(ra=float(index.ra[i]), dec=float(index.dec[i]),
                  source_file=str(index.source_file[i]), source_index=int(index.source_index[i]))
    rows = index.search_by_id(args.object_id, args.k, args.approximate)
  else:
    anchor, rows = index.search_by_position(args.ra, args.dec, args.k, args.approximate)
    print(f"nearest object {anchor['id']} at {anchor['ra']:.6f} {anchor['dec']:.6f}, "
          f"{anchor['separation_arcsec']:.2f} arcsec from the position")
  print(search.format_table(rows))
  if args.images is None:
    print("no --images given: mosaic skipped")
  else:
    from lvm_jax.export import mosaic
    print(f"wrote {mosaic.write_mosaic(rows, args.images, args.png, anchor=anchor)}")
  return 0


def run_export_hats(args: argparse.Namespace) -> int:
  extras.require("catalogue", command="export-hats")
  from lvm_jax.export import hats_catalogue
  try:
    with cluster.from_args(args) as client:
      summary = hats_catalogue.write_hats(
          args.export, args.out, client=client, margin_arcsec=args.margin,
          highest_order=args.highest_order, max_rows=args.max_rows,
          skip_unplaced=args.skip_unplaced, overwrite=args.overwrite)
  except (hats_catalogue.UnplacedRowsError, FileExistsError) as e:
    print(f"refused: {e}", file=sys.stderr)
    return 2
  print(json.dumps(summary, indent=1))
  return 0


def run_crossmatch(args: argparse.Namespace) -> int:
  extras.require("catalogue", command="crossmatch")
  from lvm_jax.export import crossmatch
  with cluster.from_args(args) as client:
    summary = crossmatch.crossmatch(args.embeddings, args.catalogue, args.radius, args.out,
                                    client=client, n_neighbors=args.neighbours,
                                    work_dir=args.work_dir)
  print(f"{summary['matches']} matches within {args.radius} arcsec -> {summary['out']}")
  return 0

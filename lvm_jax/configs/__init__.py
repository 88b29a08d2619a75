"""The packaged configs: `get_config(arg)` modules loaded by name with `lvm_jax.config`.

    from lvm_jax import config
    c = config.load_config("pretrain:tiny", ["data.files=/tmp/tiny_survey/*.h5"])

`lvm-jax train --config pretrain:tiny`, `lvm-jax evaluate --config downstream:quick`,
`lvm-jax export --config export:cpu`, `experiments/detection_experiment.py --config detect:tiny`.
"""

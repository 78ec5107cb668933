"""`lpmrf_baselines`: other restorers behind the common interface, installed with lpmrf-bench.

Each method is a subpackage whose `SPEC` (a `lpmrf_bench.restorers.RestorerSpec`) is registered in
pyproject.toml under the `lpmrf_bench.restorers` entry-point group: the same door a third-party package uses,
so nothing in `lpmrf_bench` names these methods. A method that fails to import is listed as unavailable.

Adding one (see `codeformer/`, the worked example):
- `arch.py`: the network in plain PyTorch with the published parameter names, a config dataclass and a tiny
  configuration for tests;
- `loading.py`: its `WeightFile` (source, licence), a loader reading the published file as it is (strict keys,
  `lpmrf_bench.models.state_dicts`), and the restorer callable (size refusal, precision and [-1, 1] handling
  from `lpmrf_bench.restorers.base`);
- `__init__.py`: `SPEC` with knobs (`pd=True` on the perception-distortion knob), weight sets, licence;
- pyproject.toml: `name = "lpmrf_baselines.name:SPEC"` under `[project.entry-points."lpmrf_bench.restorers"]`
  and the subpackage in `[tool.setuptools] packages`;
- tests: a key -> shape manifest from the public source (`tests/manifests/`) and reference outputs of the
  official code (`tests/reference/`).
"""

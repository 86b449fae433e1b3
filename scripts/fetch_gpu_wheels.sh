#!/usr/bin/env bash
# Download the wheels that the GPU machine lacks (Python 3.12, x86-64, no network there) into
# .whl/ (git-ignored), to be carried to it. The GPU image already has torch, numpy, scipy,
# matplotlib, tqdm, pyyaml, requests, jinja2, pygments, psutil, attrs, click, packaging, ...;
# those are removed after download so that only one version of each package travels.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.whl
rm -rf "$dest" && mkdir -p "$dest"
py=${PYTHON:-python3}
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform manylinux1_x86_64 --platform any)
"$py" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$dest" \
  papermill jupytext mrcfile ipykernel nbformat nbclient 2> >(grep -v "is ignored" >&2)
# Present on the GPU image (KINDS.md, "Python packages already there"): do not carry them.
present='^(numpy|scipy|matplotlib|tqdm|pyyaml|PyYAML|requests|jinja2|Jinja2|markupsafe|MarkupSafe|pygments|Pygments|psutil|attrs|click|packaging|urllib3|idna|certifi|charset_normalizer|six|python_dateutil|typing_extensions|markdown_it_py|mdurl|pillow|contourpy|cycler|fonttools|kiwisolver|pyparsing|setuptools|wheel|pip|filelock|fsspec|rpds_py|referencing|jsonschema|jsonschema_specifications|tenacity)-'
for f in "$dest"/*.whl; do
  base=$(basename "$f")
  if [[ "$base" =~ $present ]]; then rm -f "$f"; fi
done
# rpds_py, referencing, jsonschema are needed by nbformat; keep them if the image lacks them.
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$dest" jsonschema jsonschema-specifications referencing rpds-py tenacity 2> >(grep -v "is ignored" >&2)
du -sh "$dest"; ls "$dest" | wc -l

#!/usr/bin/env bash
# Fetch, into .whl/ (git-ignored), every wheel the runner (`cryo-companion paper`) needs on a GPU
# machine that has Python 3.12 and torch but no network: papermill and the kernel it starts
# (ipykernel, IPython, jupyter_client, pyzmq, tornado, ...), jupytext, nbformat, nbclient, mrcfile,
# starfile, ipywidgets (the simulation chapter's live explorer) and docutils (the book's results
# directive, imported with the package), with all their dependencies, for CPython 3.12 (or
# $GPU_PYTHON) on manylinux x86-64, from PyPI. Wheels of packages the GPU image already has
# (scripts/gpu_image_packages.txt: torch, numpy, scipy, matplotlib, pandas, tqdm, pytest, ...) are
# not kept, so one version of each package travels; torch is never fetched.
# Then it checks what it kept: every wheel pure Python or built for that CPython (cp312, or a
# stable-ABI build for 3.12 or older), one version per package, every dependency of every wheel
# carried or on the image, and every third-party module that the package and the chapters import
# (cryo_companion/**/*.py, notebooks/*.py, read with ast) provided by a carried wheel or the
# image; and prints the total size (what travels, the working tree included, must stay under
# 64 MiB on this project's lent machines).
# Usage: scripts/fetch_gpu_wheels.sh [DEST]        (DEST: default .whl; replaced)
#   GPU_PYTHON=3.11 scripts/fetch_gpu_wheels.sh     for a GPU machine with another Python 3
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
py=${PYTHON:-python3}
pyver=${GPU_PYTHON:-3.12}
need=(papermill jupytext nbformat nbclient ipykernel ipywidgets mrcfile starfile docutils)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_26_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64
           --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64)
"$py" -m pip download -q --only-binary=:all: --python-version "$pyver" --implementation cp \
  "${platforms[@]}" -d "$tmp/all" "${need[@]}" 2> >(grep -v "is ignored" >&2 || true)
mkdir -p "$tmp/keep"
"$py" - "$tmp/all" "$tmp/keep" scripts/gpu_image_packages.txt "$pyver" "${need[@]}" <<'PY'
import re
import shutil
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

try:
    from packaging.requirements import Requirement
except ImportError:  # pip carries its own copy
    from pip._vendor.packaging.requirements import Requirement

src, keep_dir, present_file, pyver, *need = sys.argv[1:]
minor = int(pyver.split(".")[1])
cp = f"cp3{minor}"


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


present = {norm(s.strip()) for s in Path(present_file).read_text().splitlines()
           if s.strip() and not s.startswith("#")} | {"torch"}
env = {"python_version": pyver, "python_full_version": f"{pyver}.0", "os_name": "posix",
       "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
       "platform_release": "", "platform_version": "", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "implementation_version": f"{pyver}.0",
       "extra": ""}
kept, dropped, errors = {}, [], []
for whl in sorted(Path(src).glob("*.whl")):
    parts = whl.name[:-4].split("-")
    name, version, (pytag, abi, plat) = parts[0], parts[1], parts[-3:]
    if norm(name) in present:
        dropped.append(f"{name} {version}")
        continue
    pure = abi == "none" and plat == "any" and all(t.startswith("py3") or t == "py2"
                                                   for t in pytag.split("."))
    abi3 = abi == "abi3" and all(re.fullmatch(r"cp3(\d+)", t) and int(t[3:]) <= minor
                                 for t in pytag.split("."))
    if not (pure or abi == cp or abi3) or "x86_64" not in plat and plat != "any":
        errors.append(f"{whl.name}: neither pure Python nor built for CPython {pyver} x86-64")
    if norm(name) in kept:
        errors.append(f"two versions of {name}: {kept[norm(name)].name}, {whl.name}")
    kept[norm(name)] = whl
for want in need:
    if norm(want) not in kept and norm(want) not in present:
        errors.append(f"{want}: no wheel fetched")
for whl in kept.values():
    with zipfile.ZipFile(whl) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        reqs = Parser().parsestr(z.read(meta).decode()).get_all("Requires-Dist") or []
    for line in reqs:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        if norm(req.name) not in kept and norm(req.name) not in present:
            errors.append(f"{whl.name} needs {req}, neither carried nor on the image")
# every third-party module the package and the chapters import: from a carried wheel or the image
import ast

provided = {}
for whl in kept.values():
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            top = n.split("/")[0]
            if not top.endswith((".dist-info", ".data")):
                provided[top.removesuffix(".py")] = whl.name
# import names of image packages that differ from their distribution's name
aliases = {"skimage": "scikit-image", "sklearn": "scikit-learn", "yaml": "pyyaml",
           "PIL": "pillow", "dateutil": "python-dateutil", "IPython": "ipython",
           "zmq": "pyzmq", "google": "protobuf", "cv2": "opencv-python-headless"}
for src_file in [*Path("cryo_companion").rglob("*.py"), *Path("notebooks").glob("*.py")]:
    for node in ast.walk(ast.parse(src_file.read_text(), str(src_file))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module] if isinstance(node, ast.ImportFrom) and node.module
                 and not node.level else [])
        for mod in (n.split(".")[0] for n in names):
            if (mod in sys.stdlib_module_names or mod in ("cryo_companion", "__future__")
                    or mod in provided or norm(aliases.get(mod, mod)) in present):
                continue
            msg = f"{src_file} imports {mod}: neither carried nor on the image"
            if msg not in errors:
                errors.append(msg)
if errors:
    sys.exit("fetch_gpu_wheels: " + "\n  ".join(["errors:", *errors]))
for whl in kept.values():
    shutil.copy2(whl, keep_dir)
size = sum(w.stat().st_size for w in kept.values())
print(f"{len(kept)} wheels, {size / 2**20:.1f} MiB; left out as on the GPU image: "
      f"{', '.join(dropped)}")
PY
rm -rf "$dest"
mv "$tmp/keep" "$dest"
du -sh "$dest"

"""build_backend.py: a PEP 517 backend that compiles prefork._prefork with cc and writes the wheel itself.

It needs nothing from the network (no setuptools): pip runs it in place,
with `requires = []`. The C sources are the checkout's (../src, ../include)
or, in an sdist, the copies under csrc/.
"""
import base64
import concurrent.futures
import hashlib
import io
import os
import pathlib
import shlex
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile

NAME, VERSION = "prefork", "0.1.0"
HERE = pathlib.Path(__file__).resolve().parent


def _csrc():
    """The folder holding include/ and src/ (lib, http and tls)."""
    for root in (HERE.parent, HERE / "csrc"):
        if (root / "include" / "prefork.h").exists() and (root / "src" / "http").is_dir():
            return root
    raise RuntimeError("prefork: the C sources (include/, src/lib, src/http, src/tls) are not found "
                       "next to python/; build from a checkout of the repository")


def _sources(root):
    lib = sorted((root / "src" / "lib").rglob("*.c"))
    http = sorted((root / "src" / "http").glob("*.c"))
    tls = sorted((root / "src" / "tls").glob("*.c"))
    return lib + http + tls + sorted((HERE / "src").glob("*.c"))


def _compile(root, out_dir):
    cc = shlex.split(os.environ.get("CC", "cc"))
    inc = sysconfig.get_paths()["include"]
    cflags = ["-std=c17", "-D_GNU_SOURCE", "-O2", "-g", "-fPIC", "-Wall",
              f"-I{root / 'include'}", f"-I{root / 'src'}", f"-I{HERE / 'src'}", f"-I{inc}"]
    jobs = []
    for i, src in enumerate(_sources(root)):
        obj = out_dir / f"{i:03d}-{src.stem}.o"
        jobs.append((cc + cflags + ["-c", str(src), "-o", str(obj)], obj))

    def run(job):
        subprocess.run(job[0], check=True)
        return job[1]

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        objs = list(pool.map(run, jobs))
    so = out_dir / ("_prefork" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(cc + ["-shared", f"-Wl,--version-script,{HERE / 'src' / '_prefork.map'}",
                         "-o", str(so)] + [str(o) for o in objs]
                   + ["-lssl", "-lcrypto", "-lpthread"], check=True)
    return so


def _tag():
    impl = f"cp{sys.version_info.major}{sys.version_info.minor}"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return impl, impl, plat


def _metadata():
    return (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"
            "Summary: WSGI applications and socket services on a supervised pool of "
            "worker processes, in C\nRequires-Python: >=3.11\n")


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    impl, abi, plat = _tag()
    tag = f"{impl}-{abi}-{plat}"
    dist = f"{NAME}-{VERSION}.dist-info"
    with tempfile.TemporaryDirectory() as tmp:
        so = _compile(_csrc(), pathlib.Path(tmp))
        files = {f"prefork/{p.name}": p.read_bytes() for p in sorted((HERE / "prefork").glob("*.py"))}
        files[f"prefork/{so.name}"] = so.read_bytes()
    files[f"{dist}/METADATA"] = _metadata().encode()
    files[f"{dist}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: prefork build_backend\n"
                              f"Root-Is-Purelib: false\nTag: {tag}\n").encode()
    record = [_record_line(k, v) for k, v in files.items()] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    name = f"{NAME}-{VERSION}-{tag}.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / name, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in files.items():
            info = zipfile.ZipInfo(k, (2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if k.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, v)
    return name


def build_sdist(sdist_directory, config_settings=None):
    """The python/ folder with the C sources copied under csrc/."""
    root = _csrc()
    base = f"{NAME}-{VERSION}"
    name = f"{base}.tar.gz"
    with tarfile.open(pathlib.Path(sdist_directory) / name, "w:gz") as tar:
        for p in ["pyproject.toml", "build_backend.py"]:
            tar.add(HERE / p, f"{base}/{p}")
        for d in ["prefork", "src"]:
            tar.add(HERE / d, f"{base}/{d}", filter=lambda t: None if "__pycache__" in t.name else t)
        tar.add(root / "include", f"{base}/csrc/include")
        for d in ["lib", "http", "tls"]:
            tar.add(root / "src" / d, f"{base}/csrc/src/{d}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        meta = _metadata().encode()
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    return name

"""The container test images, built locally (there is no registry on the test machines).

1. A base image is `docker import`ed from a root filesystem assembled here: Debian's static
   busybox (`busybox-static`) with a link per applet, /etc/passwd with root and `app`
   (uid 1000), a world-writable /tmp.
2. The service images are `docker build`s FROM that base (context/Dockerfile, or
   context/Dockerfile.root for the variant with no USER): busybox httpd on 127.0.0.1:$PORT
   with /health and a slow CGI endpoint, its shutdown and secret behaviour picked by build
   args (see context/app.sh).

Tags carry a hash of the context and the busybox binary, so a machine builds each image
once and a changed app is rebuilt; a file lock keeps two xdist workers from building at
the same time. `ensure_images()` returns variant -> tag.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

CONTEXT = Path(__file__).parent / "context"
BUSYBOX = Path("/bin/busybox")
LOCK = Path("/tmp/prodready-test-images.lock")
REPO = "prodready-test"

# variant -> (Dockerfile, build args)
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "good": ("Dockerfile", {"USER_ID": "1000", "SHUTDOWN": "drain", "SECRET_POLICY": "require"}),
    "root": ("Dockerfile.root", {"SHUTDOWN": "drain", "SECRET_POLICY": "require"}),
    "dies": ("Dockerfile", {"USER_ID": "1000", "SHUTDOWN": "die", "SECRET_POLICY": "require"}),
    "fallback": ("Dockerfile", {"USER_ID": "1000", "SHUTDOWN": "drain", "SECRET_POLICY": "fallback"}),
}


def _digest() -> str:
    h = hashlib.sha256(BUSYBOX.read_bytes())
    for path in sorted(CONTEXT.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(CONTEXT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def rootfs_tar() -> bytes:
    """A busybox root filesystem as a tar archive (for `docker import`)."""
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for name in ("bin", "etc", "www", "proc", "sys", "dev", "home", "home/app", "root"):
            add_dir(name)
        add_dir("tmp", 0o1777)
        add_file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
        for applet in applets:
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
        add_file("etc/group", b"root:x:0:\napp:x:1000:\n")
    return buf.getvalue()


def ensure_images(client: Any) -> dict[str, str]:
    """Build (once per machine and content) the base and every variant; variant -> tag."""
    digest = _digest()
    tags = {variant: f"{REPO}/{variant}:{digest}" for variant in VARIANTS}
    base = f"{REPO}/base:{digest}"
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        have = {tag for image in client.images.list() for tag in image.tags
                if tag.startswith(f"{REPO}/")}
        if base not in have:
            repository, tag = base.split(":")
            client.api.import_image_from_data(rootfs_tar(), repository=repository, tag=tag,
                                              changes=['CMD ["/bin/sh"]'])
        for variant, (dockerfile, args) in VARIANTS.items():
            if tags[variant] not in have:
                client.images.build(path=str(CONTEXT), dockerfile=dockerfile, tag=tags[variant],
                                    buildargs={"BASE": base, **args}, rm=True)
    return tags


# -- a PostgreSQL image (backup.restore into a fresh container) ---------------------------------
PG_CONTEXT = Path(__file__).parent / "postgres"


def _pg_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): "
                           "run scripts/install-test-deps.sh")
    return found[-1].parent


def pg_rootfs_tar() -> bytes:
    """busybox plus this machine's PostgreSQL server (binaries, modules, share files, the
    shared libraries they link) as a root filesystem."""
    bindir = _pg_bindir()
    version = bindir.parent.name
    files: set[Path] = {bindir / "postgres", bindir / "initdb", bindir / "pg_ctl"}
    files |= {p for p in (bindir.parent / "lib").rglob("*") if p.is_file()}
    files |= {p for p in Path(f"/usr/share/postgresql/{version}").rglob("*")
              if p.is_file() and "man" not in p.parts}
    files |= {Path("/usr/share/zoneinfo/UTC"), Path("/usr/share/zoneinfo/Etc/UTC")}
    libs: set[str] = set()
    for binary in (bindir / "postgres", bindir / "initdb", bindir / "pg_ctl"):
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split()
            libs |= {part for part in parts if part.startswith("/")}
    base = io.BytesIO(rootfs_tar())
    buf = io.BytesIO()
    with tarfile.open(fileobj=base, mode="r") as src, tarfile.open(fileobj=buf, mode="w") as tar:
        for member in src.getmembers():
            if member.name == "etc/passwd":
                data = (src.extractfile(member) or io.BytesIO()).read()
                data += b"postgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh\n"
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member, src.extractfile(member) if member.isfile() else None)
        for name in ("var", "var/lib", "var/run", "var/lib/postgresql", "var/run/postgresql"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            if name.endswith("postgresql"):
                info.uid = info.gid = 999
                info.mode = 0o700 if name.startswith("var/lib") else 0o2775
            tar.addfile(info)
        for path in sorted(files | {Path(lib) for lib in libs}):
            if path.exists():
                tar.add(str(path.resolve()), arcname=str(path).lstrip("/"), recursive=False)
    return buf.getvalue()


def ensure_postgres_image(client: Any) -> str:
    """A PostgreSQL image built from this machine's server (tag: version and content hash)."""
    bindir = _pg_bindir()
    h = hashlib.sha256((bindir / "postgres").read_bytes()[:1 << 20])
    for path in sorted(PG_CONTEXT.iterdir()):
        h.update(path.name.encode() + path.read_bytes())
    digest = h.hexdigest()[:12]
    tag = f"{REPO}/postgres:{bindir.parent.name}-{digest}"
    base = f"{REPO}/postgres-rootfs:{bindir.parent.name}-{digest}"
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        have = {t for image in client.images.list() for t in image.tags if t.startswith(f"{REPO}/")}
        if base not in have:
            repository, name = base.split(":")
            client.api.import_image_from_data(pg_rootfs_tar(), repository=repository, tag=name)
        if tag not in have:
            client.images.build(path=str(PG_CONTEXT), tag=tag, rm=True,
                                buildargs={"BASE": base, "PGBIN": str(bindir)})
    return tag

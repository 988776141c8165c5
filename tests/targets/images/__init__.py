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

"""Write real sample photos as JPEG files into a folder (default: samples/).

    python scripts/sample_photos.py samples/

The photos ship with scikit-image (chelsea the cat, coffee, astronaut, rocket)
and matplotlib (grace_hopper.jpg); nothing is downloaded. When one of those
libraries is missing, the photos it provides are skipped and listed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Callable

SKIMAGE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


def _skimage_loader(name: str) -> Callable[[], object]:
    def load():
        from skimage import data

        return getattr(data, name)()

    return load


def write_samples(folder: str | Path, *, quality: int = 95) -> tuple[list[Path], list[str]]:
    """Write the photos; return (written paths, skipped 'name (reason)')."""
    from PIL import Image

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    skipped: list[str] = []

    for name in SKIMAGE_PHOTOS:
        try:
            pixels = _skimage_loader(name)()
        except ImportError:
            skipped.append(f"{name} (scikit-image is not installed)")
            continue
        except Exception as e:  # a data file missing from a trimmed install
            skipped.append(f"{name} ({type(e).__name__}: {e})")
            continue
        path = out / f"{name}.jpg"
        Image.fromarray(pixels).convert("RGB").save(path, quality=quality)
        written.append(path)

    try:
        from matplotlib import cbook

        source = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    except ImportError:
        skipped.append("grace_hopper (matplotlib is not installed)")
    except Exception as e:
        skipped.append(f"grace_hopper ({type(e).__name__}: {e})")
    else:
        path = out / "grace_hopper.jpg"
        shutil.copyfile(source, path)  # already a JPEG: copy, do not re-encode
        written.append(path)

    return written, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default="samples", help="where to write (default: samples/)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality (default: 95)")
    args = parser.parse_args(argv)
    written, skipped = write_samples(args.folder, quality=args.quality)
    for path in written:
        print(f"wrote {path}")
    for item in skipped:
        print(f"skipped {item}", file=sys.stderr)
    if not written:
        print("no photos written: install scikit-image and/or matplotlib", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The independent reference for the HEIF corpus tests (tests/e2e/heif_corpus.rs).

Decodes an original with pillow-heif (its own libheif, not the one libvips links) or
Pillow's AVIF plugin (libavif), as displayed: libheif applies irot/imir itself, and
EXIF orientation is applied only where no irot/imir already turned the picture (the
HEIF rule). Wide-gamut pixels go to sRGB through their ICC profile; alpha is laid on
black (what a JPEG of it shows). Then it compares a picture filegate made with the
reference resized to the same size.

    python heif_reference.py size <original>
    python heif_reference.py compare <original> <made>

Both print one JSON object.
"""

import io
import json
import sys

import pillow_heif
from PIL import Image, ImageCms, ImageOps

pillow_heif.register_heif_opener()


def displayed(path):
    im = Image.open(path)
    # An orientation in XMP alone is not applied: browsers and libvips read EXIF's.
    im.info.pop("xmp", None)
    # pillow-heif resets the EXIF orientation when libheif applied a transform;
    # exif_transpose then does only what is left to do.
    im = ImageOps.exif_transpose(im)
    icc = im.info.get("icc_profile")
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        black = Image.new("RGBA", im.size, (0, 0, 0, 255))
        im = Image.alpha_composite(black, im)
    im = im.convert("RGB")
    if icc:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        im = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
    return im


def main():
    what, original = sys.argv[1], sys.argv[2]
    ref = displayed(original)
    out = {"ref": list(ref.size)}
    if what == "compare":
        made = Image.open(sys.argv[3])
        out["made_format"] = made.format
        made = displayed(sys.argv[3])
        out["made"] = list(made.size)
        small = ref.resize(made.size, Image.LANCZOS)
        a, b = small.tobytes(), made.tobytes()
        out["mae"] = sum(abs(x - y) for x, y in zip(a, b)) / len(a)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""restore.io.images: reading every common PIL mode at the right scale, writing 8-bit PNGs."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from restore.errors import ImageReadError
from restore.io.images import check_image, crop_resize, load_image, save_image, to_uint8


def _expect(a_uint: np.ndarray, full: float) -> torch.Tensor:
    """(H, W, C) integer array -> expected (1, C, H, W) tensor in [-1, 1]."""
    a = torch.from_numpy(np.asarray(a_uint, dtype=np.float64) / full).permute(2, 0, 1)[None]
    return (a * 2 - 1).float()


def _rgb8(h=5, w=7, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- 8-bit modes
def test_rgb(tmp_path):
    a = _rgb8()
    Image.fromarray(a).save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png")
    assert x.shape == (1, 3, 5, 7) and x.dtype == torch.float32
    torch.testing.assert_close(x, _expect(a, 255))
    assert float(x.min()) >= -1 and float(x.max()) <= 1


def test_rgba_fully_transparent_is_white(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (4, 6, 4), dtype=np.uint8)
    a[..., 3] = 0  # fully transparent: the white background, whatever colour is stored
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    torch.testing.assert_close(load_image(tmp_path / "a.png"), torch.ones(1, 3, 4, 6))


def test_grey_l_as_rgb_and_l(tmp_path):
    a = np.array([[0, 255, 128], [1, 254, 64]], dtype=np.uint8)
    Image.fromarray(a, "L").save(tmp_path / "g.png")
    rgb = load_image(tmp_path / "g.png")
    grey = load_image(tmp_path / "g.png", mode="L")
    assert rgb.shape == (1, 3, 2, 3) and grey.shape == (1, 1, 2, 3)
    torch.testing.assert_close(grey, _expect(a[..., None], 255))
    torch.testing.assert_close(rgb, grey.repeat(1, 3, 1, 1))
    assert float(grey[0, 0, 0, 1]) == 1.0 and float(grey[0, 0, 0, 0]) == -1.0


def test_rgb_to_luma(tmp_path):
    a = _rgb8(seed=2)
    Image.fromarray(a).save(tmp_path / "a.png")
    y = load_image(tmp_path / "a.png", mode="L")
    lum = a.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    torch.testing.assert_close(y, _expect(lum[..., None], 255))
    with pytest.raises(ValueError):
        load_image(tmp_path / "a.png", mode="RGBA")


def test_one_bit(tmp_path):
    a = np.array([[0, 1, 1], [1, 0, 0]], dtype=bool)
    Image.fromarray(a).convert("1").save(tmp_path / "b.png")
    x = load_image(tmp_path / "b.png", mode="L")
    torch.testing.assert_close(x, torch.from_numpy(a.astype(np.float32) * 2 - 1)[None, None])


def test_palette(tmp_path):
    a = _rgb8(6, 6, seed=3) // 64 * 64  # few colours, so the palette is exact
    im = Image.fromarray(a).quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    assert im.mode == "P"
    im.save(tmp_path / "p.png")
    expected = np.asarray(im.convert("RGB"))
    torch.testing.assert_close(load_image(tmp_path / "p.png"), _expect(expected, 255))
    # palette with transparency: see test_palette_transparency_over_white
    im.save(tmp_path / "pt.png", transparency=0)
    assert load_image(tmp_path / "pt.png").shape == (1, 3, 6, 6)


def test_la_over_white(tmp_path):
    a = np.stack([np.array([[10, 200, 90]], np.uint8), np.array([[0, 255, 128]], np.uint8)], -1)
    Image.fromarray(a, "LA").save(tmp_path / "la.png")
    grey, alpha = a[..., :1] / 255.0, a[..., 1:] / 255.0
    torch.testing.assert_close(load_image(tmp_path / "la.png", mode="L"), _expect(grey * alpha + 1 - alpha, 1),
                               rtol=0, atol=1e-5)


def test_jpeg_and_cmyk(tmp_path):
    Image.fromarray(_rgb8(16, 16)).save(tmp_path / "a.jpg", quality=95)
    assert load_image(tmp_path / "a.jpg").shape == (1, 3, 16, 16)
    Image.new("CMYK", (4, 3), (0, 0, 0, 0)).save(tmp_path / "c.jpg")
    x = load_image(tmp_path / "c.jpg")
    assert x.shape == (1, 3, 3, 4) and float(x.min()) > 0.9  # CMYK 0 ink = white


# --------------------------------------------------------------------------- 16-bit
def test_16bit_grey_png(tmp_path):
    a = np.array([[0, 65535, 32768], [1, 257, 40000]], dtype=np.uint16)
    im = Image.fromarray(a)
    im.save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    x = load_image(tmp_path / "g16.png", mode="L")
    torch.testing.assert_close(x, _expect(a[..., None], 65535))
    assert float(x[0, 0, 0, 1]) == 1.0 and float(x[0, 0, 0, 0]) == -1.0
    assert abs(float(x[0, 0, 0, 2])) < 1e-4  # 32768 -> ~0.0
    assert load_image(tmp_path / "g16.png").shape == (1, 3, 2, 3)


def test_32bit_int_and_float_tiff(tmp_path):
    im = Image.new("I", (3, 1))
    for i, v in enumerate((0, 65535, 32768)):
        im.putpixel((i, 0), v)
    im.save(tmp_path / "i.tif")
    assert Image.open(tmp_path / "i.tif").mode == "I"
    x = load_image(tmp_path / "i.tif", mode="L")
    torch.testing.assert_close(x, _expect(np.array([[[0], [65535], [32768]]]), 65535))
    f = Image.fromarray(np.array([[0.0, 1.0, 0.25, 2.0]], dtype=np.float32), "F")
    f.save(tmp_path / "f.tif")
    torch.testing.assert_close(load_image(tmp_path / "f.tif", mode="L"),
                               torch.tensor([[[[-1.0, 1.0, -0.5, 1.0]]]]))


def _png16(path, a: np.ndarray, ctype: int, interlace: bool = False) -> None:
    """Write a 16-bit PNG with pypng (PIL cannot); ctype 2 RGB, 6 RGBA, 4 grey + alpha."""
    import png

    h, w, c = a.shape
    writer = png.Writer(w, h, greyscale=ctype == 4, alpha=ctype in (4, 6), bitdepth=16, interlace=interlace)
    with open(path, "wb") as f:
        writer.write(f, a.reshape(h, w * c).tolist())


def test_16bit_rgb_png_full_precision(tmp_path):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 65536, (11, 9, 3)).astype(np.uint16)
    a[0, 0], a[0, 1], a[0, 2] = (0, 65535, 32768), (256, 255, 257), (65280, 65279, 1)
    for interlace in (False, True):
        _png16(tmp_path / "c16.png", a, ctype=2, interlace=interlace)
        assert Image.open(tmp_path / "c16.png").mode == "RGB"  # PIL would truncate to 8 bits
        x = load_image(tmp_path / "c16.png")
        torch.testing.assert_close(x, _expect(a, 65535), rtol=0, atol=1e-6)
        assert float(x[0, 0, 0, 0]) == -1.0 and float(x[0, 1, 0, 0]) == 1.0


def test_16bit_rgba_and_grey_alpha_png(tmp_path):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 65536, (6, 5, 4)).astype(np.uint16)
    _png16(tmp_path / "c16a.png", a, ctype=6)
    notes = []
    x = load_image(tmp_path / "c16a.png", notes=notes)
    alpha = a[..., 3:] / 65535.0
    torch.testing.assert_close(x, _expect(a[..., :3] / 65535.0 * alpha + 1 - alpha, 1), rtol=0, atol=1e-6)
    assert notes == ["c16a.png has transparency: composited over white"]
    g = rng.integers(0, 65536, (6, 5, 2)).astype(np.uint16)
    _png16(tmp_path / "g16a.png", g, ctype=4)
    alpha = g[..., 1:] / 65535.0
    torch.testing.assert_close(load_image(tmp_path / "g16a.png", mode="L"),
                               _expect(g[..., :1] / 65535.0 * alpha + 1 - alpha, 1), rtol=0, atol=1e-6)
    # a fully opaque 16-bit alpha: exactly the stored colour values, no note
    a[..., 3] = 65535
    _png16(tmp_path / "c16o.png", a, ctype=6)
    notes = []
    torch.testing.assert_close(load_image(tmp_path / "c16o.png", notes=notes), _expect(a[..., :3], 65535),
                               rtol=0, atol=1e-6)
    assert notes == []


# --------------------------------------------------------------------------- errors
def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError):
        load_image(tmp_path)  # a directory
    assert issubclass(ImageReadError, ValueError)


def test_non_image_and_corrupt(tmp_path):
    (tmp_path / "a.txt").write_text("hello\nworld\n")
    with pytest.raises(ImageReadError) as ei:
        load_image(tmp_path / "a.txt")
    assert "\n" not in str(ei.value)
    Image.fromarray(_rgb8(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as ei:
        load_image(tmp_path / "trunc.png")
    assert "\n" not in str(ei.value)
    _png16(tmp_path / "c16.png", np.zeros((4, 4, 3), np.uint16), ctype=2)
    (tmp_path / "c16t.png").write_bytes((tmp_path / "c16.png").read_bytes()[:60])
    with pytest.raises(ImageReadError):
        load_image(tmp_path / "c16t.png")


# --------------------------------------------------------------------------- saving
def test_save_load_roundtrip_8bit(tmp_path):
    a = _rgb8(9, 13, seed=6)
    x = _expect(a, 255)
    save_image(x, tmp_path / "sub" / "x.png")
    im = Image.open(tmp_path / "sub" / "x.png")
    assert im.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(im), a)
    torch.testing.assert_close(load_image(tmp_path / "sub" / "x.png"), x, rtol=0, atol=0)
    # grey, (C, H, W) input
    g = _expect(a[..., :1], 255)[0]
    save_image(g, tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode == "L"
    torch.testing.assert_close(load_image(tmp_path / "g.png", mode="L")[0], g, rtol=0, atol=0)


def test_save_rounds_and_clamps(tmp_path):
    x = torch.tensor([-3.0, -1.0, 1.0, 7.0, 0.0, 2 * 100.4 / 255 - 1, 2 * 100.6 / 255 - 1])
    x = x.view(1, 1, 1, -1)
    assert to_uint8(x).flatten().tolist() == [0, 0, 255, 255, 128, 100, 101]  # 127.5 -> 128 (half to even)
    save_image(x, tmp_path / "r.png")
    assert np.asarray(Image.open(tmp_path / "r.png")).flatten().tolist() == [0, 0, 255, 255, 128, 100, 101]


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        save_image(torch.zeros(2, 3, 4, 4), tmp_path / "a.png")
    with pytest.raises(ValueError):
        save_image(torch.zeros(1, 2, 4, 4), tmp_path / "a.png")
    with pytest.raises(ValueError):
        save_image(torch.zeros(1, 3, 4, 4), tmp_path / "a.jpg")


# --------------------------------------------------------------------------- crop / resize
def test_crop_resize():
    x = torch.rand(1, 3, 40, 60) * 2 - 1
    y = crop_resize(x, 32, 32)
    assert y.shape == (1, 3, 32, 32)
    assert float(y.min()) >= -1 and float(y.max()) <= 1
    same = torch.zeros(2, 3, 32, 32)
    assert crop_resize(same, 32, 32) is same
    assert torch.equal(crop_resize(x, 40, 40), x[..., :, 10:50])  # crop only: the centred square
    assert torch.equal(crop_resize(x, 20, 60), x[..., 10:30, :])  # the aspect ratio of 20x60: a band
    assert crop_resize(torch.rand(1, 1, 20, 10) * 2 - 1, 64, 64).shape == (1, 1, 64, 64)  # upsampling a tall image
    # a constant image stays constant (antialiased bicubic preserves it, clamp keeps the range)
    torch.testing.assert_close(crop_resize(torch.full((1, 3, 50, 70), 0.25), 16, 24), torch.full((1, 3, 16, 24), 0.25))
    with pytest.raises(ValueError):
        crop_resize(torch.zeros(3, 8, 8), 4, 4)


# --------------------------------------------------------------------------- EXIF orientation
def _upright_image(h=16, w=8) -> np.ndarray:
    """A dark (h, w) RGB image with a red 4x4 block in its top-left corner (as displayed)."""
    a = np.full((h, w, 3), 30, np.uint8)
    a[:4, :4] = (230, 20, 20)
    return a


# stored pixels for each orientation tag, so that the viewer's transform gives the upright image
_STORED = {6: lambda u: np.rot90(u, 1), 8: lambda u: np.rot90(u, -1), 3: lambda u: np.rot90(u, 2),
           2: lambda u: u[:, ::-1]}


@pytest.mark.parametrize("orientation", [6, 8, 3, 2])
@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_exif_orientation_applied(tmp_path, orientation, suffix):
    upright = _upright_image()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo.{suffix}"
    Image.fromarray(np.ascontiguousarray(_STORED[orientation](upright))).save(path, exif=exif, quality=95)
    notes = []
    x = load_image(path, notes=notes)
    assert x.shape == (1, 3, 16, 8)
    if suffix == "png":  # lossless: the exact upright pixels
        torch.testing.assert_close(x, _expect(upright, 255), rtol=0, atol=1e-6)
    else:  # JPEG: the red corner where a viewer shows it
        corner, rest = x[0, :, :3, :3].mean((1, 2)), x[0, :, 8:, 4:].mean((1, 2))
        assert corner[0] > 0.6 and corner[1] < -0.6 and rest.max() < -0.6
    assert len(notes) == 1 and notes[0].startswith(f"photo.{suffix}: EXIF orientation applied")
    assert check_image(path) == (16, 8)


def test_exif_orientation_notes_wording(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_upright_image()).save(tmp_path / "p.jpg", exif=exif)
    notes = []
    load_image(tmp_path / "p.jpg", notes=notes)
    assert notes == ["p.jpg: EXIF orientation applied (rotated 90° clockwise)"]
    exif[0x0112] = 1  # the normal orientation: nothing to do, no note
    Image.fromarray(_upright_image()).save(tmp_path / "n.jpg", exif=exif)
    notes = []
    assert load_image(tmp_path / "n.jpg", notes=notes).shape == (1, 3, 16, 8) and notes == []


# --------------------------------------------------------------------------- ICC profiles
def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def _rgb_icc(description: str = "Adobe-like RGB test", gamma: float = 563 / 256) -> bytes:
    """A minimal ICC v2 matrix/TRC RGB display profile with Adobe RGB (1998)'s D50-adapted
    primaries and gamma (no RGB profile ships on this system, and PIL only builds sRGB)."""
    primaries = ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457))
    text = description.encode() + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    curv = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    tags = [(b"desc", desc), (b"wtpt", _xyz(0.9642, 1.0, 0.82491)), (b"cprt", b"text" + bytes(4) + b"none\0")]
    tags += [(s, _xyz(*p)) for s, p in zip((b"rXYZ", b"gXYZ", b"bXYZ"), primaries)]
    tags += [(s, curv) for s in (b"rTRC", b"gTRC", b"bTRC")]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = struct.pack(">I", offset + len(body)) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
    header += bytes(12) + b"acsp" + bytes(28) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    return header + bytes(128 - len(header)) + struct.pack(">I", len(tags)) + table + body


def _srgb_icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_srgb_profile_same_as_none(tmp_path):
    a = _rgb8(12, 10, seed=7)
    for suffix in ("png", "jpg"):
        Image.fromarray(a).save(tmp_path / f"plain.{suffix}", quality=95)
        Image.fromarray(a).save(tmp_path / f"srgb.{suffix}", quality=95, icc_profile=_srgb_icc())
        assert Image.open(tmp_path / f"srgb.{suffix}").info.get("icc_profile")
        notes = []
        x = load_image(tmp_path / f"srgb.{suffix}", notes=notes)
        torch.testing.assert_close(x, load_image(tmp_path / f"plain.{suffix}"), rtol=0, atol=2 / 255)
        assert notes == []


def test_rgb_profile_converted_to_srgb(tmp_path):
    from PIL import ImageCms

    icc = _rgb_icc()
    a = _rgb8(6, 6, seed=8)
    a[0, 0] = (180, 90, 60)
    Image.fromarray(a).save(tmp_path / "adobe.png", icc_profile=icc)
    notes = []
    x = load_image(tmp_path / "adobe.png", notes=notes)
    assert notes == ["adobe.png: colour profile 'Adobe-like RGB test' converted to sRGB"]
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    ref = ImageCms.profileToProfile(Image.fromarray(a), source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    torch.testing.assert_close(x, _expect(np.asarray(ref), 255), rtol=0, atol=2 / 255)
    # a wider-gamut colour is more saturated once expressed in sRGB: red up, blue down
    r, _, b = ((x[0, :, 0, 0] + 1) * 127.5).tolist()
    assert r > 180 + 10 and b < 60 - 2
    # the same through a palette image
    Image.fromarray(a).quantize(colors=256).save(tmp_path / "adobe_p.png", icc_profile=icc)
    notes = []
    load_image(tmp_path / "adobe_p.png", notes=notes)
    assert notes == ["adobe_p.png: colour profile 'Adobe-like RGB test' converted to sRGB"]


def test_bad_profile_kept_as_stored(tmp_path):
    a = _rgb8(5, 4, seed=9)
    Image.fromarray(a).save(tmp_path / "bad.png", icc_profile=b"not an ICC profile at all")
    notes = []
    x = load_image(tmp_path / "bad.png", notes=notes)
    torch.testing.assert_close(x, _expect(a, 255))
    assert len(notes) == 1 and notes[0].startswith("bad.png: colour profile") and "kept as stored" in notes[0]
    assert "\n" not in notes[0]


def test_grey_image_profile_ignored(tmp_path):
    g = _rgb8(5, 4, seed=10)[..., 0]
    Image.fromarray(g, "L").save(tmp_path / "g.png", icc_profile=_rgb_icc())
    notes = []
    torch.testing.assert_close(load_image(tmp_path / "g.png", mode="L", notes=notes), _expect(g[..., None], 255))
    assert notes == []


def test_16bit_png_profile_noted_not_applied(tmp_path):
    import png

    a = np.random.default_rng(11).integers(0, 65536, (4, 3, 3)).astype(np.uint16)
    _png16(tmp_path / "plain16.png", a, ctype=2)
    chunks = list(png.Reader(filename=str(tmp_path / "plain16.png")).chunks())
    iccp = (b"iCCP", b"test\0\0" + zlib.compress(_rgb_icc()))
    with open(tmp_path / "icc16.png", "wb") as f:
        png.write_chunks(f, [chunks[0], iccp] + chunks[1:])
    notes = []
    x = load_image(tmp_path / "icc16.png", notes=notes)
    torch.testing.assert_close(x, _expect(a, 65535), rtol=0, atol=1e-6)
    assert notes == ["icc16.png: colour profile of a 16-bit PNG not applied: values kept as stored"]


# --------------------------------------------------------------------------- alpha over white
def test_rgba_partial_alpha_over_white(tmp_path):
    a = np.random.default_rng(12).integers(0, 256, (5, 6, 4), dtype=np.uint8)
    a[0, 0] = (200, 100, 0, 128)
    Image.fromarray(a, "RGBA").save(tmp_path / "face.png")
    notes = []
    x = load_image(tmp_path / "face.png", notes=notes)
    alpha = a[..., 3:] / 255.0
    torch.testing.assert_close(x, _expect(a[..., :3] / 255.0 * alpha + 1 - alpha, 1), rtol=0, atol=1 / 255)
    expected = np.array([200, 100, 0]) / 255 * 128 / 255 + 127 / 255  # by hand, pixel (0, 0)
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor(expected * 2 - 1).float(), rtol=0, atol=1 / 255)
    assert notes == ["face.png has transparency: composited over white"]


def test_opaque_rgba_equals_rgb(tmp_path):
    a = np.random.default_rng(13).integers(0, 256, (5, 6, 4), dtype=np.uint8)
    a[..., 3] = 255
    Image.fromarray(a, "RGBA").save(tmp_path / "o.png")
    Image.fromarray(np.ascontiguousarray(a[..., :3])).save(tmp_path / "rgb.png")
    notes = []
    x = load_image(tmp_path / "o.png", notes=notes)
    assert torch.equal(x, load_image(tmp_path / "rgb.png")) and notes == []


def test_palette_transparency_over_white(tmp_path):
    p = np.array([[0, 1], [2, 0]], np.uint8)
    im = Image.fromarray(p, "P")
    im.putpalette([10, 20, 30, 200, 0, 0, 0, 0, 250] + [0] * (253 * 3))
    im.save(tmp_path / "pt.png", transparency=0)  # palette entry 0 transparent
    notes = []
    x = load_image(tmp_path / "pt.png", notes=notes)
    expected = np.array([[[255, 255, 255], [200, 0, 0]], [[0, 0, 250], [255, 255, 255]]])
    torch.testing.assert_close(x, _expect(expected, 255), rtol=0, atol=1 / 255)
    assert notes == ["pt.png has transparency: composited over white"]
    # GIF transparency goes the same way
    im.save(tmp_path / "pt.gif", transparency=0)
    torch.testing.assert_close(load_image(tmp_path / "pt.gif"), _expect(expected, 255), rtol=0, atol=1 / 255)


def test_notes_argument_optional_and_keyword(tmp_path):
    Image.fromarray(_rgb8()).save(tmp_path / "a.png")
    assert load_image(tmp_path / "a.png", "L").shape == (1, 1, 5, 7)
    assert load_image(str(tmp_path / "a.png"), mode="RGB", notes=None).shape == (1, 3, 5, 7)


# --------------------------------------------------------------------------- check_image
def test_check_image(tmp_path):
    Image.fromarray(_rgb8(9, 13)).save(tmp_path / "a.png")
    assert check_image(tmp_path / "a.png") == (9, 13)
    _png16(tmp_path / "c16.png", np.zeros((4, 6, 3), np.uint16), ctype=2)
    assert check_image(tmp_path / "c16.png") == (4, 6)
    Image.fromarray(_rgb8(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as checked:
        check_image(tmp_path / "trunc.png")
    with pytest.raises(ImageReadError) as loaded:
        load_image(tmp_path / "trunc.png")
    assert "\n" not in str(checked.value) and str(checked.value) == str(loaded.value)
    with pytest.raises(ImageReadError, match="no such file"):
        check_image(tmp_path / "nope.png")


# --------------------------------------------------------------------------- the pixel budget
def _png_claiming(path, width: int, height: int, depth: int, ctype: int) -> None:
    """A PNG whose header claims width x height but whose data is a few bytes: decoding it would
    allocate the claimed size (or fail late); the budget must refuse it from the header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64)))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("depth, ctype", [(16, 2), (16, 6), (16, 4), (8, 2), (8, 0), (16, 0)])
def test_a_png_bomb_is_refused_from_its_header(tmp_path, depth, ctype):
    """A 20000 x 20000 claim in a file of about 100 bytes: 16-bit colour (the pypng path, which no
    PIL limit covers), 8-bit and grey; refused in one line naming the size and the limit."""
    path = tmp_path / "bomb.png"
    _png_claiming(path, 20000, 20000, depth, ctype)
    assert path.stat().st_size < 200
    for read in (lambda: load_image(path), lambda: check_image(path)):
        with pytest.raises(ImageReadError) as refused:
            read()
        message = str(refused.value)
        assert "\n" not in message and "20000x20000 = 400,000,000 pixels" in message
        assert "limit of 40,000,000" in message and "--max-pixels" in message


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".bmp", ".gif", ".webp", ".ppm"])
def test_the_budget_holds_for_every_format(tmp_path, suffix):
    """At a budget of 150 pixels: 10 x 15 reads, 16 x 10 is refused, whatever the format."""
    small, large = tmp_path / f"small{suffix}", tmp_path / f"large{suffix}"
    Image.fromarray(_rgb8(15, 10)).save(small)
    Image.fromarray(_rgb8(10, 16)).save(large)
    assert load_image(small, max_pixels=150).shape == (1, 3, 15, 10)
    assert check_image(small, max_pixels=150) == (15, 10)
    with pytest.raises(ImageReadError, match=r"16x10 = 160 pixels is over the limit of 150"):
        load_image(large, max_pixels=150)
    _png16(tmp_path / "c16.png", np.zeros((10, 16, 3), np.uint16), ctype=2)
    with pytest.raises(ImageReadError, match="16x10"):
        check_image(tmp_path / "c16.png", max_pixels=150)


def test_a_raised_budget_reads_beyond_pils_own_limit(tmp_path, monkeypatch):
    """The budget is the one rule: raised past PIL's decompression-bomb limit, PIL does not refuse."""
    from PIL import Image as PILImage

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100)  # PIL refuses above 2 x this
    Image.fromarray(_rgb8(30, 30)).save(tmp_path / "a.png")
    assert load_image(tmp_path / "a.png", max_pixels=1000).shape == (1, 3, 30, 30)
    assert PILImage.MAX_IMAGE_PIXELS == 100  # put back

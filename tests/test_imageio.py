"""restore.imageio: reading every common PIL mode at the right scale, writing 8-bit PNGs."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from PIL import Image

from restore.imageio import ImageReadError, center_crop_resize, load_image, save_image, to_uint8


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


def test_rgba_drops_alpha(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (4, 6, 4), dtype=np.uint8)
    a[..., 3] = 0  # fully transparent: colour kept as stored, not composited
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    torch.testing.assert_close(load_image(tmp_path / "a.png"), _expect(a[..., :3], 255))


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
    # palette with transparency: alpha dropped too
    im.info["transparency"] = 0
    im.save(tmp_path / "pt.png", transparency=0)
    assert load_image(tmp_path / "pt.png").shape == (1, 3, 6, 6)


def test_la_drops_alpha(tmp_path):
    a = np.stack([np.array([[10, 200]], np.uint8), np.array([[0, 255]], np.uint8)], -1)
    Image.fromarray(a, "LA").save(tmp_path / "la.png")
    torch.testing.assert_close(load_image(tmp_path / "la.png", mode="L"), _expect(a[..., :1], 255))


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
    torch.testing.assert_close(load_image(tmp_path / "c16a.png"), _expect(a[..., :3], 65535), rtol=0, atol=1e-6)
    g = rng.integers(0, 65536, (6, 5, 2)).astype(np.uint16)
    _png16(tmp_path / "g16a.png", g, ctype=4)
    torch.testing.assert_close(load_image(tmp_path / "g16a.png", mode="L"), _expect(g[..., :1], 65535),
                               rtol=0, atol=1e-6)


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
def test_center_crop_resize():
    x = torch.rand(1, 3, 40, 60) * 2 - 1
    y, changed = center_crop_resize(x, 32)
    assert y.shape == (1, 3, 32, 32) and changed
    assert float(y.min()) >= -1 and float(y.max()) <= 1
    same, changed = center_crop_resize(torch.zeros(2, 3, 32, 32), 32)
    assert same.shape == (2, 3, 32, 32) and not changed
    # crop only: the centred square
    y, changed = center_crop_resize(x, 40)
    assert changed and torch.equal(y, x[..., :, 10:50])
    # upsampling a tall image
    y, changed = center_crop_resize(torch.rand(1, 1, 20, 10) * 2 - 1, 64)
    assert y.shape == (1, 1, 64, 64) and changed
    # a constant image stays constant (antialiased bicubic preserves it, clamp keeps the range)
    y, _ = center_crop_resize(torch.full((1, 3, 50, 70), 0.25), 16)
    torch.testing.assert_close(y, torch.full((1, 3, 16, 16), 0.25))
    with pytest.raises(ValueError):
        center_crop_resize(torch.zeros(3, 8, 8), 4)

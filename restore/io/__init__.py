"""Files: images (decoding with EXIF, colour profiles, 16-bit and transparency; saving PNGs) and
writes that are whole or absent (atomic)."""

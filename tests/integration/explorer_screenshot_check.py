"""Checks that a PNG screenshot of the attribution explorer is not blank: decodes it (8-bit
grayscale / RGB / RGBA, non-interlaced, as Chromium writes them) with zlib and prints its size,
its number of distinct colours and the standard deviation of its luminance; exits 1 when the
image is smaller than MIN_SIDE pixels, has fewer than MIN_COLOURS colours or a luminance
standard deviation under MIN_STDDEV (a blank or single-colour page).

Usage: explorer_screenshot_check.py PNG
"""

import math
import struct
import sys
import zlib

MIN_SIDE, MIN_COLOURS, MIN_STDDEV = 200, 16, 8.0
CHANNELS = {0: 1, 2: 3, 6: 4}  # PNG colour type -> channels


def read_png(path):
    """(width, height, channels, rows of bytes) of an 8-bit non-interlaced PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in CHANNELS or interlace != 0:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {colour})")
    bpp = CHANNELS[colour]
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for x in range(bpp, stride):
                row[x] = (row[x] + row[x - bpp]) & 255
        elif kind == 2:
            row = bytearray((a + b) & 255 for a, b in zip(row, previous))
        elif kind == 3:
            for x in range(stride):
                left = row[x - bpp] if x >= bpp else 0
                row[x] = (row[x] + ((left + previous[x]) >> 1)) & 255
        elif kind == 4:
            for x in range(stride):
                a = row[x - bpp] if x >= bpp else 0
                b = previous[x]
                c = previous[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(row)
        previous = row
    return width, height, bpp, rows


def main() -> int:
    path = sys.argv[1]
    width, height, bpp, rows = read_png(path)
    colours, total, squares, count = set(), 0.0, 0.0, 0
    for row in rows[::2]:
        for x in range(0, width * bpp, 2 * bpp):
            pixel = bytes(row[x:x + min(bpp, 3)])
            colours.add(pixel)
            luminance = sum(pixel) / len(pixel)
            total += luminance
            squares += luminance * luminance
            count += 1
    mean = total / count
    stddev = math.sqrt(max(0.0, squares / count - mean * mean))
    print(f"{path}: {width}x{height}, {len(colours)} distinct colours, "
          f"luminance stddev {stddev:.1f}")
    if min(width, height) < MIN_SIDE or len(colours) < MIN_COLOURS or stddev < MIN_STDDEV:
        print(f"{path} looks blank (want >= {MIN_SIDE} px a side, >= {MIN_COLOURS} colours, "
              f"stddev >= {MIN_STDDEV})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

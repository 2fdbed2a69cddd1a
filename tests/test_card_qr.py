"""A small QR decoder for the tests (no scanner library is installed), and its own checks.

It reads an undamaged QR code (versions 1 to 26, any error-correction level, numeric,
alphanumeric, byte and kanji segments) from a PNG as the card's QR endpoint serves it: a greyscale PNG
with a quiet zone. It does not correct errors: a test image has none, so any misread module shows
up as a wrong or undecodable text. It shares nothing with segno but the standard.
"""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
import segno

from bot.cards import QR_BORDER, qr_png

# ISO/IEC 18004 tables for versions 1..26: error-correction codewords per block and blocks, by level.
ECC_PER_BLOCK = {
    "L": [
        7,
        10,
        15,
        20,
        26,
        18,
        20,
        24,
        30,
        18,
        20,
        24,
        26,
        30,
        22,
        24,
        28,
        30,
        28,
        28,
        28,
        28,
        30,
        30,
        26,
        28,
    ],
    "M": [
        10,
        16,
        26,
        18,
        24,
        16,
        18,
        22,
        22,
        26,
        30,
        22,
        22,
        24,
        24,
        28,
        28,
        26,
        26,
        26,
        26,
        28,
        28,
        28,
        28,
        28,
    ],
    "Q": [
        13,
        22,
        18,
        26,
        18,
        24,
        18,
        22,
        20,
        24,
        28,
        26,
        24,
        20,
        30,
        24,
        28,
        28,
        26,
        30,
        28,
        30,
        30,
        30,
        30,
        28,
    ],
    "H": [
        17,
        28,
        22,
        16,
        22,
        28,
        26,
        26,
        24,
        28,
        24,
        28,
        22,
        24,
        24,
        30,
        28,
        28,
        26,
        28,
        30,
        24,
        30,
        30,
        30,
        30,
    ],
}
BLOCKS = {
    "L": [1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12],
    "M": [1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23],
    "Q": [
        1,
        1,
        2,
        2,
        4,
        4,
        6,
        6,
        8,
        8,
        8,
        10,
        12,
        16,
        12,
        17,
        16,
        18,
        21,
        20,
        23,
        23,
        25,
        27,
        29,
        34,
    ],
    "H": [
        1,
        1,
        2,
        4,
        4,
        4,
        5,
        6,
        8,
        8,
        11,
        11,
        16,
        16,
        18,
        16,
        19,
        21,
        25,
        25,
        25,
        34,
        30,
        32,
        35,
        37,
    ],
}
LEVEL_BITS = {"L": 1, "M": 0, "Q": 3, "H": 2}
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
MASKS = [
    lambda r, c: (r + c) % 2 == 0,
    lambda r, c: r % 2 == 0,
    lambda r, c: c % 3 == 0,
    lambda r, c: (r + c) % 3 == 0,
    lambda r, c: (r // 2 + c // 3) % 2 == 0,
    lambda r, c: (r * c) % 2 + (r * c) % 3 == 0,
    lambda r, c: ((r * c) % 2 + (r * c) % 3) % 2 == 0,
    lambda r, c: ((r + c) % 2 + (r * c) % 3) % 2 == 0,
]


def png_pixels(png: bytes) -> list[list[int]]:
    """Decode a non-interlaced greyscale PNG (bit depth 1 or 8) into rows of 0 (dark) / 1 (light)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + data) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert colour == 0 and depth in (1, 8) and interlace == 0
    stride = (width * depth + 7) // 8
    bpp = 1  # bytes per pixel for filtering (at least one)
    raw = zlib.decompress(idat)
    rows: list[list[int]] = []
    previous = bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        kind, row = line[0], bytearray(line[1:])
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                row[i] = (row[i] + a) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + b) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        previous = row
        if depth == 1:
            rows.append([(row[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
        else:
            rows.append([1 if row[x] >= 128 else 0 for x in range(width)])
    return rows


def symbol_from_pixels(pixels: list[list[int]]) -> list[list[bool]]:
    """The module matrix (True = dark) of a QR image with a quiet zone, any integer scale."""
    height, width = len(pixels), len(pixels[0])
    assert height == width, "a QR image is square"
    dark = [(y, x) for y in range(height) for x in range(width) if pixels[y][x] == 0]
    top, left = min(y for y, _ in dark), min(x for _, x in dark)
    bottom, right = max(y for y, _ in dark), max(x for _, x in dark)
    # The top-left finder pattern's outer ring is 7 modules wide.
    run = 0
    while pixels[top][left + run] == 0:
        run += 1
    assert run % 7 == 0, "finder pattern not found"
    scale = run // 7
    size = (right - left + 1) // scale
    assert size * scale == right - left + 1 == bottom - top + 1
    return [
        [
            pixels[top + r * scale + scale // 2][left + c * scale + scale // 2] == 0
            for c in range(size)
        ]
        for r in range(size)
    ]


def _function_modules(version: int) -> list[list[bool]]:
    size = 17 + 4 * version
    used = [[False] * size for _ in range(size)]

    def area(r0: int, c0: int, rows: int, cols: int) -> None:
        for r in range(max(r0, 0), min(r0 + rows, size)):
            for c in range(max(c0, 0), min(c0 + cols, size)):
                used[r][c] = True

    # Finder patterns with separators and format information (and the dark module).
    area(0, 0, 9, 9)
    area(0, size - 8, 9, 8)
    area(size - 8, 0, 8, 9)
    area(6, 0, 1, size)  # timing patterns
    area(0, 6, size, 1)
    if version > 1:
        count = version // 7 + 2
        step = (version * 8 + count * 3 + 5) // (count * 4 - 4) * 2
        centres = sorted([6] + [size - 7 - i * step for i in range(count - 1)])
        last = len(centres) - 1
        for i, r in enumerate(centres):
            for j, c in enumerate(centres):
                if (i, j) not in ((0, 0), (0, last), (last, 0)):
                    area(r - 2, c - 2, 5, 5)
    if version >= 7:
        area(0, size - 11, 6, 3)
        area(size - 11, 0, 3, 6)
    return used


def _format(matrix: list[list[bool]]) -> tuple[str, int]:
    """The error-correction level and mask, from the format bits beside the top-left finder."""
    spots = (
        [(i, 8) for i in range(6)] + [(7, 8), (8, 8), (8, 7)] + [(8, 14 - i) for i in range(9, 15)]
    )
    read = sum(int(matrix[r][c]) << i for i, (r, c) in enumerate(spots))
    best: tuple[int, str, int] | None = None
    for level, level_bits in LEVEL_BITS.items():
        for mask in range(8):
            data = level_bits << 3 | mask
            rem = data
            for _ in range(10):
                rem = (rem << 1) ^ ((rem >> 9) * 0x537)
            code = (data << 10 | rem) ^ 0x5412
            distance = bin(code ^ read).count("1")
            if best is None or distance < best[0]:
                best = (distance, level, mask)
    assert best is not None and best[0] == 0, "format information unreadable"
    return best[1], best[2]


def decode_matrix(matrix: list[list[bool]]) -> str:
    """The text of an undamaged QR symbol (module matrix without quiet zone)."""
    size = len(matrix)
    version = (size - 17) // 4
    assert 1 <= version <= 26 and size == 17 + 4 * version
    level, mask = _format(matrix)
    used = _function_modules(version)
    bits: list[int] = []
    right = size - 1
    while right >= 1:
        if right == 6:
            right = 5
        for vert in range(size):
            for j in range(2):
                c = right - j
                upward = ((right + 1) & 2) == 0
                r = size - 1 - vert if upward else vert
                if not used[r][c]:
                    bits.append(int(matrix[r][c]) ^ int(MASKS[mask](r, c)))
        right -= 2
    codewords = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits) - 7, 8)]
    blocks = BLOCKS[level][version - 1]
    ecc = ECC_PER_BLOCK[level][version - 1]
    short_blocks = blocks - len(codewords) % blocks
    short_data = len(codewords) // blocks - ecc
    data_blocks: list[list[int]] = [[] for _ in range(blocks)]
    index = 0
    for i in range(short_data + 1):
        for j in range(blocks):
            if i < short_data or j >= short_blocks:
                data_blocks[j].append(codewords[index])
                index += 1
    stream = "".join(f"{byte:08b}" for block in data_blocks for byte in block)
    return _segments(stream, version)


def _segments(stream: str, version: int) -> str:
    pos = 0

    def take(n: int) -> int:
        nonlocal pos
        value = int(stream[pos : pos + n] or "0", 2)
        pos += n
        return value

    counts = {1: (10, 12), 2: (9, 11), 4: (8, 16), 8: (8, 10)}
    text = ""
    while pos + 4 <= len(stream):
        mode = take(4)
        if mode == 0:
            break
        if mode == 7:  # ECI designator (one byte form): UTF-8 is assumed
            take(8)
            continue
        assert mode in counts, f"unsupported mode {mode}"
        count = take(counts[mode][0 if version <= 9 else 1])
        if mode == 4:
            text += bytes(take(8) for _ in range(count)).decode("utf-8")
        elif mode == 8:  # Kanji: 13 bits a character, Shift JIS
            for _ in range(count):
                value = take(13)
                code = (value // 0xC0) << 8 | value % 0xC0
                code += 0x8140 if code < 0x1F00 else 0xC140
                text += code.to_bytes(2, "big").decode("shift_jis")
        elif mode == 2:
            for _ in range(count // 2):
                pair = take(11)
                text += ALNUM[pair // 45] + ALNUM[pair % 45]
            if count % 2:
                text += ALNUM[take(6)]
        else:
            for _ in range(count // 3):
                text += f"{take(10):03d}"
            if count % 3 == 2:
                text += f"{take(7):02d}"
            elif count % 3 == 1:
                text += f"{take(4):d}"
    return text


def decode_qr_png(png: bytes) -> str:
    return decode_matrix(symbol_from_pixels(png_pixels(png)))


# --- checks of the decoder itself, on codes from segno -------------------------------------------


@pytest.mark.parametrize("level", ["L", "M", "Q", "H"])
def test_decoder_reads_segno_codes(level: str) -> None:
    rng = random.Random(level)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:"
    texts = ["12345", "HELLO WORLD", "https://furusato.example.jp/verify/x", "ふるさと住民登録証"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 300))) for _ in range(16)]
    versions = set()
    for n, text in enumerate(texts):
        for scale, border in ((1, 4), (3, 2)) if n > 3 else ((1, 4), (8, 4)):
            qr = segno.make(text, error=level.lower(), micro=False, boost_error=False)
            if qr.version is not None and int(qr.version) > 26:
                continue
            out = io.BytesIO()
            qr.save(out, kind="png", scale=scale, border=border)
            assert decode_qr_png(out.getvalue()) == text
            versions.add(qr.version)
    assert len(versions) > 6


def test_decoder_notices_damage() -> None:
    qr = segno.make("https://furusato.example.jp/verify/abc", error="m", micro=False)
    matrix = [[bool(v) for v in row] for row in qr.matrix]
    assert decode_matrix(matrix) == "https://furusato.example.jp/verify/abc"
    matrix[8][2] = not matrix[8][2]  # a format bit: the level and mask are no longer certain
    with pytest.raises(AssertionError):
        decode_matrix(matrix)


def test_qr_png_round_trips_urls() -> None:
    for url in (
        "http://127.0.0.1:8080/verify/NmIwODkxMTlhZjQ5MjM1NDVjZmU2YTBmfDE.JvygUQ5lPpiOT380ObPMzg",
        "https://furusato.example.jp/verify/" + "A" * 90 + ".abcdefghijklmnopqrstuv",
    ):
        png = qr_png(url)
        assert decode_qr_png(png) == url
        pixels = png_pixels(png)
        matrix = symbol_from_pixels(pixels)
        # The quiet zone is there, and the image is large enough to scan from a screen.
        assert len(pixels) == (len(matrix) + 2 * QR_BORDER) * (
            len(pixels) // (len(matrix) + 2 * QR_BORDER)
        )
        assert len(pixels) >= 200

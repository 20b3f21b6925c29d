"""The ranges a number given to uglspot must fall in, one place for every
reader: past them a typo (a height of 100000, an fps of 1e12, a half that
lasts 1e300 s) would fill the memory or the disk, or overflow, before
anything failed. The limits stay far above any real use: 8K frames, 1000
fps (high-speed cameras), a 24-hour video."""

MAX_SIDE = 8192  # pixels on a side of a decoded frame
MAX_FPS = 1000.0  # frames per second: decoding, detection, label conversion
MAX_SECONDS = 24 * 3600.0  # length of one video or half

"""uglspot: precise action spotting in long sports videos with the UGL method."""

__version__ = "0.1.0"

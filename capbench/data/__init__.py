"""The shared data layer: one record schema, one reader per on-disk format, one DataModule."""

from capbench.data.errors import DatasetFormatError
from capbench.data.records import CaptionedImage, Region
from capbench.data.sources import names, read

__all__ = ["CaptionedImage", "DatasetFormatError", "Region", "names", "read"]

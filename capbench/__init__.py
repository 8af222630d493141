"""capbench: reproduce five caption-supervised visual representation methods side by side."""

__version__ = "0.1.0"

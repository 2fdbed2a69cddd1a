"""Domain rules as plain functions and frozen dataclasses, with no I/O."""

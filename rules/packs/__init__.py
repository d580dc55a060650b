"""The shipped rule packs (YAML). This file only makes setuptools ship them as package data."""

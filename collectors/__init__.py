"""Collectors: gather probe results into a bundle on disk, sign it, and verify it offline."""

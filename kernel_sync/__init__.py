"""Kernel FIB sync over netlink (a later issue)."""

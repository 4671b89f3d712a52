"""Imports every module that registers rules, so that `RULES` is complete."""

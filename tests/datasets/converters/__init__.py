"""Tests of detforge.datasets.converters."""

"""Tests of the emulator's web page (HTTP and a real headless Chromium)."""
